/*
 * vendor_compare [options] [libambient_cuda.so]: Ambient's GEMM and convolutions side by side
 * with cuBLAS and cuDNN on one GPU, on the same inputs.
 *
 * Loads libambient_cuda.so with dlopen (by default the one next to this program or one folder
 * up, as in the CMake build tree) and finds cuBLAS and cuDNN at run time (vendor_libraries.h:
 * AMBIENT_CUBLAS / AMBIENT_CUDNN, the system library path, a CUDA toolkit, PyTorch's pip wheels);
 * nothing of either is linked. It prints which it found, then for every case:
 *   GEMM, row-major C = A B (float32), m x n x k: DESIGN.md's 512^3 and 2048^3 and a large
 *     8192^3; ours (ambient_gemm) against cublasSgemm (float32, CUBLAS_DEFAULT_MATH), cublasGemmEx
 *     with CUBLAS_COMPUTE_32F_FAST_TF32 (float32 operands rounded to TF32 on tensor cores) and
 *     cublasGemmEx on bfloat16 copies of A and B (CUDA_R_16BF, float32 C and accumulation).
 *     Row-major C = A B is column-major C^T = B^T A^T, so cuBLAS gets (n, m, k) and B before A.
 *   Convolution, NHWC, stride 1, "same" padding, forward, input gradient and weight gradient:
 *     DESIGN.md's 3x3 shapes (N=32 16x16 128->128, N=32 32x32 64->64) and W3's layers at its
 *     batch of 128 (EDM2-XS on 64x64x4 latents: the 5->128 input convolution, the 3x3 convolutions
 *     of the four levels 64x64x128, 32x32x256, 16x16x384, 8x8x512, a 1x1 skip 128->256 and the
 *     attention's 1x1 qkv at 16x16 and 8x8); ours against cuDNN with NHWC float32 tensors and
 *     an NHWC (= our OHWI) filter, cross-correlation, twice: CUDNN_FMA_MATH (float32 FMA only)
 *     and CUDNN_DEFAULT_MATH (TF32 tensor cores allowed, what PyTorch gets by default). The
 *     algorithm is cuDNN's fastest by cudnnFind*Algorithm (or with --heuristic the first of
 *     cudnnGet*Algorithm_v7); the table names it and the math it used.
 * Each implementation is timed as the median over batches of back-to-back calls, each batch
 * between two cudaDeviceSynchronize (sized to about 1 ms, after a warm-up call), so launch
 * latency is amortised. CUDA events are not used: libambient_cuda.so queues its work on a
 * private stream that ambient.h does not expose, so events could not bracket our kernels, and
 * both sides are timed the same way. Every vendor output is compared with ours: relative error
 * ||theirs - ours|| / ||ours|| (L2); above 1e-2 (what bfloat16 operands allow; a wrong layout
 * gives ~1) is a MISMATCH. The table gives ms, GFLOP/s (2 m n k, or 2 N H W Cin Cout k^2, per
 * call) and ours/theirs = their time / our time (> 1: ours is faster).
 *
 * Without a GPU it says which libraries it found, that no device answered, and exits 0. Without
 * cuBLAS or cuDNN it says so and times ours alone. Exit status 1 when a call of ours fails or a
 * result disagrees; a vendor call that fails is reported in its row and is not fatal.
 *
 * Options: --load-only (find and load everything, time nothing: what ctest runs), --quick (skip
 * the 8192^3 GEMM and W3's 64x64 level), --heuristic (cudnnGet*Algorithm_v7 instead of
 * cudnnFind*Algorithm), --filter SUBSTRING (cases whose name or shape contains it), --csv FILE.
 */
#define _GNU_SOURCE
#include <cuda_runtime_api.h> /* before our vendor headers: CUDA's library_types.h comes first */

#include "ambient.h"
#include "test_util.h"
#include "test_backends.h"
#include "vendor_libraries.h"

#include <dlfcn.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- Our library ------------------------------------------------------------------------------ */

#define OUR_FUNCTIONS(X)                                                                                  \
    X(ambient_library_backend) X(ambient_last_error) X(ambient_device_count) X(ambient_device_select)     \
    X(ambient_device_name) X(ambient_device_synchronize) X(ambient_gemm) X(ambient_conv2d_forward)        \
    X(ambient_conv2d_backward_input) X(ambient_conv2d_backward_weight)

typedef struct {
    OUR_FUNCTIONS(VENDOR_FUNCTION_FIELD)
} ambient_api;

static ambient_api ours;
static cublas_api cublas;
static cudnn_api cudnn;
static void *cublas_handle, *cudnn_handle;
static cudaStream_t vendor_stream;

static int quick, heuristic;
static const char *filter;
static FILE *csv;
static int failures, comparisons, vendor_failures; /* failures: ours failing, or a mismatch */

/* cuDNN's cudnnConvolution*AlgoPerf_t, as the header describes it; checked against its offsets. */
typedef struct {
    int algo;
    int status;
    float time;
    size_t memory;
    int determinism;
    int math_type;
    int reserved[3];
} cudnn_algo_perf;
_Static_assert(sizeof(cudnn_algo_perf) == AMBIENT_CUDNN_ALGO_PERF_BYTES, "AlgoPerf size");
_Static_assert(offsetof(cudnn_algo_perf, status) == AMBIENT_CUDNN_ALGO_PERF_STATUS_OFFSET, "AlgoPerf status");
_Static_assert(offsetof(cudnn_algo_perf, time) == AMBIENT_CUDNN_ALGO_PERF_TIME_OFFSET, "AlgoPerf time");
_Static_assert(offsetof(cudnn_algo_perf, memory) == AMBIENT_CUDNN_ALGO_PERF_MEMORY_OFFSET, "AlgoPerf memory");
_Static_assert(offsetof(cudnn_algo_perf, determinism) == AMBIENT_CUDNN_ALGO_PERF_DETERMINISM_OFFSET, "determinism");
_Static_assert(offsetof(cudnn_algo_perf, math_type) == AMBIENT_CUDNN_ALGO_PERF_MATH_TYPE_OFFSET, "AlgoPerf math");

static const char *FWD_ALGOS[] = {"IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT",
                                  "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
static const char *BWD_DATA_ALGOS[] = {"ALGO_0", "ALGO_1", "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
static const char *BWD_FILTER_ALGOS[] = {"ALGO_0", "ALGO_1", "FFT", "ALGO_3", "WINOGRAD", "WINOGRAD_NONFUSED",
                                         "FFT_TILING"};
static const char *MATH_TYPES[] = {"default math", "tensor op", "tensor op + conversion", "FMA"};

/* ---- Helpers ---------------------------------------------------------------------------------- */

static int wanted(const char *op, const char *shape) {
    return !filter || strstr(op, filter) || strstr(shape, filter);
}

static void *host_alloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "vendor_compare: out of host memory (%zu bytes)\n", bytes);
        exit(1);
    }
    return p;
}

static void die_cuda(const char *what, cudaError_t error) {
    fprintf(stderr, "vendor_compare: %s: %s (%s)\n", what, cudaGetErrorString(error), cudaGetErrorName(error));
    exit(1);
}

/*
 * Waits for everything queued on the device. Copies and memsets here go to the legacy default
 * stream, which does not order itself with the non-blocking streams of our library and of
 * cuBLAS/cuDNN (and a copy from pageable memory may return before its DMA ends).
 */
static void settle(void) {
    cudaError_t e = cudaDeviceSynchronize();
    if (e != cudaSuccess) die_cuda("cudaDeviceSynchronize", e);
}

/* Device buffer of `count` floats filled with uniform [-1, 1) (or left uninitialised). */
static float *device_floats(size_t count, int fill, float **host_out) {
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, count * sizeof(float));
    if (e != cudaSuccess) die_cuda("cudaMalloc", e);
    if (fill) {
        float *host = host_alloc(count * sizeof(float));
        for (size_t i = 0; i < count; i++) host[i] = test_uniform();
        e = cudaMemcpy(p, host, count * sizeof(float), cudaMemcpyHostToDevice);
        if (e != cudaSuccess) die_cuda("cudaMemcpy to device", e);
        settle();
        if (host_out) *host_out = host;
        else free(host);
    }
    return p;
}

/* bfloat16 copy of a host array (round to nearest even), on the device. */
static void *device_bf16(const float *host, size_t count) {
    uint16_t *half = host_alloc(count * sizeof(uint16_t));
    for (size_t i = 0; i < count; i++) {
        uint32_t bits;
        memcpy(&bits, &host[i], 4);
        bits += 0x7fffu + ((bits >> 16) & 1u);
        half[i] = (uint16_t)(bits >> 16);
    }
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, count * sizeof(uint16_t));
    if (e != cudaSuccess) die_cuda("cudaMalloc", e);
    e = cudaMemcpy(p, half, count * sizeof(uint16_t), cudaMemcpyHostToDevice);
    if (e != cudaSuccess) die_cuda("cudaMemcpy to device", e);
    settle();
    free(half);
    return p;
}

static float *download(const float *device, size_t count) {
    float *host = host_alloc(count * sizeof(float));
    cudaError_t e = cudaMemcpy(host, device, count * sizeof(float), cudaMemcpyDeviceToHost);
    if (e != cudaSuccess) die_cuda("cudaMemcpy to host", e);
    return host;
}

/* ||got - want|| / ||want||; INFINITY when either holds a NaN or infinity. */
static double relative_error(const float *got, const float *want, size_t count) {
    double diff = 0, norm = 0;
    for (size_t i = 0; i < count; i++) {
        if (!isfinite(got[i]) || !isfinite(want[i])) return INFINITY;
        double d = (double)got[i] - want[i];
        diff += d * d;
        norm += (double)want[i] * want[i];
    }
    return norm > 0 ? sqrt(diff / norm) : (diff > 0 ? INFINITY : 0);
}

/* One call of an implementation; returns 0 or writes why it failed. */
typedef int (*call_fn)(void *context, char *why, size_t capacity);

/*
 * Median milliseconds per call: a warm-up call, a single timed call to size the batches
 * (about 1 ms each, at least one call), then 7 batches (3 when a call takes over 100 ms).
 * Returns a negative value when a call failed.
 */
static double time_calls(call_fn call, void *context, char *why, size_t capacity) {
    cudaError_t e;
    if (call(context, why, capacity)) return -1;
    if ((e = cudaDeviceSynchronize()) != cudaSuccess) {
        snprintf(why, capacity, "after the call: %s", cudaGetErrorString(e));
        return -1;
    }
    double start = test_now();
    if (call(context, why, capacity)) return -1;
    cudaDeviceSynchronize();
    double single = test_now() - start;
    int reps = single >= 1e-3 ? 1 : (int)(1e-3 / (single > 1e-6 ? single : 1e-6)) + 1;
    if (reps > 200) reps = 200;
    int batches = single > 0.1 ? 3 : 7;
    double per_call[7];
    for (int b = 0; b < batches; b++) {
        cudaDeviceSynchronize();
        start = test_now();
        for (int r = 0; r < reps; r++)
            if (call(context, why, capacity)) return -1;
        if ((e = cudaDeviceSynchronize()) != cudaSuccess) {
            snprintf(why, capacity, "during timing: %s", cudaGetErrorString(e));
            return -1;
        }
        per_call[b] = (test_now() - start) / reps;
    }
    return test_median(per_call, batches) * 1e3;
}

/* One row of the table (and the CSV): ours when our_ms < 0, else a vendor row compared with it. */
static void row(const char *op, const char *shape, const char *implementation, const char *algorithm, double ms,
                double flops, double our_ms, double rel_error, const char *error) {
    char ms_text[32] = "-", rate[32] = "-", ratio[32] = "-", err[48] = "-";
    if (error) {
        if (our_ms > 0) vendor_failures++;
        printf("%-22s %-26s %-22s %-40s FAILED: %s\n", op, shape, implementation, algorithm, error);
        if (csv) fprintf(csv, "%s,%s,%s,\"%s\",,,,,\"FAILED: %s\"\n", op, shape, implementation, algorithm, error);
        return;
    }
    snprintf(ms_text, sizeof ms_text, "%.4f", ms);
    snprintf(rate, sizeof rate, "%.0f", flops / (ms * 1e6));
    int mismatch = 0;
    if (our_ms > 0) {
        snprintf(ratio, sizeof ratio, "%.2f", ms / our_ms);
        mismatch = !(rel_error <= 1e-2);
        snprintf(err, sizeof err, "%.1e%s", rel_error, mismatch ? " MISMATCH" : "");
        comparisons++;
        if (mismatch) failures++;
    }
    printf("%-22s %-26s %-22s %-40s %10s %9s %9s  %s\n", op, shape, implementation, algorithm, ms_text, rate, ratio, err);
    fflush(stdout);
    if (csv)
        fprintf(csv, "%s,%s,%s,\"%s\",%.6f,%.1f,%s,%.3e,%s\n", op, shape, implementation, algorithm, ms,
                flops / (ms * 1e6), our_ms > 0 ? ratio : "", our_ms > 0 ? rel_error : 0.0,
                our_ms > 0 ? (mismatch ? "MISMATCH" : "ok") : "");
}

static void cublas_error(int status, const char *call, char *why, size_t capacity) {
    const char *text = cublas.cublasGetStatusString ? cublas.cublasGetStatusString(status) : NULL;
    snprintf(why, capacity, "%s returned %d%s%s", call, status, text ? ": " : "", text ? text : "");
}

static void cudnn_error(int status, const char *call, char *why, size_t capacity) {
    snprintf(why, capacity, "%s returned %d: %s", call, status, cudnn.cudnnGetErrorString(status));
}

/* ---- GEMM ------------------------------------------------------------------------------------- */

typedef struct {
    int m, n, k;
    const float *a, *b;
    const void *a16, *b16;
    float *c;
    int variant; /* 0 sgemm, 1 tf32, 2 bf16 */
} gemm_context;

static int our_gemm(void *p, char *why, size_t capacity) {
    gemm_context *g = p;
    if (ours.ambient_gemm(0, 0, 1, g->m, g->n, g->k, 1.0f, g->a, g->k, 0, g->b, g->n, 0, 0.0f, g->c, g->n, 0) !=
        AMBIENT_STATUS_OK) {
        snprintf(why, capacity, "ambient_gemm: %s", ours.ambient_last_error());
        return 1;
    }
    return 0;
}

static int their_gemm(void *p, char *why, size_t capacity) {
    gemm_context *g = p;
    const float one = 1.0f, zero = 0.0f;
    int status;
    if (g->variant == 0) {
        status = cublas.cublasSgemm_v2(cublas_handle, CUBLAS_OP_N, CUBLAS_OP_N, g->n, g->m, g->k, &one, g->b, g->n, g->a,
                                       g->k, &zero, g->c, g->n);
        if (status) cublas_error(status, "cublasSgemm", why, capacity);
    } else if (g->variant == 1) {
        status = cublas.cublasGemmEx(cublas_handle, CUBLAS_OP_N, CUBLAS_OP_N, g->n, g->m, g->k, &one, g->b, CUDA_R_32F,
                                     g->n, g->a, CUDA_R_32F, g->k, &zero, g->c, CUDA_R_32F, g->n,
                                     CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT);
        if (status) cublas_error(status, "cublasGemmEx (TF32)", why, capacity);
    } else {
        status = cublas.cublasGemmEx(cublas_handle, CUBLAS_OP_N, CUBLAS_OP_N, g->n, g->m, g->k, &one, g->b16, CUDA_R_16BF,
                                     g->n, g->a16, CUDA_R_16BF, g->k, &zero, g->c, CUDA_R_32F, g->n, CUBLAS_COMPUTE_32F,
                                     CUBLAS_GEMM_DEFAULT);
        if (status) cublas_error(status, "cublasGemmEx (BF16)", why, capacity);
    }
    return status != 0;
}

static void gemm_case(int m, int n, int k) {
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%dx%d", m, n, k);
    if (!wanted("gemm", shape)) return;
    double flops = 2.0 * m * n * k;
    float *host_a = NULL, *host_b = NULL;
    float *a = device_floats((size_t)m * k, 1, &host_a), *b = device_floats((size_t)k * n, 1, &host_b);
    float *c_ours = device_floats((size_t)m * n, 0, NULL);
    gemm_context g = {m, n, k, a, b, NULL, NULL, c_ours, 0};
    char why[1024];
    double our_ms = time_calls(our_gemm, &g, why, sizeof why);
    if (our_ms < 0) {
        row("gemm", shape, "ambient", "ambient_gemm", 0, flops, -1, 0, why);
        failures++;
    } else {
        row("gemm", shape, "ambient", "ambient_gemm", our_ms, flops, -1, 0, NULL);
    }
    if (cublas_handle && our_ms > 0) {
        float *want = download(c_ours, (size_t)m * n);
        float *c = device_floats((size_t)m * n, 0, NULL);
        void *a16 = device_bf16(host_a, (size_t)m * k), *b16 = device_bf16(host_b, (size_t)k * n);
        static const char *names[3] = {"cublas sgemm", "cublas gemmex tf32", "cublas gemmex bf16"};
        static const char *details[3] = {"float32, CUBLAS_DEFAULT_MATH", "COMPUTE_32F_FAST_TF32",
                                         "16BF operands, COMPUTE_32F"};
        for (int v = 0; v < 3; v++) {
            gemm_context t = {m, n, k, a, b, a16, b16, c, v};
            cudaMemset(c, 0xff, (size_t)m * n * sizeof(float)); /* NaN: a skipped element shows */
            settle();
            double ms = time_calls(their_gemm, &t, why, sizeof why);
            if (ms < 0) {
                row("gemm", shape, names[v], details[v], 0, flops, our_ms, 0, why);
                continue;
            }
            float *got = download(c, (size_t)m * n);
            row("gemm", shape, names[v], details[v], ms, flops, our_ms, relative_error(got, want, (size_t)m * n), NULL);
            free(got);
        }
        free(want);
        cudaFree(c);
        cudaFree(a16);
        cudaFree(b16);
    }
    free(host_a);
    free(host_b);
    cudaFree(a);
    cudaFree(b);
    cudaFree(c_ours);
}

/* ---- Convolution ------------------------------------------------------------------------------ */

enum { FORWARD, BACKWARD_INPUT, BACKWARD_WEIGHT };
static const char *PASS_NAMES[3] = {"conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight"};

typedef struct {
    int n, h, w, cin, cout, kernel, pass;
    const float *x, *weight, *dy;
    float *out;
    /* cuDNN */
    void *x_desc, *y_desc, *w_desc, *conv_desc;
    int algo;
    void *workspace;
    size_t workspace_bytes;
} conv_context;

static int our_conv(void *p, char *why, size_t capacity) {
    conv_context *c = p;
    int status;
    if (c->pass == FORWARD)
        status = ours.ambient_conv2d_forward(c->n, c->h, c->w, c->cin, c->cout, c->kernel, c->x, c->weight, 0.0f, c->out);
    else if (c->pass == BACKWARD_INPUT)
        status = ours.ambient_conv2d_backward_input(c->n, c->h, c->w, c->cin, c->cout, c->kernel, c->dy, c->weight, 0.0f,
                                                    c->out);
    else
        status = ours.ambient_conv2d_backward_weight(c->n, c->h, c->w, c->cin, c->cout, c->kernel, c->x, c->dy, 0.0f,
                                                     c->out);
    if (status != AMBIENT_STATUS_OK) {
        snprintf(why, capacity, "ambient_%s: %s", PASS_NAMES[c->pass], ours.ambient_last_error());
        return 1;
    }
    return 0;
}

static int their_conv(void *p, char *why, size_t capacity) {
    conv_context *c = p;
    const float one = 1.0f, zero = 0.0f;
    int status;
    if (c->pass == FORWARD) {
        status = cudnn.cudnnConvolutionForward(cudnn_handle, &one, c->x_desc, c->x, c->w_desc, c->weight, c->conv_desc,
                                               c->algo, c->workspace, c->workspace_bytes, &zero, c->y_desc, c->out);
        if (status) cudnn_error(status, "cudnnConvolutionForward", why, capacity);
    } else if (c->pass == BACKWARD_INPUT) {
        status = cudnn.cudnnConvolutionBackwardData(cudnn_handle, &one, c->w_desc, c->weight, c->y_desc, c->dy,
                                                    c->conv_desc, c->algo, c->workspace, c->workspace_bytes, &zero,
                                                    c->x_desc, c->out);
        if (status) cudnn_error(status, "cudnnConvolutionBackwardData", why, capacity);
    } else {
        status = cudnn.cudnnConvolutionBackwardFilter(cudnn_handle, &one, c->x_desc, c->x, c->y_desc, c->dy,
                                                      c->conv_desc, c->algo, c->workspace, c->workspace_bytes, &zero,
                                                      c->w_desc, c->out);
        if (status) cudnn_error(status, "cudnnConvolutionBackwardFilter", why, capacity);
    }
    return status != 0;
}

/*
 * Picks cuDNN's algorithm for the pass (measured by cudnnFind*, or the heuristics' first
 * choice), sizes and allocates its workspace. Returns 0, or 1 with the reason.
 */
static int choose_algorithm(conv_context *c, char *label, size_t label_capacity, char *why, size_t capacity) {
    cudnn_algo_perf perf[16];
    int count = 0, max = 0, status;
    const char *call;
    if (c->pass == FORWARD) {
        call = heuristic ? "cudnnGetConvolutionForwardAlgorithm_v7" : "cudnnFindConvolutionForwardAlgorithm";
        status = cudnn.cudnnGetConvolutionForwardAlgorithmMaxCount(cudnn_handle, &max);
        if (max > 16 || max <= 0) max = 16;
        if (!status)
            status = heuristic ? cudnn.cudnnGetConvolutionForwardAlgorithm_v7(cudnn_handle, c->x_desc, c->w_desc,
                                                                              c->conv_desc, c->y_desc, max, &count, perf)
                               : cudnn.cudnnFindConvolutionForwardAlgorithm(cudnn_handle, c->x_desc, c->w_desc,
                                                                            c->conv_desc, c->y_desc, max, &count, perf);
    } else if (c->pass == BACKWARD_INPUT) {
        call = heuristic ? "cudnnGetConvolutionBackwardDataAlgorithm_v7" : "cudnnFindConvolutionBackwardDataAlgorithm";
        status = cudnn.cudnnGetConvolutionBackwardDataAlgorithmMaxCount(cudnn_handle, &max);
        if (max > 16 || max <= 0) max = 16;
        if (!status)
            status = heuristic
                         ? cudnn.cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnn_handle, c->w_desc, c->y_desc,
                                                                             c->conv_desc, c->x_desc, max, &count, perf)
                         : cudnn.cudnnFindConvolutionBackwardDataAlgorithm(cudnn_handle, c->w_desc, c->y_desc,
                                                                           c->conv_desc, c->x_desc, max, &count, perf);
    } else {
        call = heuristic ? "cudnnGetConvolutionBackwardFilterAlgorithm_v7" : "cudnnFindConvolutionBackwardFilterAlgorithm";
        status = cudnn.cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(cudnn_handle, &max);
        if (max > 16 || max <= 0) max = 16;
        if (!status)
            status = heuristic
                         ? cudnn.cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnn_handle, c->x_desc, c->y_desc,
                                                                               c->conv_desc, c->w_desc, max, &count, perf)
                         : cudnn.cudnnFindConvolutionBackwardFilterAlgorithm(cudnn_handle, c->x_desc, c->y_desc,
                                                                             c->conv_desc, c->w_desc, max, &count, perf);
    }
    if (status) {
        cudnn_error(status, call, why, capacity);
        return 1;
    }
    for (int i = 0; i < count; i++) {
        if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
        size_t bytes = 0;
        if (c->pass == FORWARD)
            status = cudnn.cudnnGetConvolutionForwardWorkspaceSize(cudnn_handle, c->x_desc, c->w_desc, c->conv_desc,
                                                                   c->y_desc, perf[i].algo, &bytes);
        else if (c->pass == BACKWARD_INPUT)
            status = cudnn.cudnnGetConvolutionBackwardDataWorkspaceSize(cudnn_handle, c->w_desc, c->y_desc,
                                                                        c->conv_desc, c->x_desc, perf[i].algo, &bytes);
        else
            status = cudnn.cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnn_handle, c->x_desc, c->y_desc,
                                                                          c->conv_desc, c->w_desc, perf[i].algo, &bytes);
        if (status) continue;
        void *workspace = NULL;
        if (bytes > 0 && cudaMalloc(&workspace, bytes) != cudaSuccess) {
            cudaGetLastError(); /* clear it: this algorithm is skipped, the next may fit */
            continue;
        }
        c->algo = perf[i].algo;
        c->workspace = workspace;
        c->workspace_bytes = bytes;
        const char *name = c->pass == FORWARD          ? (perf[i].algo < 8 ? FWD_ALGOS[perf[i].algo] : "?")
                           : c->pass == BACKWARD_INPUT ? (perf[i].algo < 6 ? BWD_DATA_ALGOS[perf[i].algo] : "?")
                                                       : (perf[i].algo < 7 ? BWD_FILTER_ALGOS[perf[i].algo] : "?");
        snprintf(label, label_capacity, "%s (%s, %s, %zu MB ws)", name, heuristic ? "heuristic" : "find",
                 perf[i].math_type >= 0 && perf[i].math_type < 4 ? MATH_TYPES[perf[i].math_type] : "?",
                 bytes >> 20);
        return 0;
    }
    snprintf(why, capacity, "%s offered no algorithm that runs here (%d listed)", call, count);
    return 1;
}

static int describe_tensors(conv_context *c, int math_type, char *why, size_t capacity) {
    int status;
    const char *call = "descriptors";
#define TRY(expression, name)            \
    if ((status = (expression)) != 0) { \
        call = name;                     \
        goto failed;                     \
    }
    TRY(cudnn.cudnnCreateTensorDescriptor(&c->x_desc), "cudnnCreateTensorDescriptor");
    TRY(cudnn.cudnnCreateTensorDescriptor(&c->y_desc), "cudnnCreateTensorDescriptor");
    TRY(cudnn.cudnnCreateFilterDescriptor(&c->w_desc), "cudnnCreateFilterDescriptor");
    TRY(cudnn.cudnnCreateConvolutionDescriptor(&c->conv_desc), "cudnnCreateConvolutionDescriptor");
    TRY(cudnn.cudnnSetTensor4dDescriptor(c->x_desc, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, c->n, c->cin, c->h, c->w),
        "cudnnSetTensor4dDescriptor (x)");
    TRY(cudnn.cudnnSetTensor4dDescriptor(c->y_desc, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, c->n, c->cout, c->h, c->w),
        "cudnnSetTensor4dDescriptor (y)");
    TRY(cudnn.cudnnSetFilter4dDescriptor(c->w_desc, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, c->cout, c->cin, c->kernel,
                                         c->kernel),
        "cudnnSetFilter4dDescriptor");
    TRY(cudnn.cudnnSetConvolution2dDescriptor(c->conv_desc, c->kernel / 2, c->kernel / 2, 1, 1, 1, 1,
                                              CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
        "cudnnSetConvolution2dDescriptor");
    TRY(cudnn.cudnnSetConvolutionMathType(c->conv_desc, math_type), "cudnnSetConvolutionMathType");
#undef TRY
    return 0;
failed:
    cudnn_error(status, call, why, capacity);
    return 1;
}

static void release_tensors(conv_context *c) {
    if (c->x_desc) cudnn.cudnnDestroyTensorDescriptor(c->x_desc);
    if (c->y_desc) cudnn.cudnnDestroyTensorDescriptor(c->y_desc);
    if (c->w_desc) cudnn.cudnnDestroyFilterDescriptor(c->w_desc);
    if (c->conv_desc) cudnn.cudnnDestroyConvolutionDescriptor(c->conv_desc);
    if (c->workspace) cudaFree(c->workspace);
    c->x_desc = c->y_desc = c->w_desc = c->conv_desc = c->workspace = NULL;
}

static void conv_case(const char *label, int n, int h, int w, int cin, int cout, int kernel) {
    char shape[96];
    snprintf(shape, sizeof shape, "%s %dx%dx%d %d->%d k%d", label, n, h, w, cin, cout, kernel);
    int any = 0;
    for (int pass = 0; pass < 3; pass++) any |= wanted(PASS_NAMES[pass], shape);
    if (!any) return;
    size_t xs = (size_t)n * h * w * cin, ys = (size_t)n * h * w * cout, ws = (size_t)cout * kernel * kernel * cin;
    double flops = 2.0 * n * h * w * (double)cin * cout * kernel * kernel;
    float *x = device_floats(xs, 1, NULL), *weight = device_floats(ws, 1, NULL), *dy = device_floats(ys, 1, NULL);
    for (int pass = 0; pass < 3; pass++) {
        if (!wanted(PASS_NAMES[pass], shape)) continue;
        size_t out_count = pass == FORWARD ? ys : pass == BACKWARD_INPUT ? xs : ws;
        float *out_ours = device_floats(out_count, 0, NULL);
        conv_context c = {.n = n, .h = h, .w = w, .cin = cin, .cout = cout, .kernel = kernel, .pass = pass,
                           .x = x, .weight = weight, .dy = dy, .out = out_ours};
        char why[1024];
        double our_ms = time_calls(our_conv, &c, why, sizeof why);
        if (our_ms < 0) {
            row(PASS_NAMES[pass], shape, "ambient", "", 0, flops, -1, 0, why);
            failures++;
        } else {
            row(PASS_NAMES[pass], shape, "ambient", "libambient_cuda.so", our_ms, flops, -1, 0, NULL);
        }
        if (cudnn_handle && our_ms > 0) {
            float *want = download(out_ours, out_count);
            float *out = device_floats(out_count, 0, NULL);
            static const int maths[2] = {CUDNN_FMA_MATH, CUDNN_DEFAULT_MATH};
            static const char *names[2] = {"cudnn fp32 (FMA math)", "cudnn default math"};
            for (int m = 0; m < 2; m++) {
                conv_context t = {.n = n, .h = h, .w = w, .cin = cin, .cout = cout, .kernel = kernel, .pass = pass,
                                   .x = x, .weight = weight, .dy = dy, .out = out};
                char algorithm[128] = "";
                cudaMemset(out, 0xff, out_count * sizeof(float)); /* NaN: a skipped element shows */
                settle();
                if (describe_tensors(&t, maths[m], why, sizeof why) ||
                    choose_algorithm(&t, algorithm, sizeof algorithm, why, sizeof why)) {
                    row(PASS_NAMES[pass], shape, names[m], algorithm, 0, flops, our_ms, 0, why);
                    release_tensors(&t);
                    continue;
                }
                double ms = time_calls(their_conv, &t, why, sizeof why);
                if (ms < 0) {
                    row(PASS_NAMES[pass], shape, names[m], algorithm, 0, flops, our_ms, 0, why);
                } else {
                    float *got = download(out, out_count);
                    row(PASS_NAMES[pass], shape, names[m], algorithm, ms, flops, our_ms,
                        relative_error(got, want, out_count), NULL);
                    free(got);
                }
                release_tensors(&t);
            }
            free(want);
            cudaFree(out);
        }
        cudaFree(out_ours);
    }
    cudaFree(x);
    cudaFree(weight);
    cudaFree(dy);
}

/* ---- Main ------------------------------------------------------------------------------------- */

static int load_ours(const char *path) {
    void *library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        fprintf(stderr, "vendor_compare: dlopen(%s) failed: %s\n", path, dlerror());
        return 1;
    }
    int missing = 0;
#define RESOLVE_OURS(name)                                                                   \
    *(void **)&ours.name = dlsym(library, #name);                                            \
    if (!ours.name) {                                                                        \
        fprintf(stderr, "vendor_compare: %s does not export %s\n", path, #name);            \
        missing++;                                                                           \
    }
    OUR_FUNCTIONS(RESOLVE_OURS)
#undef RESOLVE_OURS
    if (!missing && ours.ambient_library_backend() != AMBIENT_BACKEND_CUDA) {
        fprintf(stderr, "vendor_compare: %s is not the CUDA backend\n", path);
        return 1;
    }
    return missing != 0;
}

/* Creates the vendor handles on the current device; a failure leaves that library out, said. */
static void create_handles(void) {
    cudaError_t e = cudaStreamCreateWithFlags(&vendor_stream, cudaStreamNonBlocking);
    if (e != cudaSuccess) die_cuda("cudaStreamCreateWithFlags", e);
    char why[512];
    if (cublas.status.usable) {
        int status = cublas.cublasCreate_v2(&cublas_handle);
        if (!status) status = cublas.cublasSetStream_v2(cublas_handle, vendor_stream);
        if (!status) status = cublas.cublasSetMathMode(cublas_handle, CUBLAS_DEFAULT_MATH);
        if (status) {
            cublas_error(status, "cublasCreate / cublasSetStream / cublasSetMathMode", why, sizeof why);
            printf("vendor_compare: cuBLAS loaded but unusable here (%s); GEMM is timed for ours alone\n", why);
            cublas_handle = NULL;
        }
    }
    if (cudnn.status.usable) {
        int status = cudnn.cudnnCreate(&cudnn_handle);
        if (!status) status = cudnn.cudnnSetStream(cudnn_handle, vendor_stream);
        if (status) {
            cudnn_error(status, "cudnnCreate / cudnnSetStream", why, sizeof why);
            printf("vendor_compare: cuDNN loaded but unusable here (%s); convolutions are timed for ours alone\n", why);
            cudnn_handle = NULL;
        }
    }
}

int main(int argc, char **argv) {
    const char *path = NULL, *csv_path = NULL;
    int load_only = 0;
    for (int a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--load-only") == 0) load_only = 1;
        else if (strcmp(argv[a], "--quick") == 0) quick = 1;
        else if (strcmp(argv[a], "--heuristic") == 0) heuristic = 1;
        else if (strcmp(argv[a], "--filter") == 0 && a + 1 < argc) filter = argv[++a];
        else if (strcmp(argv[a], "--csv") == 0 && a + 1 < argc) csv_path = argv[++a];
        else if (!path && argv[a][0] != '-') path = argv[a];
        else {
            fprintf(stderr, "usage: vendor_compare [--load-only] [--quick] [--heuristic] [--filter TEXT] [--csv FILE] "
                            "[libambient_cuda.so]\n");
            return 2;
        }
    }
    char our_path[4096];
    if (path) snprintf(our_path, sizeof our_path, "%s", path);
    else test_find_library(our_path, sizeof our_path, argv[0], "libambient_cuda.so");
    if (load_ours(our_path)) return 1;

    /* cuBLAS first: cuDNN's sub-libraries may need libcublasLt, which is then found by soname. */
    vendor_load_cublas(&cublas);
    vendor_load_cudnn(&cudnn);
    char line[8192];
    vendor_describe(&cublas.status, line, sizeof line);
    printf("vendor_compare: %s\n", line);
    vendor_describe(&cudnn.status, line, sizeof line);
    printf("vendor_compare: %s\n", line);

    int32_t count = 0;
    int status = ours.ambient_device_count(&count);
    if (status == AMBIENT_STATUS_NO_DEVICE) {
        printf("vendor_compare: no CUDA device (%s); nothing timed\n", ours.ambient_last_error());
        return 0;
    }
    if (status != AMBIENT_STATUS_OK || count < 1) {
        fprintf(stderr, "vendor_compare: ambient_device_count: %s\n", ours.ambient_last_error());
        return 1;
    }
    char name[256] = "";
    ours.ambient_device_name(0, name, sizeof name);
    printf("vendor_compare: CUDA device 0 of %d: %s\n", count, name);
    if (load_only) {
        printf("vendor_compare: --load-only: libraries loaded, nothing timed\n");
        return 0;
    }
    if (ours.ambient_device_select(0) != AMBIENT_STATUS_OK) {
        fprintf(stderr, "vendor_compare: ambient_device_select(0): %s\n", ours.ambient_last_error());
        return 1;
    }
    cudaError_t e = cudaSetDevice(0);
    if (e != cudaSuccess) die_cuda("cudaSetDevice(0)", e);
    create_handles();
    if (!cublas_handle) printf("vendor_compare: no cuBLAS: GEMM rows are ours alone\n");
    if (!cudnn_handle) printf("vendor_compare: no cuDNN: convolution rows are ours alone\n");
    if (csv_path) {
        csv = fopen(csv_path, "w");
        if (!csv) fprintf(stderr, "vendor_compare: cannot write %s; table only\n", csv_path);
        else fprintf(csv, "op,shape,implementation,algorithm,ms,gflops,ours_over_theirs,rel_error,check\n");
    }
    printf("%-22s %-26s %-22s %-40s %10s %9s %9s  %s\n", "op", "shape", "implementation", "algorithm", "ms", "GFLOP/s",
           "ours/them", "rel.err vs ours");

    gemm_case(512, 512, 512);
    gemm_case(2048, 2048, 2048);
    if (!quick) gemm_case(8192, 8192, 8192);

    conv_case("DESIGN", 32, 16, 16, 128, 128, 3);
    conv_case("DESIGN", 32, 32, 32, 64, 64, 3);
    if (!quick) {
        conv_case("W3 in", 128, 64, 64, 5, 128, 3);
        conv_case("W3", 128, 64, 64, 128, 128, 3);
    }
    conv_case("W3", 128, 32, 32, 256, 256, 3);
    conv_case("W3", 128, 16, 16, 384, 384, 3);
    conv_case("W3", 128, 8, 8, 512, 512, 3);
    conv_case("W3 skip", 128, 32, 32, 128, 256, 1);
    conv_case("W3 qkv", 128, 16, 16, 384, 1152, 1);
    conv_case("W3 qkv", 128, 8, 8, 512, 1536, 1);

    if (csv) fclose(csv);
    if (cublas_handle) cublas.cublasDestroy_v2(cublas_handle);
    if (cudnn_handle) cudnn.cudnnDestroy(cudnn_handle);
    printf("vendor_compare: %d comparison(s) with cuBLAS/cuDNN, %d problem(s) (failed calls of ours or mismatches), "
           "%d vendor call(s) failed (not counted as problems); ours/them > 1 means ours is faster\n",
           comparisons, failures, vendor_failures);
    return failures ? 1 : 0;
}
