/*
 * Per-sample scaling on the GPU (same semantics and checks as cpu/sample_ops.c), for n samples
 * of `size` elements (x, y, out: n x size; alpha, beta: n device floats):
 *   out[i, e] = alpha[i] x[i, e] + beta[i] y[i, e]      (or alpha[i] x[i, e] without y)
 * The per-sample scalars are read by the kernel (no host round trip). Memory-bound, one thread
 * per element (grid-stride). out may be x or y exactly: each element is read before the same
 * thread writes it.
 */
#include "internal.cuh"

struct sample_axpby_op {
    int64_t size;
    const float *alpha, *x, *beta, *y;
    float *out;
    __device__ void operator()(int64_t e) const {
        int64_t i = e / size;
        out[e] = y ? alpha[i] * x[e] + beta[i] * y[e] : alpha[i] * x[e];
    }
};

int ambient_sample_axpby(int64_t n, int64_t size, const float *alpha, const float *x, const float *beta,
                         const float *y, float *out) {
    ambient_cuda_clear_error();
    AMBIENT_REQUIRE(n >= 0 && size >= 0, "%s: n = %lld and size = %lld must be non-negative", __func__,
                    (long long)n, (long long)size);
    AMBIENT_REQUIRE(size == 0 || n <= AMBIENT_MAX_COUNT / size, "%s: n x size = %lld x %lld is too large", __func__,
                    (long long)n, (long long)size);
    AMBIENT_REQUIRE((beta == NULL) == (y == NULL),
                    "%s: beta and y must be both NULL or both given (beta %s, y %s)", __func__, beta ? "given" : "NULL",
                    y ? "given" : "NULL");
    if (n == 0 || size == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(alpha);
    AMBIENT_REQUIRE_POINTER(x);
    AMBIENT_REQUIRE_POINTER(out);
    int64_t f = (int64_t)sizeof(float), bytes = n * size * f, scalars = n * f;
    AMBIENT_REQUIRE(out == x || !ambient_overlaps(out, bytes, x, bytes), "%s: out partly overlaps x", __func__);
    AMBIENT_REQUIRE(!ambient_overlaps(out, bytes, alpha, scalars), "%s: out overlaps alpha", __func__);
    if (y != NULL) {
        AMBIENT_REQUIRE(out == y || !ambient_overlaps(out, bytes, y, bytes), "%s: out partly overlaps y", __func__);
        AMBIENT_REQUIRE(!ambient_overlaps(out, bytes, beta, scalars), "%s: out overlaps beta", __func__);
    }
    ambient_cuda_context ctx;
    int status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;
    AMBIENT_CUDA_CHECK(ambient_for_each(ctx, n * size, sample_axpby_op{size, alpha, x, beta, y, out}));
    return AMBIENT_STATUS_OK;
}
