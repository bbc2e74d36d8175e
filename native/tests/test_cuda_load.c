/*
 * test_cuda_load <path to libambient_cuda.so>: loads the CUDA backend the way Java does
 * (dlopen, RTLD_NOW | RTLD_LOCAL), resolves every function of ambient.h, and checks the
 * library's identity and its argument checks, which need no GPU.
 *   No GPU or driver: ambient_device_count must answer AMBIENT_STATUS_NO_DEVICE with
 *   *count = 0 and a message, and work that needs the GPU (memory_alloc, a kernel) must do
 *   the same; the test prints "no CUDA device: <message>" and passes.
 *   A GPU: copies random data there and back, runs mp_silu, mp_sum, pixel_norm and a few
 *   gemm shapes (every transpose pair, batches, beta = 0 over NaN) and compares them with
 *   double-precision references computed here (gemm's tolerance follows AMBIENT_CUDA_MATMUL:
 *   bf16 by default, tf32, or fp32).
 *   AMBIENT_CUDA_MATMUL set to an unknown value (ctest runs it so once): the library must
 *   refuse to initialise, with INVALID_ARGUMENT and a message naming the variable, from
 *   device_count as from a kernel, GPU or not.
 * The test is not linked with libm (tests/CMakeLists.txt gives it only libdl), so the
 * references use the small exp and sqrt below.
 */
#define _GNU_SOURCE /* readlink, in test_backends.h */
#include "ambient.h"
#include "test_util.h"
#include "test_backends.h"

#include <dlfcn.h>
#include <strings.h>

/* Every function declared in ambient.h. */
#define AMBIENT_FUNCTIONS(X)                                                                  \
    X(ambient_library_version) X(ambient_library_backend) X(ambient_matmul_precision)         \
    X(ambient_last_error)                                                                     \
    X(ambient_device_count) X(ambient_device_select) X(ambient_device_name)                   \
    X(ambient_device_memory) X(ambient_device_synchronize) X(ambient_threads_set)             \
    X(ambient_threads_get) X(ambient_memory_alloc) X(ambient_memory_free)                     \
    X(ambient_memory_copy_to_device) X(ambient_memory_copy_to_host)                           \
    X(ambient_memory_copy_on_device) X(ambient_memory_set) X(ambient_benchmark_fma_peak)      \
    X(ambient_benchmark_memory_bandwidth) X(ambient_benchmark_matmul_peak) X(ambient_gemm)    \
    X(ambient_timer_start) X(ambient_timer_elapsed)                                           \
    X(ambient_mp_silu_forward)                                                                \
    X(ambient_mp_silu_backward) X(ambient_mp_sum_forward) X(ambient_mp_sum_backward)          \
    X(ambient_pixel_norm_forward) X(ambient_pixel_norm_backward) X(ambient_conv2d_forward)    \
    X(ambient_conv2d_backward_input) X(ambient_conv2d_backward_weight)                        \
    X(ambient_weight_norm_forward) X(ambient_weight_norm_backward) X(ambient_weight_norm_force) \
    X(ambient_attention_forward) X(ambient_attention_backward) X(ambient_mp_cat_forward)      \
    X(ambient_mp_cat_backward) X(ambient_avg_pool2x2_forward) X(ambient_avg_pool2x2_backward) \
    X(ambient_upsample2x_forward) X(ambient_upsample2x_backward) X(ambient_mp_fourier_forward) \
    X(ambient_mp_fourier_backward) X(ambient_channel_scale_forward)                           \
    X(ambient_channel_scale_backward) X(ambient_channel_scale_silu_forward)                   \
    X(ambient_channel_scale_silu_backward) X(ambient_clip_forward) X(ambient_clip_backward)   \
    X(ambient_sample_axpby) X(ambient_random_normal) X(ambient_random_uniform)                \
    X(ambient_dropout_forward) X(ambient_dropout_backward) X(ambient_ambient_noising)         \
    X(ambient_ambient_loss) X(ambient_sum_squares) X(ambient_nan_guard) X(ambient_adam_step)  \
    X(ambient_ema_update)

/* fn.ambient_gemm etc.: pointers typed after the declarations in ambient.h. */
#define AMBIENT_POINTER_FIELD(name) __typeof__(&name) name;
static struct { AMBIENT_FUNCTIONS(AMBIENT_POINTER_FIELD) } fn;

static int resolve_all(void *library) {
    int missing = 0;
#define AMBIENT_RESOLVE(name)                                                        \
    *(void **)&fn.name = dlsym(library, #name);                                      \
    if (fn.name == NULL) {                                                           \
        fprintf(stderr, "test_cuda_load: %s is not exported by the library\n", #name); \
        missing++;                                                                   \
    }
    AMBIENT_FUNCTIONS(AMBIENT_RESOLVE)
#undef AMBIENT_RESOLVE
    return missing;
}

/* ---- Double references without libm ------------------------------------------------------- */

/* e^x: x / 2^10 by a Taylor series, squared back 10 times (relative error ~1e-13 here). */
static double ref_exp(double x) {
    double y = x / 1024.0, term = 1.0, sum = 1.0;
    for (int i = 1; i < 14; i++) {
        term *= y / i;
        sum += term;
    }
    for (int i = 0; i < 10; i++) sum *= sum;
    return sum;
}

static double ref_sqrt(double x) {
    if (x <= 0) return 0;
    double r = x > 1 ? x : 1;
    for (int i = 0; i < 200; i++) {
        double next = 0.5 * (r + x / r);
        if (next == r) break;
        r = next;
    }
    return r;
}

/* ---- Checks that need no GPU ----------------------------------------------------------------- */

static int message_names(const char *function, const char *argument) {
    const char *message = fn.ambient_last_error();
    return strstr(message, function) != NULL && (argument == NULL || strstr(message, argument) != NULL);
}

static void check_argument_rules(void) {
    float dummy[4] = {0};
    int32_t threads = 0;
    CHECK(fn.ambient_threads_set(4) == AMBIENT_STATUS_OK, "threads_set");
    CHECK(fn.ambient_threads_get(&threads) == AMBIENT_STATUS_OK && threads >= 1, "threads_get");
    CHECK(fn.ambient_threads_get(NULL) == AMBIENT_STATUS_INVALID_ARGUMENT, "threads_get(NULL)");
    CHECK(fn.ambient_matmul_precision(NULL) == AMBIENT_STATUS_INVALID_ARGUMENT, "matmul_precision(NULL)");
    CHECK(fn.ambient_device_count(NULL) == AMBIENT_STATUS_INVALID_ARGUMENT, "device_count(NULL)");

    CHECK(fn.ambient_mp_silu_forward(-1, dummy, dummy) == AMBIENT_STATUS_INVALID_ARGUMENT, "count -1");
    CHECK(message_names("ambient_mp_silu_forward", "count = -1"), "message: %s", fn.ambient_last_error());
    CHECK(fn.ambient_mp_silu_forward(0, NULL, NULL) == AMBIENT_STATUS_OK, "count 0 is no work");
    CHECK(fn.ambient_last_error()[0] == '\0', "a successful call clears the message");
    CHECK(fn.ambient_mp_silu_backward(4, dummy, NULL, dummy) == AMBIENT_STATUS_INVALID_ARGUMENT, "NULL dy");
    CHECK(message_names("ambient_mp_silu_backward", "dy"), "message: %s", fn.ambient_last_error());
    CHECK(fn.ambient_mp_sum_forward(4, dummy, dummy, INFINITY, dummy) == AMBIENT_STATUS_INVALID_ARGUMENT,
          "t = inf");
    CHECK(fn.ambient_mp_sum_backward(4, dummy, 0.3f, dummy, dummy + 1) == AMBIENT_STATUS_INVALID_ARGUMENT,
          "da overlaps db");
    CHECK(fn.ambient_pixel_norm_forward(2, 2, 0.0f, dummy, dummy) == AMBIENT_STATUS_INVALID_ARGUMENT, "eps 0");
    CHECK(message_names("ambient_pixel_norm_forward", "eps"), "message: %s", fn.ambient_last_error());
    CHECK(fn.ambient_pixel_norm_backward(2, 2, 1e-4f, dummy, dummy, dummy) == AMBIENT_STATUS_INVALID_ARGUMENT,
          "dx overlaps x");
    /* A is m x k = 2 x 3, so lda = 2 is too small. */
    CHECK(fn.ambient_gemm(0, 0, 1, 2, 2, 3, 1.0f, dummy, 2, 0, dummy, 2, 0, 0.0f, dummy, 2, 0) ==
              AMBIENT_STATUS_INVALID_ARGUMENT, "lda < k");
    CHECK(message_names("ambient_gemm", "lda = 2"), "message: %s", fn.ambient_last_error());
    CHECK(fn.ambient_gemm(0, 0, 1, 0, 5, 5, 1.0f, NULL, 5, 0, NULL, 5, 0, 0.0f, NULL, 5, 0) ==
              AMBIENT_STATUS_OK, "m = 0 is no work");
    void *block = dummy;
    CHECK(fn.ambient_memory_alloc(0, &block) == AMBIENT_STATUS_INVALID_ARGUMENT && block == NULL,
          "alloc 0 bytes");
    CHECK(fn.ambient_memory_copy_to_host(dummy, dummy, -4) == AMBIENT_STATUS_INVALID_ARGUMENT, "bytes -4");
    CHECK(fn.ambient_memory_free(NULL) == AMBIENT_STATUS_OK, "free(NULL)");
    double result = 1;
    CHECK(fn.ambient_benchmark_fma_peak(0.0, &result) == AMBIENT_STATUS_INVALID_ARGUMENT && result == 0.0,
          "seconds 0");
    CHECK(fn.ambient_benchmark_memory_bandwidth(1000, 0.1, &result) == AMBIENT_STATUS_INVALID_ARGUMENT,
          "bytes below 1 MiB");
    CHECK(fn.ambient_benchmark_matmul_peak(8, 0.1, &result) == AMBIENT_STATUS_INVALID_ARGUMENT && result == 0.0,
          "matmul n 8");
    CHECK(message_names("ambient_benchmark_matmul_peak", "n = 8"), "message: %s", fn.ambient_last_error());
}

/* ---- AMBIENT_CUDA_MATMUL with an unknown value --------------------------------------------------- */

static void check_matmul_refused(void) {
    int32_t count = -1;
    CHECK(fn.ambient_device_count(&count) == AMBIENT_STATUS_INVALID_ARGUMENT && count == 0, "device_count");
    CHECK(message_names("ambient_device_count", "AMBIENT_CUDA_MATMUL"), "message: %s", fn.ambient_last_error());
    CHECK(strstr(fn.ambient_last_error(), getenv("AMBIENT_CUDA_MATMUL")) != NULL, "message names the value: %s",
          fn.ambient_last_error());
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", fn.ambient_last_error());
    float host[8] = {0};
    CHECK(fn.ambient_mp_silu_forward(8, host, host) == AMBIENT_STATUS_INVALID_ARGUMENT, "a kernel");
    CHECK(message_names("ambient_mp_silu_forward", "AMBIENT_CUDA_MATMUL"), "message: %s", fn.ambient_last_error());
    int32_t precision = -1;
    CHECK(fn.ambient_matmul_precision(&precision) == AMBIENT_STATUS_INVALID_ARGUMENT && precision == -1,
          "matmul_precision");
    CHECK(message_names("ambient_matmul_precision", "AMBIENT_CUDA_MATMUL"), "message: %s", fn.ambient_last_error());
    printf("AMBIENT_CUDA_MATMUL refused: %s\n", saved);
}

/* ---- No device --------------------------------------------------------------------------------- */

static void check_no_device(void) {
    const char *message = fn.ambient_last_error();
    CHECK(message[0] != '\0', "device_count gives a message");
    CHECK(strstr(message, "ambient_device_count") != NULL, "message names the function: %s", message);
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", message);

    void *ptr = (void *)&ptr;
    CHECK(fn.ambient_memory_alloc(1024, &ptr) == AMBIENT_STATUS_NO_DEVICE, "alloc without a device");
    CHECK(ptr == NULL, "alloc leaves *ptr NULL");
    CHECK(message_names("ambient_memory_alloc", "no CUDA device"), "message: %s", fn.ambient_last_error());

    float host[8] = {0};
    CHECK(fn.ambient_mp_silu_forward(8, host, host) == AMBIENT_STATUS_NO_DEVICE, "kernel without a device");
    CHECK(message_names("ambient_mp_silu_forward", "no CUDA device"), "message: %s", fn.ambient_last_error());
    CHECK(fn.ambient_device_synchronize() == AMBIENT_STATUS_NO_DEVICE, "synchronize without a device");
    CHECK(fn.ambient_timer_start() == AMBIENT_STATUS_NO_DEVICE, "timer without a device");
    double ms = -1;
    CHECK(fn.ambient_timer_elapsed(&ms) == AMBIENT_STATUS_NO_DEVICE && ms == 0.0, "timer without a device");
    CHECK(fn.ambient_device_select(0) == AMBIENT_STATUS_NO_DEVICE, "select without a device");
    int32_t precision = -1;
    CHECK(fn.ambient_matmul_precision(&precision) == AMBIENT_STATUS_NO_DEVICE, "matmul_precision without a device");
    char name[64];
    CHECK(fn.ambient_device_name(0, name, sizeof name) == AMBIENT_STATUS_NO_DEVICE, "name without a device");
    double result = 1;
    CHECK(fn.ambient_benchmark_fma_peak(0.1, &result) == AMBIENT_STATUS_NO_DEVICE && result == 0.0,
          "benchmark without a device");
    printf("no CUDA device: %s\n", saved);
}

/* ---- With a device ----------------------------------------------------------------------------- */

#define OK(call) CHECK((call) == AMBIENT_STATUS_OK, "%s", fn.ambient_last_error())

static float *device_floats(int64_t n) {
    void *p = NULL;
    OK(fn.ambient_memory_alloc((n > 0 ? n : 1) * (int64_t)sizeof(float), &p));
    return (float *)p;
}

static void check_roundtrip(void) {
    int64_t n = 100003;
    float *host = test_alloc(n), *back = test_alloc(n), *dev = device_floats(n), *dev2 = device_floats(n);
    test_fill(host, n, 3.0f);
    test_poison(back, n);
    OK(fn.ambient_memory_copy_to_device(dev, host, n * 4));
    OK(fn.ambient_memory_copy_on_device(dev2, dev, n * 4));
    OK(fn.ambient_memory_copy_to_host(back, dev2, n * 4));
    CHECK(memcmp(host, back, (size_t)n * 4) == 0, "copy there and back");
    /* Overlapping copy on the device (memmove): shift by one float. */
    OK(fn.ambient_memory_copy_on_device(dev + 1, dev, (n - 1) * 4));
    OK(fn.ambient_memory_copy_to_host(back, dev, n * 4));
    CHECK(back[0] == host[0] && memcmp(back + 1, host, (size_t)(n - 1) * 4) == 0, "overlapping copy");
    OK(fn.ambient_memory_set(dev, 0x3f, n * 4));
    OK(fn.ambient_memory_copy_to_host(back, dev, n * 4));
    unsigned char *bytes = (unsigned char *)back;
    int all = 1;
    for (int64_t i = 0; i < n * 4; i++) all &= bytes[i] == 0x3f;
    CHECK(all, "memory_set");
    OK(fn.ambient_memory_free(dev));
    OK(fn.ambient_memory_free(dev2));
    free(host);
    free(back);
}

static void check_elementwise(void) {
    /* Odd length and an offset pointer: the float4 path, its tail, and the scalar path. */
    int64_t n = 70001;
    float *x = test_alloc(n), *dy = test_alloc(n), *got = test_alloc(n), *got2 = test_alloc(n);
    double *want = (double *)malloc((size_t)n * sizeof(double)), *want2 = (double *)malloc((size_t)n * sizeof(double));
    test_fill(x, n, 6.0f);
    test_fill(dy, n, 1.0f);
    float *dx_ = device_floats(n + 1), *ddy = device_floats(n + 1), *dout = device_floats(n + 1),
          *dout2 = device_floats(n + 1);
    for (int offset = 0; offset < 2; offset++) {
        float *dx = dx_ + offset, *dg = ddy + offset, *o = dout + offset, *o2 = dout2 + offset;
        OK(fn.ambient_memory_copy_to_device(dx, x, n * 4));
        OK(fn.ambient_memory_copy_to_device(dg, dy, n * 4));

        OK(fn.ambient_mp_silu_forward(n, dx, o));
        OK(fn.ambient_memory_copy_to_host(got, o, n * 4));
        for (int64_t i = 0; i < n; i++) want[i] = x[i] / (1.0 + ref_exp(-(double)x[i])) / 0.596;
        test_close("mp_silu_forward", got, want, n, 1e-6, 1e-5);

        OK(fn.ambient_mp_silu_backward(n, dx, dg, o));
        OK(fn.ambient_memory_copy_to_host(got, o, n * 4));
        for (int64_t i = 0; i < n; i++) {
            double s = 1.0 / (1.0 + ref_exp(-(double)x[i]));
            want[i] = dy[i] * (s * (1.0 + x[i] * (1.0 - s))) / 0.596;
        }
        test_close("mp_silu_backward", got, want, n, 1e-6, 1e-5);

        double t = 0.3, norm = ref_sqrt((1 - t) * (1 - t) + t * t);
        OK(fn.ambient_mp_sum_forward(n, dx, dg, (float)t, o));
        OK(fn.ambient_memory_copy_to_host(got, o, n * 4));
        for (int64_t i = 0; i < n; i++) want[i] = ((1 - t) * x[i] + t * dy[i]) / norm;
        test_close("mp_sum_forward", got, want, n, 1e-6, 1e-5);

        OK(fn.ambient_mp_sum_backward(n, dg, (float)t, o, o2));
        OK(fn.ambient_memory_copy_to_host(got, o, n * 4));
        OK(fn.ambient_memory_copy_to_host(got2, o2, n * 4));
        for (int64_t i = 0; i < n; i++) {
            want[i] = dy[i] * (1 - t) / norm;
            want2[i] = dy[i] * t / norm;
        }
        test_close("mp_sum_backward da", got, want, n, 1e-6, 1e-5);
        test_close("mp_sum_backward db", got2, want2, n, 1e-6, 1e-5);
    }

    /* pixel_norm over the three row-group sizes (4 threads, a warp, a block per row). */
    const int64_t shapes[][2] = {{1000, 3}, {777, 32}, {300, 129}, {50, 1024}, {7, 5000}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t rows = shapes[s][0], ch = shapes[s][1], count = rows * ch;
        if (count > n) continue;
        float eps = 1e-4f;
        for (int64_t c = 0; c < ch; c++) x[c] = 0.0f; /* row 0 is zero: r = 0 */
        OK(fn.ambient_memory_copy_to_device(dx_, x, count * 4));
        OK(fn.ambient_memory_copy_to_device(ddy, dy, count * 4));
        OK(fn.ambient_pixel_norm_forward(rows, ch, eps, dx_, dout));
        OK(fn.ambient_pixel_norm_backward(rows, ch, eps, dx_, ddy, dout2));
        OK(fn.ambient_memory_copy_to_host(got, dout, count * 4));
        OK(fn.ambient_memory_copy_to_host(got2, dout2, count * 4));
        for (int64_t r = 0; r < rows; r++) {
            const float *xr = x + r * ch, *gr = dy + r * ch;
            double sum = 0, dot = 0;
            for (int64_t c = 0; c < ch; c++) {
                sum += (double)xr[c] * xr[c];
                dot += (double)gr[c] * xr[c];
            }
            double rr = ref_sqrt(sum / (double)ch), d = eps + rr;
            for (int64_t c = 0; c < ch; c++) {
                want[r * ch + c] = xr[c] / d;
                want2[r * ch + c] = gr[c] / d - (rr > 0 ? xr[c] * dot / (d * d * (double)ch * rr) : 0.0);
            }
        }
        char what[64];
        snprintf(what, sizeof what, "pixel_norm_forward %lldx%lld", (long long)rows, (long long)ch);
        test_close(what, got, want, count, 1e-6, 1e-5);
        snprintf(what, sizeof what, "pixel_norm_backward %lldx%lld", (long long)rows, (long long)ch);
        test_close(what, got2, want2, count, 1e-5, 1e-4);
    }
    OK(fn.ambient_memory_free(dx_));
    OK(fn.ambient_memory_free(ddy));
    OK(fn.ambient_memory_free(dout));
    OK(fn.ambient_memory_free(dout2));
    free(x); free(dy); free(got); free(got2); free(want); free(want2);
}

/* One gemm call on random data against a double reference; beta == 0 runs over NaN in C. */
static void check_gemm(int ta, int tb, int64_t batch, int64_t m, int64_t n, int64_t k, float alpha,
                       float beta) {
    int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;
    int64_t stride_a = (ta ? k : m) * lda + 5, stride_b = (tb ? n : k) * ldb, stride_c = m * ldc + 7;
    int64_t na = batch * stride_a, nb = batch * stride_b, nc = batch * stride_c;
    float *a = test_alloc(na), *b = test_alloc(nb), *c = test_alloc(nc), *got = test_alloc(nc);
    double *want = (double *)malloc((size_t)nc * sizeof(double));
    test_fill(a, na, 1.0f);
    test_fill(b, nb, 1.0f);
    if (beta == 0.0f) test_poison(c, nc);
    else test_fill(c, nc, 1.0f);
    for (int64_t i = 0; i < nc; i++) want[i] = c[i]; /* gaps between rows stay as they were */
    for (int64_t e = 0; e < batch; e++)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double s = 0;
                for (int64_t p = 0; p < k; p++) {
                    double av = ta ? a[e * stride_a + p * lda + i] : a[e * stride_a + i * lda + p];
                    double bv = tb ? b[e * stride_b + j * ldb + p] : b[e * stride_b + p * ldb + j];
                    s += av * bv;
                }
                int64_t at = e * stride_c + i * ldc + j;
                want[at] = alpha * s + (beta == 0.0f ? 0.0 : beta * (double)c[at]);
            }
    float *da = device_floats(na), *db = device_floats(nb), *dc = device_floats(nc);
    OK(fn.ambient_memory_copy_to_device(da, a, na * 4));
    OK(fn.ambient_memory_copy_to_device(db, b, nb * 4));
    OK(fn.ambient_memory_copy_to_device(dc, c, nc * 4));
    OK(fn.ambient_gemm(ta, tb, batch, m, n, k, alpha, da, lda, stride_a, db, ldb, stride_b, beta, dc,
                       ldc, stride_c));
    OK(fn.ambient_device_synchronize());
    OK(fn.ambient_memory_copy_to_host(got, dc, nc * 4));
    char what[96];
    snprintf(what, sizeof what, "gemm ta=%d tb=%d batch=%lld %lldx%lldx%lld", ta, tb, (long long)batch,
             (long long)m, (long long)n, (long long)k);
    /* Compare only the elements of C proper (the gaps hold NaN when beta == 0 and must stay). */
    int64_t bad_gap = 0;
    for (int64_t i = 0; i < nc; i++) {
        int64_t in_matrix = i % stride_c < m * ldc && (i % stride_c) % ldc < n;
        if (!in_matrix) {
            if (!(memcmp(&got[i], &c[i], 4) == 0)) bad_gap++;
            got[i] = 0.0f;
            want[i] = 0.0;
        }
    }
    CHECK(bad_gap == 0, "%s wrote %lld elements outside C", what, (long long)bad_gap);
    /* Operands rounded once to bf16 (relative error <= 2^-8) or tf32 (2^-11) on tensor cores: the
     * error of a length-k dot product grows like sqrt(k) (about 6 sigma allowed). */
    int mode = test_matmul_precision();
    double unit = mode == MATMUL_BF16 ? 1.0 / 256 : mode == MATMUL_TF32 ? 1.0 / 2048 : 0.0;
    test_close(what, got, want, nc, 2e-6 * (double)(k + 1) + 1.5 * unit * ref_sqrt((double)(k + 1)),
               1e-5 + 2.0 * unit);
    OK(fn.ambient_memory_free(da));
    OK(fn.ambient_memory_free(db));
    OK(fn.ambient_memory_free(dc));
    free(a); free(b); free(c); free(got); free(want);
}

/* The events of ambient_timer_*: a GEMM of ~2 GFLOP takes a measurable, plausible time, and
 * the time between two starts without work is small. */
static void check_timer(void) {
    const int64_t n = 1024;
    float *a = device_floats(n * n), *c = device_floats(n * n);
    OK(fn.ambient_memory_set(a, 0, n * n * 4));
    double idle = -1, busy = -1;
    OK(fn.ambient_timer_start());
    OK(fn.ambient_timer_elapsed(&idle));
    OK(fn.ambient_timer_start());
    OK(fn.ambient_gemm(0, 0, 1, n, n, n, 1.0f, a, n, 0, a, n, 0, 0.0f, c, n, 0));
    OK(fn.ambient_timer_elapsed(&busy));
    /* the upper bound is loose: the emulated device (ctest) takes seconds, under AddressSanitizer ~9 */
    CHECK(idle >= 0.0 && idle < 5.0 && busy > 0.0 && busy < 60000.0, "timer: %g ms idle, %g ms for a 1024^3 gemm", idle,
          busy);
    printf("timer: %.3f ms idle, %.3f ms for a 1024^3 gemm\n", idle, busy);
    OK(fn.ambient_memory_free(a));
    OK(fn.ambient_memory_free(c));
}

static void check_device(int32_t count) {
    char name[256];
    int64_t free_bytes = 0, total_bytes = 0;
    OK(fn.ambient_device_select(0));
    OK(fn.ambient_device_name(0, name, sizeof name));
    OK(fn.ambient_device_memory(0, &free_bytes, &total_bytes));
    CHECK(total_bytes > 0 && free_bytes <= total_bytes, "device memory");
    CHECK(fn.ambient_device_select(count) == AMBIENT_STATUS_INVALID_ARGUMENT, "select past the last device");
    int32_t precision = -1;
    OK(fn.ambient_matmul_precision(&precision));
    CHECK(test_matmul_from_library(precision) == test_matmul_precision(),
          "matmul precision %d, AMBIENT_CUDA_MATMUL says %d", precision, test_matmul_precision());
    printf("CUDA device 0 of %d: %s, %.1f of %.1f GiB free\n", count, name, free_bytes / 1073741824.0,
           total_bytes / 1073741824.0);
    check_roundtrip();
    check_elementwise();
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            check_gemm(ta, tb, 1, 37, 29, 53, 1.0f, 0.0f);
            check_gemm(ta, tb, 3, 65, 130, 17, 0.5f, -1.5f);
        }
    check_gemm(0, 0, 1, 5, 7, 0, 1.0f, 2.0f);      /* k = 0: C = beta C */
    check_gemm(0, 1, 80, 130, 131, 40, 1.0f, 0.0f); /* enough tiles for the 128 x 128 kernel */
    check_gemm(1, 0, 1, 300, 260, 300, 1.0f, 1.0f);
    OK(fn.ambient_device_synchronize());
    check_timer();
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_cuda_load <path to libambient_cuda.so>\n");
        return 2;
    }
    void *library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        fprintf(stderr, "test_cuda_load: dlopen(%s) failed: %s\n", argv[1], dlerror());
        return 1;
    }
    if (resolve_all(library) != 0) return 1;

    int32_t version = AMBIENT_VERSION_MAJOR * 10000 + AMBIENT_VERSION_MINOR * 100 + AMBIENT_VERSION_PATCH;
    CHECK(fn.ambient_library_backend() == AMBIENT_BACKEND_CUDA, "backend %d", fn.ambient_library_backend());
    CHECK(fn.ambient_library_version() == version, "version %d, header %d", fn.ambient_library_version(),
          version);
    CHECK(fn.ambient_last_error() != NULL && fn.ambient_last_error()[0] == '\0', "no error at load");
    check_argument_rules();
    if (test_matmul_precision() == MATMUL_UNKNOWN) {
        check_matmul_refused();
        return test_finish("test_cuda_load");
    }

    int32_t count = -1;
    int status = fn.ambient_device_count(&count);
    if (status == AMBIENT_STATUS_NO_DEVICE) {
        CHECK(count == 0, "count %d without a device", count);
        check_no_device();
    } else {
        CHECK(status == AMBIENT_STATUS_OK, "device_count: %d %s", status, fn.ambient_last_error());
        CHECK(count >= 1, "count %d", count);
        if (status == AMBIENT_STATUS_OK && count >= 1) check_device(count);
    }
    /* The library stays loaded: the CUDA runtime tears itself down at exit. */
    return test_finish("test_cuda_load");
}
