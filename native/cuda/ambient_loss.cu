/*
 * The Ambient training pair and loss on the GPU (same formulas as cpu/ambient_loss.c).
 *
 * Noising, for each of n samples of `size` elements:
 *   x_tn = x + sigma_tn z      z: Philox normals of stream host_sample_ids[i] under fixed_seed
 *   x_t  = x_tn + sqrt(sigma_t^2 - sigma_tn^2) eps     eps: stream i under step_seed
 * with the CPU's generator (philox.cuh), so both backends draw the same noise (normals to
 * about 1e-6). A thread handles one Philox group (4 elements) of one sample; sigma_tn = 0 draws
 * no z and sigma_t = sigma_tn no eps, as on the CPU.
 *
 * Loss, with r = sigma_tn^2 / sigma_t^2, w = (sigma_t^2 + sigma_data^2) / (sigma_t sigma_data)^2:
 *   res = (x_t - x_tn) + (1 - r)(x0_pred - x_t),  S_i = sum_e m_e res_e^2,  L_i = w / (1 - r)^2 S_i
 *   with logvar u: L_i <- L_i / e^u + u sum_e m_e
 *   grad_x0 = scale 2 w / (1 - r) m res / e^u,  grad_logvar = scale (sum m - L_i / e^u)
 * Deterministic: a sample's pixels are cut into fixed chunks (LOSS_CHUNK elements rounded to
 * whole pixels, whatever the GPU); a block per chunk writes grad_x0 and its double sums of
 * m res^2 and m to slots of the scratch block (threads strided, then a fixed tree), and a
 * second kernel adds each sample's slots in chunk order.
 *
 * Both entry points check the noise levels as the CPU does (finite, sigma_t > 0, sigma_tn >= 0,
 * sigma_tn <= or < sigma_t), which on this backend means copying the 2n floats to the host
 * and waiting for the stream: the price of refusing bad levels with a clear message.
 */
#include "internal.cuh"
#include "philox.cuh"

#include <cmath>
#include <stdlib.h>

#define LOSS_CHUNK 16384
#define LOSS_THREADS 256

/* ---- Argument checks ---------------------------------------------------------------------------- */

static int check_sizes(const char *function, int64_t n, int64_t size) {
    AMBIENT_REQUIRE(n >= 0 && size >= 0, "%s: n = %lld and size = %lld must be non-negative", function, (long long)n,
                    (long long)size);
    AMBIENT_REQUIRE(size == 0 || n <= AMBIENT_MAX_COUNT / size, "%s: n * size = %lld * %lld is too large", function,
                    (long long)n, (long long)size);
    return AMBIENT_STATUS_OK;
}

/* Copies the device noise levels to the host and checks them (strict: sigma_tn < sigma_t). */
static int check_sigmas(const char *function, const ambient_cuda_context &ctx, int64_t n, const float *sigma_t,
                        const float *sigma_tn, int strict) {
    float *host = (float *)malloc((size_t)n * 2 * sizeof(float));
    if (!host)
        return ambient_cuda_fail(AMBIENT_STATUS_OUT_OF_MEMORY, "%s: no host memory to check %lld noise levels",
                                 function, (long long)n);
    cudaError_t error = cudaMemcpyAsync(host, sigma_t, (size_t)n * sizeof(float), cudaMemcpyDeviceToHost, ctx.stream);
    if (error == cudaSuccess)
        error = cudaMemcpyAsync(host + n, sigma_tn, (size_t)n * sizeof(float), cudaMemcpyDeviceToHost, ctx.stream);
    if (error == cudaSuccess) error = cudaStreamSynchronize(ctx.stream);
    if (error != cudaSuccess) {
        free(host);
        return ambient_cuda_fail_call(function, error, "cudaMemcpyAsync(sigma_t, sigma_tn to the host)", __FILE__,
                                      __LINE__);
    }
    int status = AMBIENT_STATUS_OK;
    for (int64_t i = 0; i < n && status == AMBIENT_STATUS_OK; i++) {
        float t = host[i], tn = host[n + i];
        if (!(std::isfinite(t) && t > 0))
            status = ambient_cuda_fail(AMBIENT_STATUS_INVALID_ARGUMENT,
                                       "%s: sample %lld has sigma_t = %g; it must be positive and finite", function,
                                       (long long)i, (double)t);
        else if (!(std::isfinite(tn) && tn >= 0))
            status = ambient_cuda_fail(AMBIENT_STATUS_INVALID_ARGUMENT,
                                       "%s: sample %lld has sigma_tn = %g; it must be non-negative and finite",
                                       function, (long long)i, (double)tn);
        else if (strict && !(tn < t))
            status = ambient_cuda_fail(AMBIENT_STATUS_INVALID_ARGUMENT,
                                       "%s: sample %lld has sigma_tn = %.7g >= sigma_t = %.7g (sigma_tn < sigma_t is required)",
                                       function, (long long)i, (double)tn, (double)t);
        else if (!strict && !(tn <= t))
            status = ambient_cuda_fail(AMBIENT_STATUS_INVALID_ARGUMENT,
                                       "%s: sample %lld has sigma_tn = %.7g > sigma_t = %.7g (sigma_tn <= sigma_t is required)",
                                       function, (long long)i, (double)tn, (double)t);
    }
    free(host);
    return status;
}

typedef struct {
    const char *name;
    const void *p;
    int64_t bytes;
} span;

/* Fails when an output span (the first `outputs`) overlaps any other span. */
static int check_no_overlap(const char *function, const span *spans, int count, int outputs) {
    for (int a = 0; a < outputs; a++) {
        if (!spans[a].p || spans[a].bytes == 0) continue;
        for (int b = 0; b < count; b++) {
            if (b == a || !spans[b].p || spans[b].bytes == 0) continue;
            AMBIENT_REQUIRE(!ambient_overlaps(spans[a].p, spans[a].bytes, spans[b].p, spans[b].bytes),
                            "%s: %s overlaps %s", function, spans[a].name, spans[b].name);
        }
    }
    return AMBIENT_STATUS_OK;
}

/* ---- Noising --------------------------------------------------------------------------------------- */

struct noising_op {
    int64_t size, groups; /* groups per sample: ceil(size / 4) */
    const float *x, *sigma_t, *sigma_tn;
    const int64_t *sample_ids; /* device copy of host_sample_ids */
    uint64_t fixed_seed, step_seed;
    float *x_tn, *x_t;
    __device__ void operator()(int64_t item) const {
        int64_t i = item / groups, g = item % groups;
        double t = sigma_t[i], tnd = sigma_tn[i];
        float tn = sigma_tn[i], s = (float)sqrt((t - tnd) * (t + tnd));
        float z[4] = {0, 0, 0, 0}, eps[4] = {0, 0, 0, 0};
        if (tn != 0.0f) ambient_philox_normal4(fixed_seed, (uint64_t)sample_ids[i], (uint64_t)g, z);
        if (s != 0.0f) ambient_philox_normal4(step_seed, (uint64_t)i, (uint64_t)g, eps);
        const int64_t base = i * size;
#pragma unroll
        for (int q = 0; q < 4; q++) {
            int64_t e = 4 * g + q;
            if (e >= size) break;
            float xv = x[base + e];
            float v = tn != 0.0f ? xv + tn * z[q] : xv;
            x_tn[base + e] = v;
            x_t[base + e] = s != 0.0f ? v + s * eps[q] : v;
        }
    }
};

int ambient_ambient_noising(int64_t n, int64_t size, const float *x, const float *sigma_t, const float *sigma_tn,
                            const int64_t *host_sample_ids, int64_t fixed_seed, int64_t step_seed, float *x_tn,
                            float *x_t) {
    ambient_cuda_clear_error();
    int status = check_sizes(__func__, n, size);
    if (status) return status;
    if (n == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(sigma_t);
    AMBIENT_REQUIRE_POINTER(sigma_tn);
    AMBIENT_REQUIRE_POINTER(host_sample_ids);
    ambient_cuda_context ctx;
    status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;
    status = check_sigmas(__func__, ctx, n, sigma_t, sigma_tn, 0);
    if (status) return status;
    if (size == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(x);
    AMBIENT_REQUIRE_POINTER(x_tn);
    AMBIENT_REQUIRE_POINTER(x_t);
    int64_t bytes = n * size * (int64_t)sizeof(float), scalars = n * (int64_t)sizeof(float);
    /* host_sample_ids is host memory: it cannot overlap device outputs, so it is not listed. */
    span spans[] = {{"x_tn", x_tn, bytes}, {"x_t", x_t, bytes}, {"x", x, bytes},
                    {"sigma_t", sigma_t, scalars}, {"sigma_tn", sigma_tn, scalars}};
    status = check_no_overlap(__func__, spans, 5, 2);
    if (status) return status;

    ambient_cuda_scratch scratch(ctx);
    void *ids = nullptr;
    status = scratch.take(__func__, n * (int64_t)sizeof(int64_t), &ids);
    if (status) return status;
    /* From pageable host memory the copy has staged host_sample_ids when it returns. */
    AMBIENT_CUDA_CHECK(cudaMemcpyAsync(ids, host_sample_ids, (size_t)n * sizeof(int64_t), cudaMemcpyHostToDevice,
                                       ctx.stream));
    int64_t groups = (size + 3) / 4;
    noising_op op{size, groups, x, sigma_t, sigma_tn, (const int64_t *)ids, (uint64_t)fixed_seed, (uint64_t)step_seed,
                  x_tn, x_t};
    AMBIENT_CUDA_CHECK(ambient_for_each(ctx, n * groups, op));
    return AMBIENT_STATUS_OK;
}

/* ---- Loss -------------------------------------------------------------------------------------------- */

struct loss_weights {
    double r, omr, w; /* sigma_tn^2 / sigma_t^2, 1 - r, EDM weight */
};

static __device__ loss_weights weights_of(double t, double tn, double sigma_data) {
    loss_weights q;
    q.r = tn * tn / (t * t);
    q.omr = (t - tn) * (t + tn) / (t * t);
    q.w = (t * t + sigma_data * sigma_data) / (t * sigma_data * t * sigma_data);
    return q;
}

/* Block = one chunk (sample i = blockIdx.x / chunks): grad_x0 over its elements, and its sums of
 * m res^2 and of m (over its pixels) into partial[2 item], partial[2 item + 1]. */
static __global__ void __launch_bounds__(LOSS_THREADS)
loss_chunks_kernel(int64_t size, int64_t channels, int64_t chunks, int64_t chunk_pixels, double sigma_data,
                   const float *x0_pred, const float *x_t, const float *x_tn, const float *sigma_t,
                   const float *sigma_tn, const float *logvar, const float *mask, float scale, float *grad_x0,
                   double *partial) {
    __shared__ double scratch[32];
    const int64_t item = blockIdx.x, i = item / chunks, pixels = size / channels;
    const int64_t p0 = (item % chunks) * chunk_pixels, p1 = p0 + chunk_pixels < pixels ? p0 + chunk_pixels : pixels;
    loss_weights q = weights_of(sigma_t[i], sigma_tn[i], sigma_data);
    double inv_var = logvar ? exp(-(double)logvar[i]) : 1.0;
    const float omr = (float)q.omr, gcoef = (float)(scale * 2.0 * q.w / q.omr * inv_var);
    const int64_t off = i * size;
    const float *m = mask ? mask + i * pixels : nullptr;
    double acc = 0, msum = 0;
    for (int64_t e = p0 * channels + threadIdx.x; e < p1 * channels; e += LOSS_THREADS) {
        float res = (x_t[off + e] - x_tn[off + e]) + omr * (x0_pred[off + e] - x_t[off + e]);
        float mres = m ? m[e / channels] * res : res;
        if (grad_x0) grad_x0[off + e] = gcoef * mres;
        acc += (double)mres * res;
    }
    if (m)
        for (int64_t p = p0 + threadIdx.x; p < p1; p += LOSS_THREADS) msum += m[p];
    acc = ambient_block_sum(acc, scratch);
    msum = ambient_block_sum(msum, scratch);
    if (threadIdx.x == 0) {
        partial[2 * item] = acc;
        partial[2 * item + 1] = msum;
    }
}

/* Thread per sample: its chunks' sums in chunk order, then loss and grad_logvar. */
static __global__ void loss_final_kernel(int64_t n, int64_t size, int64_t channels, int64_t chunks, double sigma_data,
                                         const float *sigma_t, const float *sigma_tn, const float *logvar,
                                         const float *mask, float scale, const double *partial, float *loss,
                                         float *grad_logvar) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        double s = 0, msum = 0;
        for (int64_t c = 0; c < chunks; c++) {
            s += partial[2 * (i * chunks + c)];
            msum += partial[2 * (i * chunks + c) + 1];
        }
        /* the mask sum over elements: each pixel's value counts once per channel */
        msum = mask ? msum * (double)channels : (double)size;
        loss_weights q = weights_of(sigma_t[i], sigma_tn[i], sigma_data);
        double l = q.w / (q.omr * q.omr) * s;
        if (logvar) {
            double u = logvar[i], scaled = l * exp(-u);
            loss[i] = (float)(scaled + u * msum);
            grad_logvar[i] = (float)(scale * (msum - scaled));
        } else {
            loss[i] = (float)l;
        }
    }
}

int ambient_ambient_loss(int64_t n, int64_t size, int64_t channels, float sigma_data, const float *x0_pred,
                         const float *x_t, const float *x_tn, const float *sigma_t, const float *sigma_tn,
                         const float *logvar, const float *mask, float scale, float *loss, float *grad_x0,
                         float *grad_logvar) {
    ambient_cuda_clear_error();
    int status = check_sizes(__func__, n, size);
    if (status) return status;
    AMBIENT_REQUIRE(channels > 0, "%s: channels = %lld must be positive", __func__, (long long)channels);
    AMBIENT_REQUIRE(size % channels == 0, "%s: size = %lld is not a multiple of channels = %lld", __func__,
                    (long long)size, (long long)channels);
    AMBIENT_REQUIRE(std::isfinite(sigma_data) && sigma_data > 0, "%s: sigma_data = %g must be positive and finite",
                    __func__, (double)sigma_data);
    AMBIENT_REQUIRE(std::isfinite(scale), "%s: scale = %g is not finite", __func__, (double)scale);
    AMBIENT_REQUIRE((logvar == NULL) == (grad_logvar == NULL),
                    "%s: logvar and grad_logvar must be given together (logvar %s, grad_logvar %s)", __func__,
                    logvar ? "given" : "NULL", grad_logvar ? "given" : "NULL");
    if (n == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(sigma_t);
    AMBIENT_REQUIRE_POINTER(sigma_tn);
    AMBIENT_REQUIRE_POINTER(loss);
    if (size > 0) {
        AMBIENT_REQUIRE_POINTER(x0_pred);
        AMBIENT_REQUIRE_POINTER(x_t);
        AMBIENT_REQUIRE_POINTER(x_tn);
    }
    int64_t pixels = size / channels;
    int64_t bytes = n * size * (int64_t)sizeof(float), scalars = n * (int64_t)sizeof(float);
    span spans[] = {{"loss", loss, scalars}, {"grad_x0", grad_x0, bytes}, {"grad_logvar", grad_logvar, scalars},
                    {"x0_pred", x0_pred, bytes}, {"x_t", x_t, bytes}, {"x_tn", x_tn, bytes},
                    {"sigma_t", sigma_t, scalars}, {"sigma_tn", sigma_tn, scalars},
                    {"logvar", logvar, scalars}, {"mask", mask, n * pixels * (int64_t)sizeof(float)}};
    status = check_no_overlap(__func__, spans, 10, 3);
    if (status) return status;
    ambient_cuda_context ctx;
    status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;
    status = check_sigmas(__func__, ctx, n, sigma_t, sigma_tn, 1);
    if (status) return status;

    int64_t chunk_pixels = LOSS_CHUNK / channels > 0 ? LOSS_CHUNK / channels : 1;
    int64_t chunks = pixels > 0 ? (pixels + chunk_pixels - 1) / chunk_pixels : 0, items = n * chunks;
    AMBIENT_REQUIRE(items <= INT64_C(2147483647), "%s: %lld chunks are more than one launch covers", __func__,
                    (long long)items);
    ambient_cuda_scratch scratch(ctx);
    void *partial = nullptr;
    status = scratch.take(__func__, (items > 0 ? items : 1) * 2 * (int64_t)sizeof(double), &partial);
    if (status) return status;
    if (items > 0) {
        AMBIENT_LAUNCH((unsigned)items, LOSS_THREADS, 0, ctx.stream, loss_chunks_kernel)(
            size, channels, chunks, chunk_pixels, sigma_data, x0_pred, x_t, x_tn, sigma_t, sigma_tn, logvar, mask,
            scale, grad_x0, (double *)partial);
        AMBIENT_CUDA_CHECK(cudaGetLastError());
    }
    unsigned blocks = ambient_cuda_blocks(n, 128, ctx.sm_count, 8);
    AMBIENT_LAUNCH(blocks, 128, 0, ctx.stream, loss_final_kernel)(
        n, size, channels, chunks, sigma_data, sigma_t, sigma_tn, logvar, mask, scale, (const double *)partial, loss,
        grad_logvar);
    AMBIENT_CUDA_CHECK(cudaGetLastError());
    return AMBIENT_STATUS_OK;
}
