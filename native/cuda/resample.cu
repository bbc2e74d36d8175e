/*
 * EDM2's resampling with its default [1, 1] filter on the GPU (same formulas and the same
 * order of additions as cpu/resample.c, so results are bit-identical):
 *   avg_pool2x2:  y = ((x00 + x01) + (x10 + x11)) / 4      x: n x h x w x c -> n x h/2 x w/2 x c
 *   upsample2x:   every pixel of a 2x2 output block = its input pixel
 * Each gradient is the other op up to a scale, so two kernels serve the four entries:
 *   sum_blocks(scale):    out pixel = scale * (sum of its 2x2 input block)   pool fwd, up bwd
 *   spread_blocks(scale): every pixel of an out block = scale * in pixel      up fwd, pool bwd
 * Memory-bound: one thread per element of the small tensor (grid-stride), consecutive threads
 * on consecutive channels, so reads and writes coalesce.
 */
#include "internal.cuh"

/* Small tensor element i = ((row * ws) + j) * c + k with row running over n * hs. */
struct sum_blocks_op {
    int64_t ws, c;
    float scale;
    const float *in;
    float *out;
    __device__ void operator()(int64_t i) const {
        int64_t k = i % c, pix = i / c, j = pix % ws, row = pix / ws;
        int64_t in_row = 2 * ws * c;
        const float *t = in + 2 * row * in_row + 2 * j * c, *b = t + in_row;
        out[i] = scale * ((t[k] + t[c + k]) + (b[k] + b[c + k]));
    }
};

struct spread_blocks_op {
    int64_t ws, c;
    float scale;
    const float *in;
    float *out;
    __device__ void operator()(int64_t i) const {
        int64_t k = i % c, pix = i / c, j = pix % ws, row = pix / ws;
        int64_t out_row = 2 * ws * c;
        float v = scale * in[i];
        float *t = out + 2 * row * out_row + 2 * j * c, *b = t + out_row;
        t[k] = v;
        t[c + k] = v;
        b[k] = v;
        b[c + k] = v;
    }
};

/* The CPU backend's checks: non-negative sizes, the large tensor (4 x the small one of hs x ws)
 * within AMBIENT_MAX_COUNT. */
static int check_dims(const char *function, int64_t n, int64_t h, int64_t w, int64_t c, int64_t hs,
                      int64_t ws) {
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

static int check_pool(const char *function, int64_t n, int64_t h, int64_t w, int64_t c) {
    int status = check_dims(function, n, h, w, c, h / 2, w / 2);
    if (status) return status;
    AMBIENT_REQUIRE(h % 2 == 0 && w % 2 == 0, "%s: h = %lld and w = %lld must be even", function,
                    (long long)h, (long long)w);
    return AMBIENT_STATUS_OK;
}

/* Validates pointers and overlap of big (4 x small) and small, then launches op over the
 * small tensor's elements. */
template <typename Op>
static int resample_run(const char *function, int64_t n, int64_t hs, int64_t ws, int64_t c,
                        const char *in_name, const float *in, const char *out_name, float *out,
                        bool in_is_big, float scale) {
    int64_t count = n * hs * ws * c;
    if (count == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE(in != NULL, "%s: %s is NULL", function, in_name);
    AMBIENT_REQUIRE(out != NULL, "%s: %s is NULL", function, out_name);
    int64_t small = count * (int64_t)sizeof(float);
    AMBIENT_REQUIRE(!ambient_overlaps(in, in_is_big ? 4 * small : small, out, in_is_big ? small : 4 * small),
                    "%s: %s and %s overlap", function, in_is_big ? in_name : out_name,
                    in_is_big ? out_name : in_name);
    ambient_cuda_context ctx;
    int status = ambient_cuda_begin(function, &ctx);
    if (status) return status;
    AMBIENT_CUDA_CHECK_AS(function, ambient_for_each(ctx, count, Op{ws, c, scale, in, out}));
    return AMBIENT_STATUS_OK;
}

int ambient_avg_pool2x2_forward(int64_t n, int64_t h, int64_t w, int64_t c, const float *x, float *y) {
    ambient_cuda_clear_error();
    int status = check_pool(__func__, n, h, w, c);
    if (status) return status;
    return resample_run<sum_blocks_op>(__func__, n, h / 2, w / 2, c, "x", x, "y", y, true, 0.25f);
}

int ambient_avg_pool2x2_backward(int64_t n, int64_t h, int64_t w, int64_t c, const float *dy, float *dx) {
    ambient_cuda_clear_error();
    int status = check_pool(__func__, n, h, w, c);
    if (status) return status;
    return resample_run<spread_blocks_op>(__func__, n, h / 2, w / 2, c, "dy", dy, "dx", dx, false, 0.25f);
}

int ambient_upsample2x_forward(int64_t n, int64_t h, int64_t w, int64_t c, const float *x, float *y) {
    ambient_cuda_clear_error();
    int status = check_dims(__func__, n, h, w, c, h, w);
    if (status) return status;
    return resample_run<spread_blocks_op>(__func__, n, h, w, c, "x", x, "y", y, false, 1.0f);
}

int ambient_upsample2x_backward(int64_t n, int64_t h, int64_t w, int64_t c, const float *dy, float *dx) {
    ambient_cuda_clear_error();
    int status = check_dims(__func__, n, h, w, c, h, w);
    if (status) return status;
    return resample_run<sum_blocks_op>(__func__, n, h, w, c, "dy", dy, "dx", dx, true, 1.0f);
}
