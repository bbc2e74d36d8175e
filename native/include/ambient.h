/*
 * ambient.h: the one contract between Ambient's Java layer and its native backends.
 *
 * libambient_cpu.so (C11 + OpenMP) and libambient_cuda.so (CUDA) both export exactly these
 * symbols. Java binds one generated class to either library (bindings/ reads this file), and
 * the C parity harness loads both and compares them.
 *
 * Rules every function follows:
 *   - It returns an int status (AMBIENT_STATUS_*); on anything but OK, ambient_last_error()
 *     gives a message for the calling thread. Nothing here exits, aborts or throws.
 *   - Sizes, counts and strides are int64_t; negative ones are rejected.
 *   - Tensor pointers are "device pointers": host memory for the CPU backend, GPU memory for
 *     the CUDA backend. Host pointers are named host_* (and ambient_memory_copy_* say which).
 *   - Layout is NHWC float32. A "row" is one pixel's C channels.
 *   - Outputs may alias inputs only where a function says so.
 *
 * The file is written in a constrained C that the binding generator understands: #define of
 * integer constants, typedef'd enums with explicit values, and function declarations over
 * int32_t, int64_t, float, double, void and pointers. Keep it that way.
 */
#ifndef AMBIENT_H
#define AMBIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AMBIENT_VERSION_MAJOR 0
#define AMBIENT_VERSION_MINOR 1
#define AMBIENT_VERSION_PATCH 0

typedef enum ambient_status {
    AMBIENT_STATUS_OK = 0,
    AMBIENT_STATUS_INVALID_ARGUMENT = 1,
    AMBIENT_STATUS_OUT_OF_MEMORY = 2,
    AMBIENT_STATUS_NO_DEVICE = 3,
    AMBIENT_STATUS_DEVICE_ERROR = 4,
    AMBIENT_STATUS_INTERNAL = 5
} ambient_status;

typedef enum ambient_backend {
    AMBIENT_BACKEND_CPU = 0,
    AMBIENT_BACKEND_CUDA = 1
} ambient_backend;

typedef enum ambient_precision {
    AMBIENT_PRECISION_FP32 = 0, /* float32 operands and products */
    AMBIENT_PRECISION_TF32 = 1, /* operands rounded to tf32 (10 fraction bits), float32 sums */
    AMBIENT_PRECISION_BF16 = 2  /* operands rounded to bf16 (7 fraction bits), float32 sums */
} ambient_precision;

/* ---- Library ------------------------------------------------------------------------- */

/* major * 10000 + minor * 100 + patch of the library actually loaded. */
int32_t ambient_library_version(void);

/* AMBIENT_BACKEND_CPU or AMBIENT_BACKEND_CUDA. */
int32_t ambient_library_backend(void);

/* The precision of this backend's matrix products (ambient_gemm, the three convolutions, and
 * attention with head_dim <= 128), an ambient_precision: FP32 on the CPU; on CUDA the one
 * AMBIENT_CUDA_MATMUL chose (BF16 unless it is set). Everything else is float32 on both. The
 * CUDA backend answers as every call that needs the device does: AMBIENT_STATUS_NO_DEVICE
 * without a GPU, INVALID_ARGUMENT naming an unknown AMBIENT_CUDA_MATMUL. */
int ambient_matmul_precision(int32_t *precision);

/* Message of the last failed call on this thread; "" when none. Valid until the next call. */
const char *ambient_last_error(void);

/* ---- Devices ------------------------------------------------------------------------- */

/* Number of usable devices. The CPU backend has exactly one. The CUDA backend returns
 * AMBIENT_STATUS_NO_DEVICE (and sets *count = 0) when no driver or no GPU answers. */
int ambient_device_count(int32_t *count);

/* Selects the device that later calls on this thread use (CUDA); 0 is the only CPU device. */
int ambient_device_select(int32_t device);

/* Human-readable device name, NUL-terminated, truncated to capacity bytes. */
int ambient_device_name(int32_t device, char *name, int64_t capacity);

/* Free and total memory of the device, in bytes. */
int ambient_device_memory(int32_t device, int64_t *free_bytes, int64_t *total_bytes);

/* Waits for all work queued by this library on the selected device. */
int ambient_device_synchronize(void);

/* Worker threads used by CPU kernels (<= 0 restores the default); CUDA ignores it. */
int ambient_threads_set(int32_t threads);
int ambient_threads_get(int32_t *threads);

/* ---- Memory (device pointers unless named host) ---------------------------------------- */

/* 64-byte aligned (CPU) or cudaMalloc'd (CUDA) block of bytes > 0. */
int ambient_memory_alloc(int64_t bytes, void **ptr);
int ambient_memory_free(void *ptr);
int ambient_memory_copy_to_device(void *device_dst, const void *host_src, int64_t bytes);
int ambient_memory_copy_to_host(void *host_dst, const void *device_src, int64_t bytes);
int ambient_memory_copy_on_device(void *device_dst, const void *device_src, int64_t bytes);
/* Sets every byte to the low 8 bits of value. */
int ambient_memory_set(void *device_dst, int32_t value, int64_t bytes);

/* ---- Machine ceilings (what benchmarks divide by) ---------------------------------------- */

/* float32 fused multiply-add throughput of the whole device, GFLOP/s (2 flops per FMA),
 * measured for about `seconds`. */
int ambient_benchmark_fma_peak(double seconds, double *gflops);

/* Memory bandwidth of a large copy (read + write bytes counted), GB/s, on a working set of
 * `bytes`, measured for about `seconds`. */
int ambient_benchmark_memory_bandwidth(int64_t bytes, double seconds, double *gb_per_s);

/* Rate of this backend's own matrix multiply on one square problem, GFLOP/s (2 n^3 flops per
 * call): ambient_gemm with m = n = k = `n` (in [64, 16384]) on fresh non-zero operands,
 * repeated for about `seconds`, in the precision matrix products use: float32 on the CPU; on
 * CUDA the one AMBIENT_CUDA_MATMUL chose (bf16 tensor cores by default, so this is the
 * tensor-core ceiling that convolutions are measured against), timed with CUDA events. */
int ambient_benchmark_matmul_peak(int64_t n, double seconds, double *gflops);

/* ---- Timing ------------------------------------------------------------------------------- */

/* The time of the work this library runs on the calling thread's selected device between
 * ambient_timer_start and ambient_timer_elapsed. On CUDA two events recorded on the library's
 * stream (ambient_timer_elapsed waits for the second): the device's time for the work queued in
 * between, the launch latency hidden when it is queued back to back. On the CPU, whose calls
 * return when their work is done, the wall-clock time between the two calls. A start stays in
 * force until the next one; elapsed without a start on this thread and device is an error. */
int ambient_timer_start(void);
int ambient_timer_elapsed(double *milliseconds);

/* ---- GEMM ---------------------------------------------------------------------------- */

/* Batched row-major matrix multiply, for b in [0, batch):
 *   C_b = alpha * op(A_b) * op(B_b) + beta * C_b
 * op(A_b) is m x k: A_b is m x k with row stride lda >= k, or k x m (lda >= m) when
 * transpose_a != 0. op(B_b) is k x n: B_b is k x n (ldb >= n), or n x k (ldb >= k) when
 * transposed. C_b is m x n (ldc >= n). X_b starts at x + b * stride_x.
 * When beta == 0, C is not read (so it may hold NaN). C must not overlap A or B, and with
 * batch > 1 the C matrices must not overlap each other (stride_c >= (m - 1) * ldc + n);
 * A and B may be shared across the batch (stride 0). */
int ambient_gemm(int32_t transpose_a, int32_t transpose_b,
                 int64_t batch, int64_t m, int64_t n, int64_t k,
                 float alpha,
                 const float *a, int64_t lda, int64_t stride_a,
                 const float *b, int64_t ldb, int64_t stride_b,
                 float beta,
                 float *c, int64_t ldc, int64_t stride_c);

/* ---- Magnitude-preserving elementwise ops (EDM2) ------------------------------------------ */

/* y = silu(x) / 0.596, over count elements. y may equal x. */
int ambient_mp_silu_forward(int64_t count, const float *x, float *y);

/* dx = dy * silu'(x) / 0.596. dx may equal dy. */
int ambient_mp_silu_backward(int64_t count, const float *x, const float *dy, float *dx);

/* y = ((1 - t) * a + t * b) / sqrt((1 - t)^2 + t^2). y may equal a or b. */
int ambient_mp_sum_forward(int64_t count, const float *a, const float *b, float t, float *y);

/* da = dy * (1 - t) / s, db = dy * t / s with s = sqrt((1 - t)^2 + t^2). Either output may
 * equal dy; da and db must differ. */
int ambient_mp_sum_backward(int64_t count, const float *dy, float t, float *da, float *db);

/* ---- Pixel normalisation (EDM2 normalize over channels) ----------------------------------- */

/* For each of `rows` rows of `channels` values: y = x / (eps + |x| / sqrt(channels)).
 * y may equal x. */
int ambient_pixel_norm_forward(int64_t rows, int64_t channels, float eps,
                               const float *x, float *y);

/* Gradient of the above with respect to x, given dy. dx must not overlap x or dy. */
int ambient_pixel_norm_backward(int64_t rows, int64_t channels, float eps,
                                const float *x, const float *dy, float *dx);

/* ---- Convolution (NHWC, stride 1, "same" zero padding) -------------------------------------- */

/* x: n x h x w x c_in, weight: c_out x kernel x kernel x c_in (OHWI), y: n x h x w x c_out,
 * kernel 1 or 3 (padding kernel / 2).  y = conv(x, weight) + beta * y; with beta == 0, y is
 * not read. y must not overlap x or weight. */
int ambient_conv2d_forward(int64_t n, int64_t h, int64_t w, int64_t c_in, int64_t c_out,
                           int64_t kernel, const float *x, const float *weight, float beta,
                           float *y);

/* Gradient of the input: dx = conv2d_forward's adjoint applied to dy, + beta * dx. dx must not
 * overlap dy or weight. */
int ambient_conv2d_backward_input(int64_t n, int64_t h, int64_t w, int64_t c_in, int64_t c_out,
                                  int64_t kernel, const float *dy, const float *weight,
                                  float beta, float *dx);

/* Gradient of the weight: dweight = sum over n, h, w of dy x patches(x), + beta * dweight
 * (beta = 1 accumulates over micro-batches). dweight must not overlap x or dy. Scalars (beta,
 * gain, eps) of every function here must be finite. */
int ambient_conv2d_backward_weight(int64_t n, int64_t h, int64_t w, int64_t c_in, int64_t c_out,
                                   int64_t kernel, const float *x, const float *dy, float beta,
                                   float *dweight);

/* ---- Forced weight normalisation (EDM2 MPConv) ---------------------------------------------- */

/* Each of `filters` rows of fan_in weights: w_hat = gain * w / ((eps + |w| / sqrt(fan_in)) *
 * sqrt(fan_in)), so that |w_hat| ~ gain. w_hat may equal w. */
int ambient_weight_norm_forward(int64_t filters, int64_t fan_in, float eps, float gain,
                                const float *w, float *w_hat);

/* Gradient with respect to w (and, when dgain is not NULL, the gain: *dgain = sum of dw_hat
 * times w_hat / gain, computed without dividing by gain) given dw_hat. dw must not overlap w or
 * dw_hat. dgain is a device pointer to one float, overwritten, overlapping none of the others. */
int ambient_weight_norm_backward(int64_t filters, int64_t fan_in, float eps, float gain,
                                 const float *w, const float *dw_hat, float *dw, float *dgain);

/* The forced step of training: w = w / (eps + |w| / sqrt(fan_in)) per row, in place. */
int ambient_weight_norm_force(int64_t filters, int64_t fan_in, float eps, float *w);

/* ---- Attention (EDM2 cosine attention) ------------------------------------------------------- */

/* qkv: n x length x heads x 3 x head_dim (each token's q, k and v of every head, already
 * pixel-normalised); out: n x length x heads x head_dim;
 *   out = softmax(q k^T / sqrt(head_dim)) v   for each sample and head,
 * computed in tiles of keys with an online softmax (memory O(length x tile) per head).
 * lse (n x heads x length), when not NULL, receives each query row's log-sum-exp of the scaled
 * logits for the backward pass. out and lse must not overlap qkv or each other; head_dim must
 * be positive whenever there is work. */
int ambient_attention_forward(int64_t n, int64_t length, int64_t heads, int64_t head_dim,
                              const float *qkv, float *out, float *lse);

/* Gradient with respect to qkv (same layout) given out, lse from the forward pass and dout.
 * dqkv is overwritten and must not overlap the inputs. */
int ambient_attention_backward(int64_t n, int64_t length, int64_t heads, int64_t head_dim,
                               const float *qkv, const float *out, const float *lse,
                               const float *dout, float *dqkv);

/* ---- More magnitude-preserving layers --------------------------------------------------------- */

/* mp_cat along channels: rows of ca channels of a and cb of b become rows of ca + cb:
 *   y = [wa * a, wb * b],  wa = s (1 - t) / sqrt(ca),  wb = s t / sqrt(cb),
 *   s = sqrt((ca + cb) / ((1 - t)^2 + t^2)).  ca, cb > 0; y must not overlap a or b. */
int ambient_mp_cat_forward(int64_t rows, int64_t ca, int64_t cb, float t, const float *a,
                           const float *b, float *y);
int ambient_mp_cat_backward(int64_t rows, int64_t ca, int64_t cb, float t, const float *dy,
                            float *da, float *db);

/* 2x2 average pooling, x: n x h x w x c (h, w even) -> y: n x h/2 x w/2 x c. */
int ambient_avg_pool2x2_forward(int64_t n, int64_t h, int64_t w, int64_t c, const float *x,
                                float *y);
/* dx (n x h x w x c) from dy (n x h/2 x w/2 x c). */
int ambient_avg_pool2x2_backward(int64_t n, int64_t h, int64_t w, int64_t c, const float *dy,
                                 float *dx);

/* Nearest 2x upsampling, x: n x h x w x c -> y: n x 2h x 2w x c. */
int ambient_upsample2x_forward(int64_t n, int64_t h, int64_t w, int64_t c, const float *x,
                               float *y);
/* dx (n x h x w x c) from dy (n x 2h x 2w x c): the sum over each 2x2 block. */
int ambient_upsample2x_backward(int64_t n, int64_t h, int64_t w, int64_t c, const float *dy,
                                float *dx);

/* MP Fourier features of one scalar per sample: y[i, k] = sqrt(2) cos(x[i] freqs[k] + phases[k]),
 * x: n, freqs and phases: channels, y: n x channels. */
int ambient_mp_fourier_forward(int64_t n, int64_t channels, const float *x, const float *freqs,
                               const float *phases, float *y);
/* dx[i] = sum over k of dy[i, k] * d y[i, k] / d x[i]; overwritten. */
int ambient_mp_fourier_backward(int64_t n, int64_t channels, const float *x, const float *freqs,
                                const float *phases, const float *dy, float *dx);

/* EDM2's embedding modulation: y[i, p, c] = x[i, p, c] * (1 + s[i, c]) over n samples of
 * `positions` pixels of `channels`. y may equal x. */
int ambient_channel_scale_forward(int64_t n, int64_t positions, int64_t channels, const float *x,
                                  const float *s, float *y);
/* dx = dy * (1 + s); ds[i, c] = sum over p of dy * x (overwritten). dx may equal dy. */
int ambient_channel_scale_backward(int64_t n, int64_t positions, int64_t channels,
                                   const float *x, const float *s, const float *dy, float *dx,
                                   float *ds);

/* The block's modulated activation in one pass: y = mp_silu(x * (1 + s)), same layout, y may
 * equal x. Its gradient, with u = x * (1 + s) and g = dy * mp_silu'(u): dx = g * (1 + s),
 * ds[i, c] = sum over p of g * x (overwritten); dx may equal dy. The backward pass needs x
 * and s only: u is recomputed, never stored. */
int ambient_channel_scale_silu_forward(int64_t n, int64_t positions, int64_t channels,
                                       const float *x, const float *s, float *y);
int ambient_channel_scale_silu_backward(int64_t n, int64_t positions, int64_t channels,
                                        const float *x, const float *s, const float *dy, float *dx,
                                        float *ds);

/* Activation clipping: y = min(max(x, -limit), limit); dx = dy where -limit < x < limit, else 0.
 * limit >= 0; NaN passes through. Outputs may be their inputs exactly (in place). */
int ambient_clip_forward(int64_t count, float limit, const float *x, float *y);
int ambient_clip_backward(int64_t count, float limit, const float *x, const float *dy, float *dx);

/* ---- Per-sample scaling ------------------------------------------------------------------------ */

/* For n samples of `size` elements: out[i, e] = alpha[i] * x[i, e] + beta[i] * y[i, e], or
 * out = alpha[i] * x when beta and y are both NULL (then y is never read). alpha and beta are
 * device arrays of n floats, not checked for finiteness (a NaN propagates). beta and y are NULL
 * together or given together; when given, y is always read, even where beta[i] == 0 (so a NaN
 * in y gives NaN, unlike the beta of gemm or conv2d). out may be exactly x or exactly y (in
 * place, e.g. accumulation y += x with alpha = beta = 1, out = y), but must not partly overlap
 * either of them nor overlap alpha or beta; the CPU backend refuses such overlaps, other
 * backends may not detect them. */
int ambient_sample_axpby(int64_t n, int64_t size, const float *alpha, const float *x,
                         const float *beta, const float *y, float *out);

/* ---- Random numbers (Philox 4x32-10, identical on every backend) ------------------------------- */

/* Element e of stream `stream` under `seed` is a function of (seed, stream, offset + e) alone,
 * so that any split of the work gives the same numbers, and any backend the same numbers: the
 * same bits for uniforms (native/cpu/philox.h), normals equal to about 1e-6 (1 + |z|) since each
 * backend evaluates Box-Muller's log and sincos its own way.
 * seed and stream are read as raw 64-bit patterns; offset >= 0. */
int ambient_random_normal(int64_t count, int64_t seed, int64_t stream, int64_t offset, float *y);
int ambient_random_uniform(int64_t count, int64_t seed, int64_t stream, int64_t offset, float *y);

/* Inverted dropout: element e is kept when its uniform (seed, stream, offset + e) >= probability,
 * and scaled by 1 / (1 - probability), 0 <= probability < 1. y may equal x, dx may equal dy;
 * backward regenerates the same mask. */
int ambient_dropout_forward(int64_t count, float probability, int64_t seed, int64_t stream,
                            int64_t offset, const float *x, float *y);
int ambient_dropout_backward(int64_t count, float probability, int64_t seed, int64_t stream,
                             int64_t offset, const float *dy, float *dx);

/* ---- The Ambient training pair and loss --------------------------------------------------------- */

/* For each of n samples of `size` elements:
 *   x_tn = x + sigma_tn[i] * z_i            z_i: normals of stream host_sample_ids[i] under
 *                                           fixed_seed, the sample's fixed noise realisation
 *   x_t  = x_tn + sqrt(sigma_t[i]^2 - sigma_tn[i]^2) * eps_i
 *                                           eps_i: normals of stream i under step_seed
 * sigma_t, sigma_tn: n device floats with 0 <= sigma_tn <= sigma_t (checked); host_sample_ids:
 * n host int64. Outputs must not overlap the inputs or each other. */
int ambient_ambient_noising(int64_t n, int64_t size, const float *x, const float *sigma_t,
                            const float *sigma_tn, const int64_t *host_sample_ids,
                            int64_t fixed_seed, int64_t step_seed, float *x_tn, float *x_t);

/* The fused, masked, per-sigma Ambient loss and its gradients, for n samples of `size`
 * elements (`channels` per pixel). With r = sigma_tn^2 / sigma_t^2,
 * w = (sigma_t^2 + sigma_data^2) / (sigma_t sigma_data)^2 and m the mask of each pixel:
 *   x_tn_pred = r x_t + (1 - r) x0_pred
 *   L_i = w / (1 - r)^2 * sum_e m_e (x_tn_pred - x_tn)^2          (sigma_tn = 0, m = 1: EDM)
 *   with logvar u:  L_i = L_i / exp(u_i) + u_i * sum_e m_e        (EDM2's uncertainty)
 * loss[i] = L_i; grad_x0 = scale * dL_i / dx0_pred; grad_logvar[i] = scale * dL_i / du_i.
 * logvar and grad_logvar are NULL together (no uncertainty); mask (n x size / channels) may be
 * NULL (all ones); grad_x0 may be NULL (loss only). sigma_tn < sigma_t is required. loss[i] is
 * not multiplied by scale. A non-finite logvar is not refused: it propagates (to nan_guard). */
int ambient_ambient_loss(int64_t n, int64_t size, int64_t channels, float sigma_data,
                         const float *x0_pred, const float *x_t, const float *x_tn,
                         const float *sigma_t, const float *sigma_tn, const float *logvar,
                         const float *mask, float scale, float *loss, float *grad_x0,
                         float *grad_logvar);

/* ---- Optimizer and bookkeeping (one pass over memory each) -------------------------------------- */

/* *result = sum of x^2 (accumulated in double), or *result += that when accumulate != 0.
 * result: a device pointer to one float. */
int ambient_sum_squares(int64_t count, const float *x, int32_t accumulate, float *result);

/* Replaces every NaN or infinite element of x by 0 and writes how many there were to
 * *host_bad_count (a host pointer). */
int ambient_nan_guard(int64_t count, float *x, int64_t *host_bad_count);

/* Adam with bias correction, step >= 1:
 *   g = grad * c,  c = min(1, max_norm / sqrt(*grad_sum_squares)) when grad_sum_squares is not
 *   NULL (clipping by global norm; the norm pass is ambient_sum_squares), else 1
 *   m = beta1 m + (1 - beta1) g,  v = beta2 v + (1 - beta2) g^2
 *   param -= lr * (m / (1 - beta1^step)) / (sqrt(v / (1 - beta2^step)) + eps)
 * The norm is not read back to the host: a NaN norm propagates, an infinite one gives c = 0. */
int ambient_adam_step(int64_t count, float lr, float beta1, float beta2, float eps, int64_t step,
                      const float *grad_sum_squares, float max_norm, float *param,
                      const float *grad, float *m, float *v);

/* ema = ema + (1 - beta) * (param - ema): EDM's and EDM2's EMA with the step's beta. */
int ambient_ema_update(int64_t count, float beta, const float *param, float *ema);

#ifdef __cplusplus
}
#endif

#endif /* AMBIENT_H */
