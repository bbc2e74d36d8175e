/*
 * test_parity [options] [libambient_cpu.so libambient_cuda.so]: CPU-vs-CUDA parity and timing.
 *
 * Loads both backends with dlopen (RTLD_LOCAL, so their identical symbols stay apart; the
 * paths default to the libraries next to this program or one folder up, as in the CMake build
 * tree), then for every kernel of ambient.h and several shapes per kernel (odd sizes, n = 1,
 * attention lengths that are not tile multiples, DESIGN.md's kernel shapes and W3-sized ones):
 *   - draws fresh random inputs (never zeros), poisons every output with NaN on both sides,
 *   - runs the CPU backend on host buffers and the CUDA backend on device copies,
 *   - compares every output: |cuda - cpu| <= tol * (|cpu| + rms(cpu)), tol per case (float32
 *     elementwise 1e-5; reductions of length K get 1e-5 * max(1, sqrt(K) / 16), the growth of
 *     float32 rounding error with K; uniforms, dropout, clipping, resampling and the NaN guard
 *     must match bit for bit). Matrix products (gemm, the three convolutions) follow the
 *     precision the CUDA library runs them in, read from AMBIENT_CUDA_MATMUL as the library
 *     does: fp32 as above; tf32 and bf16 operands are rounded once (relative error 2^-11 and
 *     2^-8), which leaves a typical error of ~3e-4 and ~2.3e-3 of the rms whatever K, and the
 *     worst of up to 10^7 elements ~5 times that: tol 3e-3 (tf32) and 2e-2 (bf16). Attention
 *     with head_dim <= 128 runs on tensor cores in those precisions too, where the roundings
 *     compound (q, k, then P and v; dP, dS and the gradients' operands): rms error ~4e-3 (bf16)
 *     and ~5e-4 (tf32), worst ~2.3e-2 and ~2.3e-3 (test_cuda_attention): tol 4e-2 and 5e-3,
 *   - for matrix products and attention, the rate in GFLOP/s and its fraction of the measured matmul ceiling
 *     (ambient_benchmark_matmul_peak: the library's own GEMM at 8192^3, 4096^3 with --quick,
 *     in the same precision, timed with CUDA events inside the library),
 *   - times the kernel: GPU as the median over 7 batches of back-to-back calls, each batch
 *     sized to ~2 ms and timed by CUDA events on the library's stream (ambient_timer_start and
 *     ambient_timer_elapsed, since the stream is the library's own), so launch latency is
 *     hidden; CPU as the median of up to 5 calls.
 * and prints one table (kernel, shape, worst error / tol, GPU ms, CPU ms, speed-up, GFLOP/s and
 * fraction of the matmul ceiling), after the device's measured float32 FMA peak, copy bandwidth
 * and matmul ceiling; the table's header names the precision of matrix products.
 *
 * Without a GPU (no driver or no device) it checks that both libraries load, export every
 * function, name their backends, and that the CUDA one answers AMBIENT_STATUS_NO_DEVICE with a
 * message, says "no CUDA device", and exits 0. Exit status 1 on any mismatch or failed call.
 *
 * Options: --quick (skip the large shapes), --no-timing (compare only: no ceilings, no timings;
 * for the emulated CUDA library, which ctest runs this way), --filter SUBSTRING[,SUBSTRING...]
 * (kernels whose name contains one of them), --csv FILE (the table as CSV too).
 */
#define _GNU_SOURCE
#include "ambient.h"
#include "test_util.h"
#include "test_backends.h"

#include <dlfcn.h>
#include <strings.h>
#include <time.h>

/* Every function declared in ambient.h. */
#define AMBIENT_FUNCTIONS(X)                                                                               \
    X(ambient_library_version) X(ambient_library_backend) X(ambient_matmul_precision) X(ambient_last_error) \
    X(ambient_device_count)                                                                                \
    X(ambient_device_select) X(ambient_device_name) X(ambient_device_memory) X(ambient_device_synchronize) \
    X(ambient_threads_set) X(ambient_threads_get) X(ambient_memory_alloc) X(ambient_memory_free)           \
    X(ambient_memory_copy_to_device) X(ambient_memory_copy_to_host) X(ambient_memory_copy_on_device)       \
    X(ambient_memory_set) X(ambient_benchmark_fma_peak) X(ambient_benchmark_memory_bandwidth)              \
    X(ambient_benchmark_matmul_peak) X(ambient_timer_start) X(ambient_timer_elapsed)                        \
    X(ambient_gemm) X(ambient_mp_silu_forward) X(ambient_mp_silu_backward) X(ambient_mp_sum_forward)       \
    X(ambient_mp_sum_backward) X(ambient_pixel_norm_forward) X(ambient_pixel_norm_backward)                \
    X(ambient_conv2d_forward) X(ambient_conv2d_backward_input) X(ambient_conv2d_backward_weight)           \
    X(ambient_weight_norm_forward) X(ambient_weight_norm_backward) X(ambient_weight_norm_force)            \
    X(ambient_attention_forward) X(ambient_attention_backward) X(ambient_mp_cat_forward)                   \
    X(ambient_mp_cat_backward) X(ambient_avg_pool2x2_forward) X(ambient_avg_pool2x2_backward)              \
    X(ambient_upsample2x_forward) X(ambient_upsample2x_backward) X(ambient_mp_fourier_forward)             \
    X(ambient_mp_fourier_backward) X(ambient_channel_scale_forward) X(ambient_channel_scale_backward)      \
    X(ambient_channel_scale_silu_forward) X(ambient_channel_scale_silu_backward)                           \
    X(ambient_clip_forward) X(ambient_clip_backward) X(ambient_random_normal) X(ambient_random_uniform)    \
    X(ambient_dropout_forward) X(ambient_dropout_backward) X(ambient_ambient_noising)                       \
    X(ambient_ambient_loss) X(ambient_sample_axpby) X(ambient_sum_squares) X(ambient_nan_guard)            \
    X(ambient_adam_step) X(ambient_ema_update)

#define API_FIELD(name) __typeof__(&name) name;
typedef struct {
    const char *label;
    AMBIENT_FUNCTIONS(API_FIELD)
} api_t;

static api_t cpu, gpu;

static int load_api(const char *path, const char *label, api_t *api) {
    void *library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        fprintf(stderr, "test_parity: dlopen(%s) failed: %s\n", path, dlerror());
        return 1;
    }
    api->label = label;
    int missing = 0;
#define API_RESOLVE(name)                                                                   \
    *(void **)&api->name = dlsym(library, #name);                                           \
    if (!api->name) {                                                                       \
        fprintf(stderr, "test_parity: %s (%s) does not export %s\n", label, path, #name); \
        missing++;                                                                          \
    }
    AMBIENT_FUNCTIONS(API_RESOLVE)
#undef API_RESOLVE
    return missing;
}

/* ---- Cases ---------------------------------------------------------------------------------- */

enum { IN, OUT, INOUT };             /* how a tensor is used */
enum { RANDOM, POSITIVE, UNIT_ROWS }; /* how an input is filled */
#define MAX_TENSORS 12

typedef struct {
    const char *name;
    int64_t count;
    int role, fill;
    float scale;
    float *host;   /* the initial contents (random, or NaN for outputs) */
    float *result; /* what the CPU produced */
} tensor;

typedef struct case_t case_t;
/* Calls the kernel of the case through api with the tensors' pointers p (host or device). */
typedef int (*call_fn)(const api_t *api, float **p, case_t *c);

struct case_t {
    const char *kernel;
    char shape[96];
    call_fn call;
    int ntensors;
    tensor t[MAX_TENSORS];
    int64_t i[8];
    float f[8];
    double tol;        /* 0: bit-exact */
    double floor;      /* added to every error's denominator: the rms of the terms that cancel
                        * in the outputs (normalisation backward; prepare), else 0 */
    double flops;      /* matrix products: 2 m n k of the call (for GFLOP/s); 0 otherwise */
    int64_t ids[256];  /* host sample ids (noising) */
    int64_t bad_count; /* nan_guard's host result */
};

static int failures;
static int timing = 1; /* 0 with --no-timing */
static FILE *csv;

/* The precision of matrix products in the CUDA library (test_matmul_precision), and the
 * measured ceiling of its GEMM in that precision (GFLOP/s, 0 if not measured). */
static int matmul_precision;
static double matmul_ceiling;
static const char *matmul_names[] = {"bf16 tensor cores", "tf32 tensor cores", "fp32 SIMT (exact path)", "unknown"};

static tensor *add(case_t *c, const char *name, int64_t count, int role, int fill, float scale) {
    tensor *t = &c->t[c->ntensors++];
    t->name = name;
    t->count = count;
    t->role = role;
    t->fill = fill;
    t->scale = scale;
    return t;
}

static float *device_copy(const float *host, int64_t count) {
    void *p = NULL;
    int64_t bytes = (count > 0 ? count : 1) * (int64_t)sizeof(float);
    if (gpu.ambient_memory_alloc(bytes, &p) != AMBIENT_STATUS_OK) {
        fprintf(stderr, "test_parity: cuda alloc of %lld bytes: %s\n", (long long)bytes, gpu.ambient_last_error());
        exit(1);
    }
    if (count > 0 && gpu.ambient_memory_copy_to_device(p, host, count * (int64_t)sizeof(float)) != AMBIENT_STATUS_OK) {
        fprintf(stderr, "test_parity: copy to device: %s\n", gpu.ambient_last_error());
        exit(1);
    }
    return (float *)p;
}

/* Worst |a - b| / (|b| + rms(b) + floor) over the tensor; INFINITY when NaN disagrees. */
static double worst_error(const float *got, const float *want, int64_t n, double floor) {
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += isfinite(want[i]) ? (double)want[i] * want[i] : 0.0;
    double scale = (n > 0 ? sqrt(ss / (double)n) : 0) + floor, worst = 0; /* rms(b) + floor */
    for (int64_t i = 0; i < n; i++) {
        if (isnan(want[i]) || isnan(got[i])) {
            if (isnan(want[i]) != isnan(got[i])) return INFINITY;
            continue;
        }
        double err = fabs((double)got[i] - want[i]), denom = fabs((double)want[i]) + scale;
        double e = denom > 0 ? err / denom : (err > 0 ? INFINITY : 0);
        if (e > worst) worst = e;
    }
    return worst;
}

static void prepare(case_t *c);

static void run_case(case_t *c) {
    /* inputs and poisoned outputs */
    for (int k = 0; k < c->ntensors; k++) {
        tensor *t = &c->t[k];
        t->host = test_alloc(t->count);
        t->result = test_alloc(t->count);
        if (t->role == OUT) test_poison(t->host, t->count);
        else if (t->fill == POSITIVE)
            for (int64_t e = 0; e < t->count; e++) t->host[e] = t->scale * (1.0f + test_uniform()) * 0.5f + 1e-3f;
        else test_fill(t->host, t->count, t->scale);
    }
    prepare(c);
    /* CPU: the reference call on fresh copies, then timing */
    float *cp[MAX_TENSORS];
    for (int k = 0; k < c->ntensors; k++) {
        cp[k] = c->t[k].result;
        memcpy(cp[k], c->t[k].host, (size_t)c->t[k].count * sizeof(float));
    }
    int status = c->call(&cpu, cp, c);
    int64_t cpu_bad = c->bad_count;
    if (status != AMBIENT_STATUS_OK) {
        printf("%-30s %-34s FAIL  cpu status %d: %s\n", c->kernel, c->shape, status, cpu.ambient_last_error());
        failures++;
        return;
    }
    float *saved[MAX_TENSORS];
    for (int k = 0; k < c->ntensors; k++) {
        saved[k] = test_alloc(c->t[k].count);
        memcpy(saved[k], cp[k], (size_t)c->t[k].count * sizeof(float));
    }
    double cpu_times[5];
    int cpu_runs = 0;
    double spent = 0;
    while (timing && cpu_runs < 5 && spent < 1.0) {
        double t0 = test_now();
        c->call(&cpu, cp, c);
        cpu_times[cpu_runs] = test_now() - t0;
        spent += cpu_times[cpu_runs++];
    }
    double cpu_ms = cpu_runs > 0 ? 1e3 * test_median(cpu_times, cpu_runs) : NAN;

    /* CUDA: the same initial contents on the device, one call, outputs back */
    float *dp[MAX_TENSORS];
    for (int k = 0; k < c->ntensors; k++) dp[k] = device_copy(c->t[k].host, c->t[k].count);
    status = c->call(&gpu, dp, c);
    if (status == AMBIENT_STATUS_OK) status = gpu.ambient_device_synchronize();
    double worst = 0;
    const char *worst_name = "";
    int ok = status == AMBIENT_STATUS_OK;
    if (!ok) {
        printf("%-30s %-34s FAIL  cuda status %d: %s\n", c->kernel, c->shape, status, gpu.ambient_last_error());
        failures++;
    } else {
        float *back = test_alloc(1);
        for (int k = 0; k < c->ntensors; k++) {
            tensor *t = &c->t[k];
            if (t->role == IN || t->count == 0) continue;
            free(back);
            back = test_alloc(t->count);
            gpu.ambient_memory_copy_to_host(back, dp[k], t->count * (int64_t)sizeof(float));
            double e;
            if (c->tol == 0) e = memcmp(back, saved[k], (size_t)t->count * sizeof(float)) == 0 ? 0 : INFINITY;
            else e = worst_error(back, saved[k], t->count, c->floor) / c->tol;
            if (e > worst || worst_name[0] == '\0') {
                worst = e > worst ? e : worst;
                if (e >= worst) worst_name = t->name;
            }
            if (!(e <= 1.0)) {
                /* the first few differing elements, for the log */
                int shown = 0;
                for (int64_t i = 0; i < t->count && shown < 3; i++)
                    if (memcmp(&back[i], &saved[k][i], sizeof(float)) != 0) {
                        fprintf(stderr, "  %s %s %s[%lld]: cuda %.9g cpu %.9g\n", c->kernel, c->shape, t->name,
                                (long long)i, back[i], saved[k][i]);
                        shown++;
                    }
                ok = 0;
            }
        }
        free(back);
        if (c->kernel && strcmp(c->kernel, "nan_guard") == 0 && c->bad_count != cpu_bad) {
            fprintf(stderr, "  nan_guard: cuda counted %lld, cpu %lld\n", (long long)c->bad_count, (long long)cpu_bad);
            ok = 0;
        }
        if (!ok) failures++;
    }

    /* CUDA timing: warm-up, then 7 batches of back-to-back calls between the library's events */
    double gpu_ms = NAN;
    if (timing && status == AMBIENT_STATUS_OK) {
        double one = 0;
        c->call(&gpu, dp, c);
        int timed = gpu.ambient_timer_start() == AMBIENT_STATUS_OK;
        c->call(&gpu, dp, c);
        timed = timed && gpu.ambient_timer_elapsed(&one) == AMBIENT_STATUS_OK;
        int per_batch = one > 0 ? (int)(2.0 / one) : 100;
        per_batch = per_batch < 1 ? 1 : per_batch > 200 ? 200 : per_batch;
        double times[7];
        for (int b = 0; b < 7 && timed; b++) {
            double ms = 0;
            timed = gpu.ambient_timer_start() == AMBIENT_STATUS_OK;
            for (int r = 0; r < per_batch; r++) c->call(&gpu, dp, c);
            timed = timed && gpu.ambient_timer_elapsed(&ms) == AMBIENT_STATUS_OK;
            times[b] = ms / per_batch;
        }
        if (timed) gpu_ms = test_median(times, 7);
        else fprintf(stderr, "test_parity: %s %s: timer: %s\n", c->kernel, c->shape, gpu.ambient_last_error());
    }
    const char *verdict = status != AMBIENT_STATUS_OK ? "FAIL" : ok ? "ok" : "FAIL";
    char tol[16];
    if (c->tol == 0) snprintf(tol, sizeof tol, "exact");
    else snprintf(tol, sizeof tol, "%.1e", c->tol);
    /* Matrix products: their rate and its fraction of the measured matmul ceiling. */
    double gflops = c->flops > 0 && gpu_ms > 0 ? c->flops / (gpu_ms * 1e-3) * 1e-9 : NAN;
    double of_ceiling = matmul_ceiling > 0 ? gflops / matmul_ceiling : NAN;
    char rate[32] = "";
    if (c->flops > 0 && isfinite(gflops)) {
        if (isfinite(of_ceiling)) snprintf(rate, sizeof rate, "%8.0f %5.1f%%", gflops, 100.0 * of_ceiling);
        else snprintf(rate, sizeof rate, "%8.0f %6s", gflops, "");
    }
    char times[48] = "";
    if (timing) snprintf(times, sizeof times, "%10.4f %10.3f %8.1fx", gpu_ms, cpu_ms, cpu_ms / gpu_ms);
    else snprintf(times, sizeof times, "%10s %10s %9s", "-", "-", "-");
    printf("%-30s %-34s %-5s %9.3g %-9s %s %15s  %s\n", c->kernel, c->shape, verdict,
           c->tol == 0 ? (worst == 0 ? 0.0 : INFINITY) : worst, tol, times, rate, worst_name);
    fflush(stdout);
    if (csv)
        fprintf(csv, "%s,\"%s\",%s,%.6g,%s,%.6f,%.6f,%.6g,%.6g,%s\n", c->kernel, c->shape, verdict, worst, tol, gpu_ms,
                cpu_ms, gflops, of_ceiling, c->flops > 0 ? matmul_names[matmul_precision] : "");
    for (int k = 0; k < c->ntensors; k++) {
        gpu.ambient_memory_free(dp[k]);
        free(c->t[k].host);
        free(c->t[k].result);
        free(saved[k]);
    }
}

/* ---- Kernel calls -------------------------------------------------------------------------- */

#define I c->i
#define FL c->f

static int call_gemm(const api_t *a, float **p, case_t *c) {
    int64_t ta = I[0], tb = I[1], batch = I[2], m = I[3], n = I[4], k = I[5];
    int64_t lda = ta ? m : k, ldb = tb ? k : n;
    return a->ambient_gemm((int32_t)ta, (int32_t)tb, batch, m, n, k, FL[0], p[0], lda, m * k, p[1], ldb, k * n, FL[1],
                           p[2], n, m * n);
}
static int call_mp_silu_f(const api_t *a, float **p, case_t *c) { return a->ambient_mp_silu_forward(I[0], p[0], p[1]); }
static int call_mp_silu_b(const api_t *a, float **p, case_t *c) {
    return a->ambient_mp_silu_backward(I[0], p[0], p[1], p[2]);
}
static int call_mp_sum_f(const api_t *a, float **p, case_t *c) {
    return a->ambient_mp_sum_forward(I[0], p[0], p[1], FL[0], p[2]);
}
static int call_mp_sum_b(const api_t *a, float **p, case_t *c) {
    return a->ambient_mp_sum_backward(I[0], p[0], FL[0], p[1], p[2]);
}
static int call_pn_f(const api_t *a, float **p, case_t *c) {
    return a->ambient_pixel_norm_forward(I[0], I[1], FL[0], p[0], p[1]);
}
static int call_pn_b(const api_t *a, float **p, case_t *c) {
    return a->ambient_pixel_norm_backward(I[0], I[1], FL[0], p[0], p[1], p[2]);
}
static int call_conv_f(const api_t *a, float **p, case_t *c) {
    return a->ambient_conv2d_forward(I[0], I[1], I[2], I[3], I[4], I[5], p[0], p[1], FL[0], p[2]);
}
static int call_conv_i(const api_t *a, float **p, case_t *c) {
    return a->ambient_conv2d_backward_input(I[0], I[1], I[2], I[3], I[4], I[5], p[0], p[1], FL[0], p[2]);
}
static int call_conv_w(const api_t *a, float **p, case_t *c) {
    return a->ambient_conv2d_backward_weight(I[0], I[1], I[2], I[3], I[4], I[5], p[0], p[1], FL[0], p[2]);
}
static int call_wn_f(const api_t *a, float **p, case_t *c) {
    return a->ambient_weight_norm_forward(I[0], I[1], FL[0], FL[1], p[0], p[1]);
}
static int call_wn_b(const api_t *a, float **p, case_t *c) {
    return a->ambient_weight_norm_backward(I[0], I[1], FL[0], FL[1], p[0], p[1], p[2], p[3]);
}
static int call_wn_force(const api_t *a, float **p, case_t *c) {
    return a->ambient_weight_norm_force(I[0], I[1], FL[0], p[0]);
}
static int call_att_f(const api_t *a, float **p, case_t *c) {
    return a->ambient_attention_forward(I[0], I[1], I[2], I[3], p[0], p[1], p[2]);
}
static int call_att_b(const api_t *a, float **p, case_t *c) {
    return a->ambient_attention_backward(I[0], I[1], I[2], I[3], p[0], p[1], p[2], p[3], p[4]);
}
static int call_cat_f(const api_t *a, float **p, case_t *c) {
    return a->ambient_mp_cat_forward(I[0], I[1], I[2], FL[0], p[0], p[1], p[2]);
}
static int call_cat_b(const api_t *a, float **p, case_t *c) {
    return a->ambient_mp_cat_backward(I[0], I[1], I[2], FL[0], p[0], p[1], p[2]);
}
static int call_pool_f(const api_t *a, float **p, case_t *c) {
    return a->ambient_avg_pool2x2_forward(I[0], I[1], I[2], I[3], p[0], p[1]);
}
static int call_pool_b(const api_t *a, float **p, case_t *c) {
    return a->ambient_avg_pool2x2_backward(I[0], I[1], I[2], I[3], p[0], p[1]);
}
static int call_up_f(const api_t *a, float **p, case_t *c) {
    return a->ambient_upsample2x_forward(I[0], I[1], I[2], I[3], p[0], p[1]);
}
static int call_up_b(const api_t *a, float **p, case_t *c) {
    return a->ambient_upsample2x_backward(I[0], I[1], I[2], I[3], p[0], p[1]);
}
static int call_fourier_f(const api_t *a, float **p, case_t *c) {
    return a->ambient_mp_fourier_forward(I[0], I[1], p[0], p[1], p[2], p[3]);
}
static int call_fourier_b(const api_t *a, float **p, case_t *c) {
    return a->ambient_mp_fourier_backward(I[0], I[1], p[0], p[1], p[2], p[3], p[4]);
}
static int call_cs_f(const api_t *a, float **p, case_t *c) {
    return a->ambient_channel_scale_forward(I[0], I[1], I[2], p[0], p[1], p[2]);
}
static int call_cs_b(const api_t *a, float **p, case_t *c) {
    return a->ambient_channel_scale_backward(I[0], I[1], I[2], p[0], p[1], p[2], p[3], p[4]);
}
static int call_css_f(const api_t *a, float **p, case_t *c) {
    return a->ambient_channel_scale_silu_forward(I[0], I[1], I[2], p[0], p[1], p[2]);
}
static int call_css_b(const api_t *a, float **p, case_t *c) {
    return a->ambient_channel_scale_silu_backward(I[0], I[1], I[2], p[0], p[1], p[2], p[3], p[4]);
}
static int call_clip_f(const api_t *a, float **p, case_t *c) { return a->ambient_clip_forward(I[0], FL[0], p[0], p[1]); }
static int call_clip_b(const api_t *a, float **p, case_t *c) {
    return a->ambient_clip_backward(I[0], FL[0], p[0], p[1], p[2]);
}
static int call_normal(const api_t *a, float **p, case_t *c) { return a->ambient_random_normal(I[0], I[1], I[2], I[3], p[0]); }
static int call_uniform(const api_t *a, float **p, case_t *c) {
    return a->ambient_random_uniform(I[0], I[1], I[2], I[3], p[0]);
}
static int call_drop_f(const api_t *a, float **p, case_t *c) {
    return a->ambient_dropout_forward(I[0], FL[0], I[1], I[2], I[3], p[0], p[1]);
}
static int call_drop_b(const api_t *a, float **p, case_t *c) {
    return a->ambient_dropout_backward(I[0], FL[0], I[1], I[2], I[3], p[0], p[1]);
}
static int call_noising(const api_t *a, float **p, case_t *c) {
    return a->ambient_ambient_noising(I[0], I[1], p[0], p[1], p[2], c->ids, I[2], I[3], p[3], p[4]);
}
/* tensors: x0, x_t, x_tn, sigma_t, sigma_tn, logvar, mask, loss, grad_x0, grad_logvar;
 * I[2] bit 0: with logvar, bit 1: with mask, bit 2: with grad_x0 */
static int call_loss(const api_t *a, float **p, case_t *c) {
    int flags = (int)I[3];
    return a->ambient_ambient_loss(I[0], I[1], I[2], FL[0], p[0], p[1], p[2], p[3], p[4], flags & 1 ? p[5] : NULL,
                                   flags & 2 ? p[6] : NULL, FL[1], p[7], flags & 4 ? p[8] : NULL,
                                   flags & 1 ? p[9] : NULL);
}
static int call_axpby(const api_t *a, float **p, case_t *c) {
    return a->ambient_sample_axpby(I[0], I[1], p[0], p[1], I[2] ? p[2] : NULL, I[2] ? p[3] : NULL, p[4]);
}
static int call_sumsq(const api_t *a, float **p, case_t *c) {
    return a->ambient_sum_squares(I[0], p[0], (int32_t)I[1], p[1]);
}
static int call_guard(const api_t *a, float **p, case_t *c) { return a->ambient_nan_guard(I[0], p[0], &c->bad_count); }
static int call_adam(const api_t *a, float **p, case_t *c) {
    return a->ambient_adam_step(I[0], FL[0], FL[1], FL[2], FL[3], I[1], I[2] ? p[4] : NULL, FL[4], p[0], p[1], p[2],
                                p[3]);
}
static int call_ema(const api_t *a, float **p, case_t *c) { return a->ambient_ema_update(I[0], FL[0], p[0], p[1]); }

/* ---- The list of cases ------------------------------------------------------------------------ */

static const char *filter;
static int quick;

static case_t *new_case(const char *kernel, call_fn call, double tol) {
    static case_t c;
    memset(&c, 0, sizeof c);
    c.kernel = kernel;
    c.call = call;
    c.tol = tol;
    return &c;
}

/* --filter takes substrings separated by commas: a kernel is run when its name contains one. */
static int wanted(const char *kernel) {
    if (!filter) return 1;
    for (const char *part = filter; *part;) {
        size_t len = strcspn(part, ",");
        char piece[64];
        snprintf(piece, sizeof piece, "%.*s", (int)(len < sizeof piece ? len : sizeof piece - 1), part);
        if (piece[0] != '\0' && strstr(kernel, piece) != NULL) return 1;
        part += len + (part[len] == ',');
    }
    return 0;
}

/* Float32 tolerance for a reduction of length k. */
static double tol_k(int64_t k) {
    double t = 1e-5 * sqrt((double)k) / 16.0;
    return t > 1e-5 ? t : 1e-5;
}

/* Tolerance of a matrix product with reduction length k in the library's precision (see the
 * file comment: one rounding of each operand, so independent of k on tensor cores). */
static double tol_matmul(int64_t k) {
    if (matmul_precision == MATMUL_BF16) return 2e-2;
    if (matmul_precision == MATMUL_TF32) return 3e-3;
    return tol_k(k);
}

/* Tolerance of attention: tensor cores for head_dim <= 128 unless fp32 (attention.cu). */
static double tol_attention(int64_t head_dim, int64_t reduce) {
    if (head_dim <= 128 && matmul_precision == MATMUL_BF16) return 4e-2;
    if (head_dim <= 128 && matmul_precision == MATMUL_TF32) return 5e-3;
    return tol_k(reduce) * 2;
}

static void gemm_cases(void) {
    /* ta, tb, batch, m, n, k, beta != 0; the last two take the tensor cores' 128 x 128 tiles */
    const int64_t shapes[][8] = {{0, 0, 1, 37, 29, 53, 0},       {1, 1, 3, 65, 130, 17, 1},
                                 {0, 1, 1, 1, 1, 1, 0},          {1, 0, 2, 300, 260, 300, 1},
                                 {0, 0, 1, 1024, 1024, 1024, 0}, {1, 1, 1, 2049, 1537, 777, 1},
                                 {0, 1, 1, 4096, 4096, 4096, 0}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t *v = shapes[s];
        if ((quick && v[3] * v[4] * v[5] > 10000000) || !wanted("gemm")) continue;
        case_t *c = new_case("gemm", call_gemm, tol_matmul(v[5]));
        memcpy(c->i, v, 6 * sizeof(int64_t));
        c->flops = 2.0 * v[2] * v[3] * v[4] * v[5];
        c->f[0] = 0.75f;
        c->f[1] = v[6] ? -1.5f : 0.0f;
        snprintf(c->shape, sizeof c->shape, "t%lld%lld b%lld %lldx%lldx%lld%s", (long long)v[0], (long long)v[1],
                 (long long)v[2], (long long)v[3], (long long)v[4], (long long)v[5], v[6] ? " beta" : "");
        add(c, "a", v[2] * v[3] * v[5], IN, RANDOM, 1);
        add(c, "b", v[2] * v[5] * v[4], IN, RANDOM, 1);
        add(c, "c", v[2] * v[3] * v[4], v[6] ? INOUT : OUT, RANDOM, 1);
        run_case(c);
    }
}

static void elementwise_cases(void) {
    const int64_t counts[] = {1, 100003, quick ? 0 : 1 << 24};
    for (int s = 0; s < 3; s++) {
        int64_t n = counts[s];
        if (n == 0) continue;
        case_t *c;
        c = new_case("mp_silu_forward", call_mp_silu_f, 1e-5);
        c->i[0] = n;
        snprintf(c->shape, sizeof c->shape, "%lld", (long long)n);
        add(c, "x", n, IN, RANDOM, 6);
        add(c, "y", n, OUT, 0, 0);
        if (wanted(c->kernel)) run_case(c);
        c = new_case("mp_silu_backward", call_mp_silu_b, 1e-5);
        c->i[0] = n;
        snprintf(c->shape, sizeof c->shape, "%lld", (long long)n);
        add(c, "x", n, IN, RANDOM, 6);
        add(c, "dy", n, IN, RANDOM, 1);
        add(c, "dx", n, OUT, 0, 0);
        if (wanted(c->kernel)) run_case(c);
        c = new_case("mp_sum_forward", call_mp_sum_f, 1e-5);
        c->i[0] = n;
        c->f[0] = 0.3f;
        snprintf(c->shape, sizeof c->shape, "%lld", (long long)n);
        add(c, "a", n, IN, RANDOM, 1);
        add(c, "b", n, IN, RANDOM, 1);
        add(c, "y", n, OUT, 0, 0);
        if (wanted(c->kernel)) run_case(c);
        c = new_case("mp_sum_backward", call_mp_sum_b, 1e-5);
        c->i[0] = n;
        c->f[0] = 0.3f;
        snprintf(c->shape, sizeof c->shape, "%lld", (long long)n);
        add(c, "dy", n, IN, RANDOM, 1);
        add(c, "da", n, OUT, 0, 0);
        add(c, "db", n, OUT, 0, 0);
        if (wanted(c->kernel)) run_case(c);
        c = new_case("clip_forward", call_clip_f, 0);
        c->i[0] = n;
        c->f[0] = 0.5f;
        snprintf(c->shape, sizeof c->shape, "%lld", (long long)n);
        add(c, "x", n, IN, RANDOM, 1);
        add(c, "y", n, OUT, 0, 0);
        if (wanted(c->kernel)) run_case(c);
        c = new_case("clip_backward", call_clip_b, 0);
        c->i[0] = n;
        c->f[0] = 0.5f;
        snprintf(c->shape, sizeof c->shape, "%lld", (long long)n);
        add(c, "x", n, IN, RANDOM, 1);
        add(c, "dy", n, IN, RANDOM, 1);
        add(c, "dx", n, OUT, 0, 0);
        if (wanted(c->kernel)) run_case(c);
        for (int normal = 0; normal < 2; normal++) {
            c = new_case(normal ? "random_normal" : "random_uniform", normal ? call_normal : call_uniform,
                         normal ? 2e-6 : 0);
            c->i[0] = n;
            c->i[1] = (int64_t)0x9e3779b97f4a7c15ull;
            c->i[2] = 12345;
            c->i[3] = 3; /* starts inside a Philox group */
            snprintf(c->shape, sizeof c->shape, "%lld offset 3", (long long)n);
            add(c, "y", n, OUT, 0, 0);
            if (wanted(c->kernel)) run_case(c);
        }
        for (int back = 0; back < 2; back++) {
            c = new_case(back ? "dropout_backward" : "dropout_forward", back ? call_drop_b : call_drop_f, 0);
            c->i[0] = n;
            c->f[0] = 0.13f;
            c->i[1] = 77;
            c->i[2] = 5;
            c->i[3] = 6;
            snprintf(c->shape, sizeof c->shape, "%lld p 0.13 offset 6", (long long)n);
            add(c, "x", n, IN, RANDOM, 1);
            add(c, "y", n, OUT, 0, 0);
            if (wanted(c->kernel)) run_case(c);
        }
        c = new_case("sum_squares", call_sumsq, tol_k(n));
        c->i[0] = n;
        c->i[1] = s % 2;
        snprintf(c->shape, sizeof c->shape, "%lld%s", (long long)n, s % 2 ? " accumulate" : "");
        add(c, "x", n, IN, RANDOM, 1);
        add(c, "result", 1, s % 2 ? INOUT : OUT, POSITIVE, 1);
        if (wanted(c->kernel)) run_case(c);
        c = new_case("ema_update", call_ema, 1e-5);
        c->i[0] = n;
        c->f[0] = 0.999f;
        snprintf(c->shape, sizeof c->shape, "%lld", (long long)n);
        add(c, "param", n, IN, RANDOM, 1);
        add(c, "ema", n, INOUT, RANDOM, 1);
        if (wanted(c->kernel)) run_case(c);
        for (int clip = 0; clip < 2; clip++) {
            c = new_case("adam_step", call_adam, 1e-5);
            c->i[0] = n;
            c->i[1] = 7;
            c->i[2] = clip;
            c->f[0] = 1e-3f;
            c->f[1] = 0.9f;
            c->f[2] = 0.99f;
            c->f[3] = 1e-8f;
            c->f[4] = 0.5f;
            snprintf(c->shape, sizeof c->shape, "%lld%s", (long long)n, clip ? " clipped" : "");
            add(c, "param", n, INOUT, RANDOM, 1);
            add(c, "grad", n, IN, RANDOM, 1);
            add(c, "m", n, INOUT, RANDOM, 0.1f);
            add(c, "v", n, INOUT, POSITIVE, 0.01f);
            add(c, "grad_sum_squares", 1, IN, POSITIVE, 4);
            if (wanted(c->kernel)) run_case(c);
        }
    }
}

static void guard_cases(void) {
    if (!wanted("nan_guard")) return;
    const int64_t counts[] = {1, 100003};
    for (int k = 0; k < 2; k++) {
        case_t *c = new_case("nan_guard", call_guard, 0);
        c->i[0] = counts[k];
        snprintf(c->shape, sizeof c->shape, "%lld with NaN and +-Inf", (long long)counts[k]);
        add(c, "x", counts[k], INOUT, RANDOM, 1); /* prepare() plants the bad values */
        run_case(c);
    }
}

static void pixel_norm_cases(void) {
    /* 40 x 4100: one block per row of 4100 channels, more rows than the emulated device's 32
     * blocks, so that a block normalises two rows in turn */
    const int64_t shapes[][2] = {{1, 1}, {1000, 3}, {4096, 128}, {7, 5000}, {40, 4100}, {131072, 128}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t rows = shapes[s][0], ch = shapes[s][1];
        if (quick && rows * ch > 1000000) continue;
        case_t *c = new_case("pixel_norm_forward", call_pn_f, tol_k(ch));
        c->i[0] = rows;
        c->i[1] = ch;
        c->f[0] = 1e-4f;
        snprintf(c->shape, sizeof c->shape, "%lldx%lld", (long long)rows, (long long)ch);
        add(c, "x", rows * ch, IN, RANDOM, 2);
        add(c, "y", rows * ch, OUT, 0, 0);
        if (wanted(c->kernel)) run_case(c);
        c = new_case("pixel_norm_backward", call_pn_b, tol_k(ch));
        c->i[0] = rows;
        c->i[1] = ch;
        c->f[0] = 1e-4f;
        snprintf(c->shape, sizeof c->shape, "%lldx%lld", (long long)rows, (long long)ch);
        add(c, "x", rows * ch, IN, RANDOM, 2);
        add(c, "dy", rows * ch, IN, RANDOM, 1);
        add(c, "dx", rows * ch, OUT, 0, 0);
        if (wanted(c->kernel)) run_case(c);
    }
}

static void conv_cases(void) {
    /* n, h, w, c_in, c_out, kernel, beta != 0 */
    const int64_t shapes[][7] = {{1, 5, 7, 3, 5, 3, 0},     {2, 8, 8, 16, 32, 3, 1},    {3, 9, 11, 7, 13, 1, 0},
                                 {1, 1, 1, 4, 4, 3, 0},     {1, 16, 16, 130, 67, 3, 1}, {32, 16, 16, 128, 128, 3, 0},
                                 {32, 32, 32, 64, 64, 3, 0}, {8, 64, 64, 128, 128, 3, 0}, {8, 64, 64, 4, 128, 3, 0},
                                 {8, 16, 16, 512, 512, 1, 0}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t *v = shapes[s];
        int64_t m = v[0] * v[1] * v[2], kk = v[5] * v[5];
        if (quick && m * v[3] * v[4] * kk > 50000000) continue;
        for (int pass = 0; pass < 3; pass++) {
            static const char *names[3] = {"conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight"};
            static const call_fn calls[3] = {call_conv_f, call_conv_i, call_conv_w};
            if (!wanted(names[pass])) continue;
            int64_t reduce = pass == 0 ? kk * v[3] : pass == 1 ? kk * v[4] : m;
            double tol = tol_matmul(reduce);
            /* fp32: the CPU runs the three 3x3 passes by Winograd F(4x4) where it pays, whose
             * transforms scale rounding errors by up to ~8 (test_cpu_conv2d allows 1e-5 of the
             * sum of |terms|); against the emulated library they came to 1.07 (forward) and 1.23
             * (weight gradient) times tol_k */
            if (matmul_precision == MATMUL_FP32 && v[5] == 3) tol *= 4;
            case_t *c = new_case(names[pass], calls[pass], tol);
            memcpy(c->i, v, 6 * sizeof(int64_t));
            c->flops = 2.0 * (double)m * v[3] * v[4] * kk;
            c->f[0] = v[6] ? 1.0f : 0.0f;
            snprintf(c->shape, sizeof c->shape, "%lldx%lldx%lld %lld->%lld k%lld%s", (long long)v[0], (long long)v[1],
                     (long long)v[2], (long long)v[3], (long long)v[4], (long long)v[5], v[6] ? " beta 1" : "");
            int64_t xs = m * v[3], ys = m * v[4], ws = v[4] * kk * v[3];
            int out_role = v[6] ? INOUT : OUT;
            if (pass == 0) {
                add(c, "x", xs, IN, RANDOM, 1);
                add(c, "weight", ws, IN, RANDOM, 1);
                add(c, "y", ys, out_role, RANDOM, 1);
            } else if (pass == 1) {
                add(c, "dy", ys, IN, RANDOM, 1);
                add(c, "weight", ws, IN, RANDOM, 1);
                add(c, "dx", xs, out_role, RANDOM, 1);
            } else {
                add(c, "x", xs, IN, RANDOM, 1);
                add(c, "dy", ys, IN, RANDOM, 1);
                add(c, "dweight", ws, out_role, RANDOM, 1);
            }
            run_case(c);
        }
    }
}

static void weight_norm_cases(void) {
    const int64_t shapes[][2] = {{1, 1}, {5, 7}, {128, 1152}, {512, 4608}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t f = shapes[s][0], fan = shapes[s][1], count = f * fan;
        case_t *c = new_case("weight_norm_forward", call_wn_f, tol_k(fan));
        c->i[0] = f;
        c->i[1] = fan;
        c->f[0] = 1e-4f;
        c->f[1] = 1.7f;
        snprintf(c->shape, sizeof c->shape, "%lldx%lld", (long long)f, (long long)fan);
        add(c, "w", count, IN, RANDOM, 1);
        add(c, "w_hat", count, OUT, 0, 0);
        if (wanted(c->kernel)) run_case(c);
        c = new_case("weight_norm_backward", call_wn_b, tol_k(count));
        c->i[0] = f;
        c->i[1] = fan;
        c->f[0] = 1e-4f;
        c->f[1] = 1.7f;
        snprintf(c->shape, sizeof c->shape, "%lldx%lld", (long long)f, (long long)fan);
        add(c, "w", count, IN, RANDOM, 1);
        add(c, "dw_hat", count, IN, RANDOM, 1);
        add(c, "dw", count, OUT, 0, 0);
        add(c, "dgain", 1, OUT, 0, 0);
        if (wanted(c->kernel)) run_case(c);
        c = new_case("weight_norm_force", call_wn_force, tol_k(fan));
        c->i[0] = f;
        c->i[1] = fan;
        c->f[0] = 1e-4f;
        snprintf(c->shape, sizeof c->shape, "%lldx%lld", (long long)f, (long long)fan);
        add(c, "w", count, INOUT, RANDOM, 1);
        if (wanted(c->kernel)) run_case(c);
    }
}

/* Rows of qkv pixel-normalised per head (|q| = sqrt(d)), as the caller guarantees. */
static void normalise_qkv(float *qkv, int64_t tokens, int64_t d) {
    for (int64_t r = 0; r < tokens; r++) {
        float *v = qkv + r * d;
        double s = 0;
        for (int64_t c = 0; c < d; c++) s += (double)v[c] * v[c];
        double k = sqrt((double)d / (s > 0 ? s : 1));
        for (int64_t c = 0; c < d; c++) v[c] = (float)(v[c] * k);
    }
}

static void attention_cases(void) {
    /* n, length, heads, head_dim; 96 pads to the tensor cores' 128, 200 runs the SIMT kernels in
     * every precision (tiles of 8 queries, whose rows cross warps) */
    const int64_t shapes[][4] = {{1, 1, 1, 8},     {2, 37, 2, 16},   {3, 65, 1, 64},  {1, 100, 3, 40},
                                 {2, 70, 1, 96},   {1, 45, 2, 200},  {32, 64, 2, 64}, {32, 256, 2, 64},
                                 {128, 256, 2, 64}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t n = shapes[s][0], L = shapes[s][1], H = shapes[s][2], d = shapes[s][3];
        if (quick && n * L * L * H * d > 100000000) continue;
        int64_t qkv_count = n * L * H * 3 * d, out_count = n * L * H * d, lse_count = n * H * L;
        int64_t reduce = L > d ? L : d;
        for (int back = 0; back < 2; back++) {
            case_t *c = new_case(back ? "attention_backward" : "attention_forward", back ? call_att_b : call_att_f,
                                 tol_attention(d, reduce));
            if (!wanted(c->kernel)) continue;
            c->i[0] = n;
            c->i[1] = L;
            c->i[2] = H;
            c->i[3] = d;
            snprintf(c->shape, sizeof c->shape, "n%lld L%lld H%lld d%lld", (long long)n, (long long)L, (long long)H,
                     (long long)d);
            /* the products' flops, as bench kernels counts them: 2 (forward) or 5 (backward) of 2 n H L^2 d */
            c->flops = (back ? 10.0 : 4.0) * (double)n * H * L * L * d;
            /* prepare() normalises qkv and, for backward, computes out and lse on the CPU */
            add(c, "qkv", qkv_count, IN, UNIT_ROWS, 1);
            if (back) {
                add(c, "out", out_count, IN, UNIT_ROWS, 1);
                add(c, "lse", lse_count, IN, UNIT_ROWS, 1);
                add(c, "dout", out_count, IN, RANDOM, 1);
                add(c, "dqkv", qkv_count, OUT, 0, 0);
            } else {
                add(c, "out", out_count, OUT, 0, 0);
                add(c, "lse", lse_count, OUT, 0, 0);
            }
            run_case(c);
        }
    }
}

static void layer_cases(void) {
    const int64_t cats[][3] = {{1, 1, 1}, {1000, 3, 5}, {32768, 128, 64}};
    for (size_t s = 0; s < 3; s++) {
        int64_t r = cats[s][0], ca = cats[s][1], cb = cats[s][2];
        case_t *c = new_case("mp_cat_forward", call_cat_f, 1e-5);
        c->i[0] = r;
        c->i[1] = ca;
        c->i[2] = cb;
        c->f[0] = 0.4f;
        snprintf(c->shape, sizeof c->shape, "%lld rows %lld+%lld", (long long)r, (long long)ca, (long long)cb);
        add(c, "a", r * ca, IN, RANDOM, 1);
        add(c, "b", r * cb, IN, RANDOM, 1);
        add(c, "y", r * (ca + cb), OUT, 0, 0);
        if (wanted(c->kernel)) run_case(c);
        c = new_case("mp_cat_backward", call_cat_b, 1e-5);
        memcpy(c->i, cats[s], 3 * sizeof(int64_t));
        c->f[0] = 0.4f;
        snprintf(c->shape, sizeof c->shape, "%lld rows %lld+%lld", (long long)r, (long long)ca, (long long)cb);
        add(c, "dy", r * (ca + cb), IN, RANDOM, 1);
        add(c, "da", r * ca, OUT, 0, 0);
        add(c, "db", r * cb, OUT, 0, 0);
        if (wanted(c->kernel)) run_case(c);
    }
    const int64_t imgs[][4] = {{1, 2, 2, 1}, {2, 6, 10, 3}, {32, 32, 32, 64}, {128, 64, 64, 128}};
    for (size_t s = 0; s < 4; s++) {
        const int64_t *v = imgs[s];
        int64_t big = v[0] * v[1] * v[2] * v[3], small = big / 4;
        if (quick && big > 10000000) continue;
        static const char *names[4] = {"avg_pool2x2_forward", "avg_pool2x2_backward", "upsample2x_forward",
                                       "upsample2x_backward"};
        static const call_fn calls[4] = {call_pool_f, call_pool_b, call_up_f, call_up_b};
        for (int k = 0; k < 4; k++) {
            if (!wanted(names[k])) continue;
            case_t *c = new_case(names[k], calls[k], 0);
            memcpy(c->i, v, 4 * sizeof(int64_t));
            if (k >= 2) { /* upsampling takes the small tensor's h and w */
                c->i[1] = v[1] / 2;
                c->i[2] = v[2] / 2;
            }
            snprintf(c->shape, sizeof c->shape, "%lldx%lldx%lldx%lld", (long long)v[0], (long long)v[1],
                     (long long)v[2], (long long)v[3]);
            int in_big = k == 0 || k == 3;
            add(c, "in", in_big ? big : small, IN, RANDOM, 1);
            add(c, "out", in_big ? small : big, OUT, 0, 0);
            run_case(c);
        }
    }
    const int64_t fouriers[][2] = {{1, 1}, {7, 5}, {128, 192}};
    for (size_t s = 0; s < 3; s++) {
        int64_t n = fouriers[s][0], ch = fouriers[s][1];
        for (int back = 0; back < 2; back++) {
            case_t *c = new_case(back ? "mp_fourier_backward" : "mp_fourier_forward",
                                 back ? call_fourier_b : call_fourier_f, back ? tol_k(ch) : 1e-5);
            if (!wanted(c->kernel)) continue;
            c->i[0] = n;
            c->i[1] = ch;
            snprintf(c->shape, sizeof c->shape, "%lldx%lld", (long long)n, (long long)ch);
            add(c, "x", n, IN, RANDOM, 3);
            add(c, "freqs", ch, IN, RANDOM, 6);
            add(c, "phases", ch, IN, RANDOM, 3);
            if (back) {
                add(c, "dy", n * ch, IN, RANDOM, 1);
                add(c, "dx", n, OUT, 0, 0);
            } else {
                add(c, "y", n * ch, OUT, 0, 0);
            }
            run_case(c);
        }
    }
    const int64_t scales[][3] = {{1, 1, 1}, {3, 17, 5}, {32, 256, 128}, {128, 4096, 128}};
    for (size_t s = 0; s < 4; s++) {
        int64_t n = scales[s][0], P = scales[s][1], C = scales[s][2];
        if (quick && n * P * C > 10000000) continue;
        for (int silu = 0; silu < 2; silu++) {
            case_t *c = new_case(silu ? "channel_scale_silu_forward" : "channel_scale_forward",
                                 silu ? call_css_f : call_cs_f, 1e-5);
            memcpy(c->i, scales[s], 3 * sizeof(int64_t));
            snprintf(c->shape, sizeof c->shape, "n%lld P%lld C%lld", (long long)n, (long long)P, (long long)C);
            add(c, "x", n * P * C, IN, RANDOM, 1);
            add(c, "s", n * C, IN, RANDOM, 1);
            add(c, "y", n * P * C, OUT, 0, 0);
            if (wanted(c->kernel)) run_case(c);
            c = new_case(silu ? "channel_scale_silu_backward" : "channel_scale_backward", silu ? call_css_b : call_cs_b,
                         tol_k(P));
            memcpy(c->i, scales[s], 3 * sizeof(int64_t));
            snprintf(c->shape, sizeof c->shape, "n%lld P%lld C%lld", (long long)n, (long long)P, (long long)C);
            add(c, "x", n * P * C, IN, RANDOM, 1);
            add(c, "s", n * C, IN, RANDOM, 1);
            add(c, "dy", n * P * C, IN, RANDOM, 1);
            add(c, "dx", n * P * C, OUT, 0, 0);
            add(c, "ds", n * C, OUT, 0, 0);
            if (wanted(c->kernel)) run_case(c);
        }
    }
    const int64_t axpbys[][2] = {{1, 1}, {5, 1001}, {128, 16384}};
    for (size_t s = 0; s < 3; s++)
        for (int with_y = 0; with_y < 2; with_y++) {
            case_t *c = new_case("sample_axpby", call_axpby, 1e-5);
            if (!wanted(c->kernel)) continue;
            c->i[0] = axpbys[s][0];
            c->i[1] = axpbys[s][1];
            c->i[2] = with_y;
            int64_t count = axpbys[s][0] * axpbys[s][1];
            snprintf(c->shape, sizeof c->shape, "%lldx%lld%s", (long long)axpbys[s][0], (long long)axpbys[s][1],
                     with_y ? " with y" : "");
            add(c, "alpha", axpbys[s][0], IN, RANDOM, 1);
            add(c, "x", count, IN, RANDOM, 1);
            add(c, "beta", axpbys[s][0], IN, RANDOM, 1);
            add(c, "y", count, IN, RANDOM, 1);
            add(c, "out", count, OUT, 0, 0);
            run_case(c);
        }
}

static void training_cases(void) {
    /* n, channels, h, w */
    const int64_t shapes[][4] = {{1, 1, 1, 1}, {4, 3, 32, 32}, {3, 5, 7, 9}, {64, 3, 32, 32}, {128, 4, 64, 64}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t n = shapes[s][0], ch = shapes[s][1], size = ch * shapes[s][2] * shapes[s][3], pixels = size / ch;
        if (wanted("ambient_noising")) {
            case_t *c = new_case("ambient_noising", call_noising, 1e-5);
            c->i[0] = n;
            c->i[1] = size;
            c->i[2] = 1234567;
            c->i[3] = -42;
            for (int64_t i = 0; i < n && i < 256; i++) c->ids[i] = 1000 + 7 * i;
            snprintf(c->shape, sizeof c->shape, "%lld x %lld", (long long)n, (long long)size);
            add(c, "x", n * size, IN, RANDOM, 1);
            add(c, "sigma_t", n, IN, POSITIVE, 2);
            add(c, "sigma_tn", n, IN, POSITIVE, 0.5f); /* made <= sigma_t (some 0, one equal) below */
            add(c, "x_tn", n * size, OUT, 0, 0);
            add(c, "x_t", n * size, OUT, 0, 0);
            if (n <= 256) run_case(c);
        }
        for (int flags = 0; flags < 8; flags += (s == 0 ? 1 : 7)) {
            if (!wanted("ambient_loss")) break;
            case_t *c = new_case("ambient_loss", call_loss, tol_k(size));
            c->i[0] = n;
            c->i[1] = size;
            c->i[2] = ch;
            c->i[3] = flags;
            c->f[0] = 0.5f;
            c->f[1] = 0.25f;
            snprintf(c->shape, sizeof c->shape, "%lld x %lld c%lld%s%s%s", (long long)n, (long long)size,
                     (long long)ch, flags & 1 ? " logvar" : "", flags & 2 ? " mask" : "", flags & 4 ? " grad" : "");
            add(c, "x0_pred", n * size, IN, RANDOM, 1);
            add(c, "x_t", n * size, IN, RANDOM, 2);
            add(c, "x_tn", n * size, IN, RANDOM, 1);
            add(c, "sigma_t", n, IN, POSITIVE, 2);
            add(c, "sigma_tn", n, IN, POSITIVE, 0.5f);
            add(c, "logvar", n, IN, RANDOM, 1);
            add(c, "mask", n * pixels, IN, POSITIVE, 1);
            add(c, "loss", n, OUT, 0, 0);
            add(c, "grad_x0", n * size, flags & 4 ? OUT : IN, RANDOM, 1);
            add(c, "grad_logvar", n, flags & 1 ? OUT : IN, RANDOM, 1);
            run_case(c);
        }
    }
}

/* ---- Inputs with structure ------------------------------------------------------------------- */

static void normalise_qkv(float *qkv, int64_t tokens, int64_t d);

/* run_case fills tensors by role; prepare() then gives a few kernels the inputs they need. */
static void prepare(case_t *c) {
    const char *k = c->kernel;
    if (strcmp(k, "nan_guard") == 0 || strcmp(k, "clip_forward") == 0 || strcmp(k, "clip_backward") == 0) {
        float *x = c->t[0].host;
        int64_t n = c->t[0].count;
        x[n / 2] = NAN;
        if (n > 2) x[n - 1] = INFINITY;
        if (n > 3) x[1] = -INFINITY;
    } else if (strcmp(k, "pixel_norm_backward") == 0 || strcmp(k, "weight_norm_backward") == 0) {
        /* dx = s (dy - y <y, dy> / |y|^2)-like: with one channel the two terms cancel exactly
         * up to eps, and the difference of two float32 roundings of s dy is all that is left;
         * the error is measured against the size of s dy */
        const int pixel = k[0] == 'p';
        const int64_t rows = c->i[0], cols = c->i[1];
        const double eps = c->f[0];
        const float *x = c->t[0].host, *dy = c->t[1].host;
        double ss = 0;
        for (int64_t r = 0; r < rows; r++) {
            double sq = 0;
            for (int64_t j = 0; j < cols; j++) sq += (double)x[r * cols + j] * x[r * cols + j];
            const double norm = sqrt(sq / (double)cols);
            const double scale = pixel ? 1.0 / (eps + norm) : c->f[1] / ((eps + norm) * sqrt((double)cols));
            for (int64_t j = 0; j < cols; j++) ss += scale * scale * (double)dy[r * cols + j] * dy[r * cols + j];
        }
        c->floor = sqrt(ss / (double)(rows * cols));
    } else if (strncmp(k, "attention", 9) == 0) {
        int64_t n = c->i[0], L = c->i[1], H = c->i[2], d = c->i[3];
        normalise_qkv(c->t[0].host, n * L * H * 3, d);
        if (strcmp(k, "attention_backward") == 0 &&
            cpu.ambient_attention_forward(n, L, H, d, c->t[0].host, c->t[1].host, c->t[2].host) != AMBIENT_STATUS_OK) {
            fprintf(stderr, "test_parity: attention forward for the backward case: %s\n", cpu.ambient_last_error());
            failures++;
        }
    } else if (strcmp(k, "ambient_noising") == 0) {
        /* sigma_tn: 0, half of sigma_t, or sigma_t itself (no eps drawn) */
        for (int64_t i = 0; i < c->i[0]; i++) {
            float t = c->t[1].host[i];
            c->t[2].host[i] = i % 3 == 0 ? 0.0f : i % 3 == 1 ? 0.5f * t : t;
        }
    } else if (strcmp(k, "ambient_loss") == 0) {
        for (int64_t i = 0; i < c->i[0]; i++) { /* sigma_tn < sigma_t, some 0 */
            float t = c->t[3].host[i];
            c->t[4].host[i] = i % 2 ? 0.0f : 0.6f * t;
        }
    }
}

/* ---- Main ------------------------------------------------------------------------------------- */

static int no_device_mode(void) {
    int32_t count = -1;
    int status = gpu.ambient_device_count(&count);
    if (status != AMBIENT_STATUS_NO_DEVICE) return 0;
    CHECK(count == 0, "count %d without a device", count);
    const char *message = gpu.ambient_last_error();
    CHECK(message[0] != '\0' && strstr(message, "ambient_device_count") != NULL, "message: %s", message);
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", message);
    float host[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    CHECK(gpu.ambient_conv2d_forward(1, 2, 2, 1, 1, 1, host, host, 0.0f, host + 4) == AMBIENT_STATUS_NO_DEVICE,
          "a kernel without a device");
    CHECK(strstr(gpu.ambient_last_error(), "no CUDA device") != NULL, "message: %s", gpu.ambient_last_error());
    /* argument errors still come first, without a device */
    CHECK(gpu.ambient_attention_forward(1, 1, 1, 0, host, host + 4, NULL) == AMBIENT_STATUS_INVALID_ARGUMENT,
          "head_dim 0");
    printf("test_parity: no CUDA device (%s); both libraries load and export all of ambient.h, the CUDA one reports "
           "no device cleanly; nothing to compare\n",
           saved);
    return 1;
}

int main(int argc, char **argv) {
    const char *paths[2] = {NULL, NULL};
    int npaths = 0;
    const char *csv_path = NULL;
    for (int a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--quick") == 0) quick = 1;
        else if (strcmp(argv[a], "--no-timing") == 0) timing = 0;
        else if (strcmp(argv[a], "--filter") == 0 && a + 1 < argc) filter = argv[++a];
        else if (strcmp(argv[a], "--csv") == 0 && a + 1 < argc) csv_path = argv[++a];
        else if (npaths < 2 && argv[a][0] != '-') paths[npaths++] = argv[a];
        else {
            fprintf(stderr, "usage: test_parity [--quick] [--no-timing] [--filter NAME[,NAME...]] [--csv FILE] [cpu_lib cuda_lib]\n");
            return 2;
        }
    }
    char cpu_path[4096], gpu_path[4096];
    if (npaths == 2) {
        snprintf(cpu_path, sizeof cpu_path, "%s", paths[0]);
        snprintf(gpu_path, sizeof gpu_path, "%s", paths[1]);
    } else {
        test_find_library(cpu_path, sizeof cpu_path, argv[0], "libambient_cpu.so");
        test_find_library(gpu_path, sizeof gpu_path, argv[0], "libambient_cuda.so");
    }
    if (load_api(cpu_path, "cpu", &cpu) || load_api(gpu_path, "cuda", &gpu)) return 1;
    matmul_precision = test_matmul_precision();
    if (matmul_precision == MATMUL_UNKNOWN) {
        fprintf(stderr, "test_parity: AMBIENT_CUDA_MATMUL = \"%s\" is not bf16, tf32 or fp32 (the library refuses it too)\n",
                getenv("AMBIENT_CUDA_MATMUL"));
        return 1;
    }
    printf("test_parity: matrix products (gemm, conv2d, attention) of the CUDA library in %s (AMBIENT_CUDA_MATMUL=%s)\n",
           matmul_names[matmul_precision], getenv("AMBIENT_CUDA_MATMUL") ? getenv("AMBIENT_CUDA_MATMUL") : "unset");
    CHECK(cpu.ambient_library_backend() == AMBIENT_BACKEND_CPU, "cpu library backend %d", cpu.ambient_library_backend());
    CHECK(gpu.ambient_library_backend() == AMBIENT_BACKEND_CUDA, "cuda library backend %d",
          gpu.ambient_library_backend());
    CHECK(cpu.ambient_library_version() == gpu.ambient_library_version(), "versions %d and %d",
          cpu.ambient_library_version(), gpu.ambient_library_version());
    if (no_device_mode()) return test_finish("test_parity");
    if (test_failures) return test_finish("test_parity");

    int32_t count = 0;
    if (gpu.ambient_device_count(&count) != AMBIENT_STATUS_OK) {
        fprintf(stderr, "test_parity: device_count: %s\n", gpu.ambient_last_error());
        return 1;
    }
    char name[256];
    gpu.ambient_device_name(0, name, sizeof name);
    int32_t threads = 0;
    cpu.ambient_threads_get(&threads);
    printf("test_parity: CUDA device 0 of %d: %s; CPU backend with %d threads\n", count, name, threads);
    int32_t cpu_precision = -1, gpu_precision = -1;
    CHECK(cpu.ambient_matmul_precision(&cpu_precision) == AMBIENT_STATUS_OK && cpu_precision == AMBIENT_PRECISION_FP32,
          "the CPU library's matrix products in precision %d", cpu_precision);
    CHECK(gpu.ambient_matmul_precision(&gpu_precision) == AMBIENT_STATUS_OK &&
              test_matmul_from_library(gpu_precision) == matmul_precision,
          "the CUDA library reports matrix products in precision %d (%s), AMBIENT_CUDA_MATMUL says %s", gpu_precision,
          gpu.ambient_last_error(), matmul_names[matmul_precision]);
    /* The device's ceilings, to read the timings against: float32 FMA, copy bandwidth, and the
     * library's own GEMM in the precision of its matrix products (tensor cores unless fp32). */
    double gflops = 0, gbps = 0;
    if (!timing)
        printf("test_parity: --no-timing: outputs compared, nothing timed\n");
    else if (gpu.ambient_benchmark_fma_peak(0.5, &gflops) == AMBIENT_STATUS_OK &&
        gpu.ambient_benchmark_memory_bandwidth(INT64_C(1) << 30, 0.5, &gbps) == AMBIENT_STATUS_OK)
        printf("test_parity: measured float32 FMA peak %.0f GFLOP/s, device copy bandwidth %.0f GB/s\n", gflops, gbps);
    else
        printf("test_parity: ceilings not measured: %s\n", gpu.ambient_last_error());
    int64_t ceiling_n = quick ? 4096 : 8192;
    if (!timing)
        matmul_ceiling = 0;
    else if (gpu.ambient_benchmark_matmul_peak(ceiling_n, 1.0, &matmul_ceiling) == AMBIENT_STATUS_OK)
        printf("test_parity: measured matmul ceiling (ambient_gemm %lld^3, %s) %.0f GFLOP/s\n", (long long)ceiling_n,
               matmul_names[matmul_precision], matmul_ceiling);
    else {
        printf("test_parity: matmul ceiling not measured: %s\n", gpu.ambient_last_error());
        matmul_ceiling = 0;
    }
    if (csv_path) {
        csv = fopen(csv_path, "w");
        if (csv) fprintf(csv, "kernel,shape,result,worst_over_tol,tol,gpu_ms,cpu_ms,gflops,of_matmul_ceiling,precision\n");
    }
    printf("%-30s %-34s %-5s %9s %-9s %10s %10s %9s %15s  %s   [matrix products: %s]\n", "kernel", "shape", "check",
           "err/tol", "tol", "gpu ms", "cpu ms", "cpu/gpu", "GFLOP/s  of-cap", "worst output",
           matmul_names[matmul_precision]);
    test_seed(20250601);
    gemm_cases();
    elementwise_cases();
    guard_cases();
    pixel_norm_cases();
    conv_cases();
    weight_norm_cases();
    attention_cases();
    layer_cases();
    training_cases();
    if (csv) fclose(csv);
    if (failures) {
        fprintf(stderr, "test_parity: %d case(s) failed\n", failures);
        return 1;
    }
    return test_finish("test_parity");
}
