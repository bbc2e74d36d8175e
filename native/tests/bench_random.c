/*
 * bench_random: what the Ambient noising's random numbers cost on this CPU, the numbers behind
 * README's account of the noising's bandwidth. Not a ctest (it times); run it from the build:
 *
 *   native/target/cmake-release/tests/bench_random [THREADS]
 *
 * For one thread and for THREADS (default: the library's default), the best of 10 calls each of
 *   ambient_random_uniform  Philox-4x32-10 and a store: the generator's own cost per 32-bit word
 *   ambient_random_normal   the same plus Box-Muller, per normal
 *   ambient_ambient_noising two normals per element, 12 bytes of traffic per element
 * on 4M values, and the noising's rate in GB/s beside the copy bandwidth the library measures
 * on 1 GiB (as `ambient bench peak` does).
 * Each result is checked (uniforms in [0, 1) with mean 1/2, normals with mean 0 and variance 1,
 * x_t - x_tn with the variance sigma_t^2 - sigma_tn^2), so a broken generator cannot time well.
 */
#include "ambient.h"
#include "test_util.h"

#define COUNT (INT64_C(1) << 22)
#define SAMPLES 64

static double moment(const float *v, int64_t n, double center, int power) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += power == 1 ? v[i] - center : (v[i] - center) * (v[i] - center);
    return s / (double)n;
}

static double best_of(int (*call)(void *), void *arg) {
    double best = INFINITY;
    for (int r = 0; r < 10; r++) {
        double t0 = test_now();
        CHECK(call(arg) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
        double t = test_now() - t0;
        best = t < best ? t : best;
    }
    return best;
}

typedef struct {
    float *x, *a, *b, sigma_t[SAMPLES], sigma_tn[SAMPLES];
    int64_t ids[SAMPLES];
} buffers;

static int call_uniform(void *p) { return ambient_random_uniform(COUNT, 11, 2, 0, ((buffers *)p)->a); }
static int call_normal(void *p) { return ambient_random_normal(COUNT, 11, 2, 0, ((buffers *)p)->a); }
static int call_noising(void *p) {
    buffers *s = p;
    return ambient_ambient_noising(SAMPLES, COUNT / SAMPLES, s->x, s->sigma_t, s->sigma_tn, s->ids, 3, 4, s->b, s->a);
}

static void run(int threads, buffers *s, double bandwidth) {
    CHECK(ambient_threads_set(threads) == AMBIENT_STATUS_OK, "threads");
    double tu = best_of(call_uniform, s);
    CHECK(fabs(moment(s->a, COUNT, 0.5, 1)) < 2e-3, "uniform mean off");
    double tn = best_of(call_normal, s);
    CHECK(fabs(moment(s->a, COUNT, 0.0, 1)) < 3e-3 && fabs(moment(s->a, COUNT, 0.0, 2) - 1.0) < 5e-3,
          "normal moments off");
    double tz = best_of(call_noising, s);
    for (int64_t e = 0; e < COUNT; e++) s->a[e] -= s->b[e]; /* x_t - x_tn = sqrt(0.75) eps */
    CHECK(fabs(moment(s->a, COUNT, 0.0, 2) - 0.75) < 5e-3, "noising variance off");
    double gbs = 12.0 * COUNT / tz * 1e-9;
    printf("%7d %12.3f %12.3f %14.3f %9.1f %9.0f%%\n", threads, 1e9 * tu / COUNT, 1e9 * tn / COUNT, 1e9 * tz / COUNT,
           gbs, 100.0 * gbs / bandwidth);
}

int main(int argc, char **argv) {
    int32_t threads = 0;
    if (argc > 1) threads = atoi(argv[1]);
    if (threads <= 0) ambient_threads_get(&threads);
    buffers s;
    s.x = test_alloc(COUNT);
    s.a = test_alloc(COUNT);
    s.b = test_alloc(COUNT);
    test_fill(s.x, COUNT, 1.0f);
    for (int i = 0; i < SAMPLES; i++) {
        s.sigma_t[i] = 1.0f;
        s.sigma_tn[i] = 0.5f;
        s.ids[i] = i;
    }
    double bandwidth = 0;
    CHECK(ambient_benchmark_memory_bandwidth(INT64_C(1) << 30, 1.0, &bandwidth) == AMBIENT_STATUS_OK, "bandwidth");
    printf("bench_random: %lld values, best of 10 calls; copy bandwidth %.1f GB/s\n", (long long)COUNT, bandwidth);
    printf("threads  uniform ns/w  normal ns/v  noising ns/el      GB/s  of copy\n");
    run(1, &s, bandwidth);
    if (threads > 1) run(threads, &s, bandwidth);
    free(s.x);
    free(s.a);
    free(s.b);
    return test_finish("bench_random");
}
