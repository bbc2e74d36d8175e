/*
 * EDM2's resampling with its default filter [1, 1] (networks_edm2.py resample()):
 *   "down": the normalised 2x2 box, stride 2 = 2x2 average pooling
 *       x: n x h x w x c (h, w even) -> y: n x h/2 x w/2 x c,  y = (x00 + x01 + x10 + x11) / 4
 *   "up":   the transposed convolution with the box times 4 = nearest 2x upsampling
 *       x: n x h x w x c -> y: n x 2h x 2w x c,  every 2x2 output block = its input pixel
 * Each one's gradient is the other one up to a scale, so two kernels serve all four entries:
 *   sum_blocks(scale):  out pixel = scale * (sum of its 2x2 input block)   pool fwd (1/4), up bwd (1)
 *   spread_blocks(scale): every pixel of an out block = scale * in pixel   up fwd (1), pool bwd (1/4)
 * Memory-bound: one read of the input, one write of the output; rows of pixels are split over
 * OpenMP threads and the loops over channels are compiled for AVX-512, AVX2 and baseline
 * x86-64 (target_clones). Benchmark: LayerBenchmark (avg_pool2x2_forward, upsample2x_forward).
 */
#include "internal.h"

/* Below this many output elements a thread team costs more than it saves. */
#define PARALLEL_THRESHOLD 32768
#define SIMD_CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))

/* Output rows [begin, end) of `sum_blocks`: out row r (of w_out pixels) reads input rows 2r and
 * 2r + 1 (of 2 w_out pixels); with n samples stacked, row indices run straight through. */
SIMD_CLONES
static void sum_blocks(int64_t begin, int64_t end, int64_t w_out, int64_t c, float scale,
                       const float *in, float *out) {
    int64_t in_row = 2 * w_out * c;
    for (int64_t r = begin; r < end; r++) {
        const float *top = in + 2 * r * in_row, *bottom = top + in_row;
        float *o = out + r * w_out * c;
        for (int64_t j = 0; j < w_out; j++) {
            const float *t = top + 2 * j * c, *b = bottom + 2 * j * c;
            float *oj = o + j * c;
#pragma omp simd
            for (int64_t k = 0; k < c; k++) oj[k] = scale * ((t[k] + t[c + k]) + (b[k] + b[c + k]));
        }
    }
}

/* Input rows [begin, end) of `spread_blocks`: in row r (of w_in pixels) fills output rows 2r
 * and 2r + 1 (of 2 w_in pixels). */
SIMD_CLONES
static void spread_blocks(int64_t begin, int64_t end, int64_t w_in, int64_t c, float scale,
                          const float *in, float *out) {
    int64_t out_row = 2 * w_in * c;
    for (int64_t r = begin; r < end; r++) {
        const float *i = in + r * w_in * c;
        float *top = out + 2 * r * out_row, *bottom = top + out_row;
        for (int64_t j = 0; j < w_in; j++) {
            const float *ij = i + j * c;
            float *t = top + 2 * j * c, *b = bottom + 2 * j * c;
#pragma omp simd
            for (int64_t k = 0; k < c; k++) {
                float v = scale * ij[k];
                t[k] = v;
                t[c + k] = v;
                b[k] = v;
                b[c + k] = v;
            }
        }
    }
}

/* Checks the arguments n, h, w, c (as the caller got them) and that the large tensor, 4 x
 * n x hs x ws x c for the small one's hs and ws, stays within AMBIENT_MAX_COUNT. */
static int check_dims(const char *function, int64_t n, int64_t h, int64_t w, int64_t c,
                      int64_t hs, int64_t ws) {
    AMBIENT_REQUIRE(n >= 0 && h >= 0 && w >= 0 && c >= 0,
                    "%s: n = %lld, h = %lld, w = %lld, c = %lld must be non-negative", function,
                    (long long)n, (long long)h, (long long)w, (long long)c);
    int64_t size = 4, dims[4] = {n, hs, ws, c};
    for (int i = 0; i < 4; i++) {
        AMBIENT_REQUIRE(dims[i] == 0 || size <= AMBIENT_MAX_COUNT / dims[i],
                        "%s: n x h x w x c = %lld x %lld x %lld x %lld is too large", function,
                        (long long)n, (long long)h, (long long)w, (long long)c);
        size *= dims[i];
    }
    return AMBIENT_STATUS_OK;
}

/* The pooling entries take the large tensor's h and w, which must be even. */
static int check_pool(const char *function, int64_t n, int64_t h, int64_t w, int64_t c) {
    int status = check_dims(function, n, h, w, c, h / 2, w / 2);
    if (status) return status;
    AMBIENT_REQUIRE(h % 2 == 0 && w % 2 == 0, "%s: h = %lld and w = %lld must be even", function,
                    (long long)h, (long long)w);
    return AMBIENT_STATUS_OK;
}

static int64_t row_threshold(int64_t row_elements) {
    return row_elements > 0 ? PARALLEL_THRESHOLD / row_elements + 1 : 1;
}

/* big: n x 2hs x 2ws x c, small: n x hs x ws x c. */
#define RESAMPLE_ENTRY(big, small)                                                          \
    int64_t bytes_small = n * hs * ws * c * (int64_t)sizeof(float);                         \
    AMBIENT_REQUIRE(!ambient_overlaps(big, 4 * bytes_small, small, bytes_small),             \
                    "%s: %s and %s overlap", __func__, #big, #small)

int ambient_avg_pool2x2_forward(int64_t n, int64_t h, int64_t w, int64_t c, const float *x,
                                float *y) {
    ambient_clear_error();
    int status = check_pool(__func__, n, h, w, c);
    if (status) return status;
    int64_t hs = h / 2, ws = w / 2;
    if (n * hs * ws * c == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(x);
    AMBIENT_REQUIRE_POINTER(y);
    RESAMPLE_ENTRY(x, y);
    AMBIENT_PARALLEL_CHUNKS(n * hs, row_threshold(ws * c), sum_blocks(begin, end, ws, c, 0.25f, x, y));
    return AMBIENT_STATUS_OK;
}

int ambient_avg_pool2x2_backward(int64_t n, int64_t h, int64_t w, int64_t c, const float *dy,
                                 float *dx) {
    ambient_clear_error();
    int status = check_pool(__func__, n, h, w, c);
    if (status) return status;
    int64_t hs = h / 2, ws = w / 2;
    if (n * hs * ws * c == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(dy);
    AMBIENT_REQUIRE_POINTER(dx);
    RESAMPLE_ENTRY(dx, dy);
    AMBIENT_PARALLEL_CHUNKS(n * hs, row_threshold(4 * ws * c), spread_blocks(begin, end, ws, c, 0.25f, dy, dx));
    return AMBIENT_STATUS_OK;
}

int ambient_upsample2x_forward(int64_t n, int64_t h, int64_t w, int64_t c, const float *x,
                               float *y) {
    ambient_clear_error();
    int status = check_dims(__func__, n, h, w, c, h, w);
    if (status) return status;
    int64_t hs = h, ws = w;
    if (n * hs * ws * c == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(x);
    AMBIENT_REQUIRE_POINTER(y);
    RESAMPLE_ENTRY(y, x);
    AMBIENT_PARALLEL_CHUNKS(n * hs, row_threshold(4 * ws * c), spread_blocks(begin, end, ws, c, 1.0f, x, y));
    return AMBIENT_STATUS_OK;
}

int ambient_upsample2x_backward(int64_t n, int64_t h, int64_t w, int64_t c, const float *dy,
                                float *dx) {
    ambient_clear_error();
    int status = check_dims(__func__, n, h, w, c, h, w);
    if (status) return status;
    int64_t hs = h, ws = w;
    if (n * hs * ws * c == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(dy);
    AMBIENT_REQUIRE_POINTER(dx);
    RESAMPLE_ENTRY(dy, dx);
    AMBIENT_PARALLEL_CHUNKS(n * hs, row_threshold(ws * c), sum_blocks(begin, end, ws, c, 1.0f, dy, dx));
    return AMBIENT_STATUS_OK;
}
