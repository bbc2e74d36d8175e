/*
 * The Ambient training pair and loss (Ambient Diffusion Omni, spec §1.11-1.12 and §2.6).
 *
 * Noising, for each of n samples of `size` elements (any layout, here NHWC):
 *   x_tn = x + sigma_tn z      z: Philox normals of stream sample_id under fixed_seed
 *   x_t  = x_tn + sqrt(sigma_t^2 - sigma_tn^2) eps     eps: stream i (batch slot) under step_seed
 * Element e of a stream is lane e % 4 of Philox group e / 4 (native/cpu/philox.h), so the
 * numbers do not depend on how the work is split. Philox 4x32-10 plus Box-Muller is the cost
 * here, not memory (two normals per element): the normals come in L1-sized blocks from
 * philox_block.h (vectorised Philox rounds, Box-Muller with fast_math.h's log and sincos) and
 * are applied in one pass. A sample with sigma_tn = 0 draws no z, and sigma_tn = sigma_t draws
 * no eps.
 *
 * Loss, with r = sigma_tn^2 / sigma_t^2, w = (sigma_t^2 + sigma_data^2) / (sigma_t sigma_data)^2
 * and m the mask of each pixel (1 when absent):
 *   res  = x_tn_pred - x_tn = (x_t - x_tn) + (1 - r)(x0_pred - x_t)   (the same value as
 *          r x_t + (1 - r) x0_pred - x_tn, written so that it does not cancel when r -> 1)
 *   S_i  = sum_e m_e res_e^2  (double),   L_i = w / (1 - r)^2 S_i
 *   with logvar u:  L_i <- L_i / e^u + u sum_e m_e
 *   grad_x0 = scale * 2 w / (1 - r) * m * res / e^u,   grad_logvar = scale * (-L_i / e^u + sum m)
 * One pass over x0_pred, x_t, x_tn (read) and grad_x0 (written). Work items are fixed chunks of
 * a sample's pixels, whatever the thread count; each chunk's double sums go to its own slot
 * and the slots of a sample are added in order, so results are bit-identical for any number
 * of threads.
 *
 * Shapes: x, x_tn, x_t, x0_pred, grad_x0: n x size; mask: n x size / channels;
 * sigma_t, sigma_tn, logvar, loss, grad_logvar: n. Benchmark: TrainingKernelsBenchmark
 * (op ambient_loss, ambient_noising).
 */
#include "internal.h"
#include "philox_block.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SIMD_CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))

/* Noising: elements of one work item (a multiple of BLOCK) and of one generator block. */
#define NOISE_CHUNK 4096
#define NOISE_BLOCK 1024
/* Loss: elements of one work item (rounded to whole pixels) and of the expanded-mask buffer. */
#define LOSS_CHUNK 4096
#define MASK_BLOCK 1024
/* Per-pixel calls instead of an expanded mask from this many channels on. */
#define WIDE_CHANNELS 64
/* Partial-sum slots kept on the stack; more work items than this allocate. */
#define STACK_SLOTS 1024

/* ---- Noising: one sample's range --------------------------------------------------------- */

/* Elements b .. b + len - 1 of a normal stream (b a multiple of 4, len <= NOISE_BLOCK). */
static void normals(uint64_t seed, uint64_t stream, int64_t b, int64_t len, float *out) {
    ambient_philox_normal_block(seed, stream, (uint64_t)b / 4, (len + 3) / 4, out);
}

/* Elements [begin, end) of sample i (begin a multiple of NOISE_BLOCK). */
SIMD_CLONES
static void noising_range(int64_t begin, int64_t end, const float *x, float sigma_tn, float s,
                          uint64_t fixed_seed, uint64_t z_stream, uint64_t step_seed, uint64_t eps_stream,
                          float *x_tn, float *x_t) {
    float z[NOISE_BLOCK] __attribute__((aligned(64)));
    float eps[NOISE_BLOCK] __attribute__((aligned(64)));
    for (int64_t b = begin; b < end; b += NOISE_BLOCK) {
        int64_t len = end - b < NOISE_BLOCK ? end - b : NOISE_BLOCK;
        const float *xb = x + b;
        float *tn = x_tn + b, *t = x_t + b;
        /* sigma = 0 adds exactly 0 * z: skip drawing z (clean samples are common) */
        if (sigma_tn != 0.0f) normals(fixed_seed, z_stream, b, len, z);
        if (s != 0.0f) normals(step_seed, eps_stream, b, len, eps);
        if (sigma_tn != 0.0f && s != 0.0f) {
#pragma omp simd
            for (int64_t k = 0; k < len; k++) {
                float v = xb[k] + sigma_tn * z[k];
                tn[k] = v;
                t[k] = v + s * eps[k];
            }
        } else if (sigma_tn != 0.0f) {
#pragma omp simd
            for (int64_t k = 0; k < len; k++) {
                float v = xb[k] + sigma_tn * z[k];
                tn[k] = v;
                t[k] = v;
            }
        } else if (s != 0.0f) {
#pragma omp simd
            for (int64_t k = 0; k < len; k++) {
                tn[k] = xb[k];
                t[k] = xb[k] + s * eps[k];
            }
        } else {
            memcpy(tn, xb, (size_t)len * sizeof(float));
            memcpy(t, xb, (size_t)len * sizeof(float));
        }
    }
}

/* ---- Argument checks -------------------------------------------------------------------- */

/* An n x size problem fits AMBIENT_MAX_COUNT. */
static int check_sizes(const char *function, int64_t n, int64_t size) {
    AMBIENT_REQUIRE(n >= 0 && size >= 0, "%s: n = %lld and size = %lld must be non-negative", function,
                    (long long)n, (long long)size);
    AMBIENT_REQUIRE(size == 0 || n <= AMBIENT_MAX_COUNT / size, "%s: n * size = %lld * %lld is too large",
                    function, (long long)n, (long long)size);
    return AMBIENT_STATUS_OK;
}

/* Per-sample noise levels: finite, sigma_t > 0, 0 <= sigma_tn, and sigma_tn < sigma_t (strict)
 * or <= sigma_t. */
static int check_sigmas(const char *function, int64_t n, const float *sigma_t, const float *sigma_tn,
                        int strict) {
    for (int64_t i = 0; i < n; i++) {
        float t = sigma_t[i], tn = sigma_tn[i];
        AMBIENT_REQUIRE(isfinite(t) && t > 0, "%s: sample %lld has sigma_t = %g; it must be positive and finite",
                        function, (long long)i, t);
        AMBIENT_REQUIRE(isfinite(tn) && tn >= 0,
                        "%s: sample %lld has sigma_tn = %g; it must be non-negative and finite", function,
                        (long long)i, tn);
        if (strict)
            AMBIENT_REQUIRE(tn < t, "%s: sample %lld has sigma_tn = %.7g >= sigma_t = %.7g (sigma_tn < sigma_t is required)",
                            function, (long long)i, tn, t);
        else
            AMBIENT_REQUIRE(tn <= t, "%s: sample %lld has sigma_tn = %.7g > sigma_t = %.7g (sigma_tn <= sigma_t is required)",
                            function, (long long)i, tn, t);
    }
    return AMBIENT_STATUS_OK;
}

typedef struct {
    const char *name;
    const void *p;
    int64_t bytes;
} span;

/* Fails when an output span overlaps any other span (outputs first, `outputs` of them). */
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

/* ---- Noising ---------------------------------------------------------------------------- */

int ambient_ambient_noising(int64_t n, int64_t size, const float *x, const float *sigma_t,
                            const float *sigma_tn, const int64_t *host_sample_ids, int64_t fixed_seed,
                            int64_t step_seed, float *x_tn, float *x_t) {
    ambient_clear_error();
    int status = check_sizes(__func__, n, size);
    if (status) return status;
    if (n == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(sigma_t);
    AMBIENT_REQUIRE_POINTER(sigma_tn);
    AMBIENT_REQUIRE_POINTER(host_sample_ids);
    status = check_sigmas(__func__, n, sigma_t, sigma_tn, 0);
    if (status) return status;
    if (size == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(x);
    AMBIENT_REQUIRE_POINTER(x_tn);
    AMBIENT_REQUIRE_POINTER(x_t);
    int64_t bytes = n * size * (int64_t)sizeof(float), scalars = n * (int64_t)sizeof(float);
    span spans[] = {{"x_tn", x_tn, bytes}, {"x_t", x_t, bytes}, {"x", x, bytes},
                    {"sigma_t", sigma_t, scalars}, {"sigma_tn", sigma_tn, scalars},
                    {"host_sample_ids", host_sample_ids, n * (int64_t)sizeof(int64_t)}};
    status = check_no_overlap(__func__, spans, 6, 2);
    if (status) return status;

    int64_t chunks = (size + NOISE_CHUNK - 1) / NOISE_CHUNK, items = n * chunks;
    int threads = ambient_cpu_threads();
#pragma omp parallel for schedule(static) num_threads(threads) if(threads > 1 && n * size >= 16384)
    for (int64_t item = 0; item < items; item++) {
        int64_t i = item / chunks, begin = (item % chunks) * NOISE_CHUNK;
        int64_t end = begin + NOISE_CHUNK < size ? begin + NOISE_CHUNK : size;
        double t = sigma_t[i], tn = sigma_tn[i];
        float s = (float)sqrt((t - tn) * (t + tn));
        noising_range(begin, end, x + i * size, sigma_tn[i], s, (uint64_t)fixed_seed,
                      (uint64_t)host_sample_ids[i], (uint64_t)step_seed, (uint64_t)i, x_tn + i * size,
                      x_t + i * size);
    }
    return AMBIENT_STATUS_OK;
}

/* ---- Loss ------------------------------------------------------------------------------- */

/* Over `count` elements: res = (x_t - x_tn) + omr (x0 - x_t); returns sum of m res^2 in
 * double (m = 1 when mask is NULL) and writes grad = gcoef m res when grad is not NULL.
 * Sixteen double accumulators in fixed order keep the vector FMA chains short and the sum
 * independent of anything but count. */
SIMD_CLONES
static double loss_range(int64_t count, const float *x0, const float *xt, const float *xtn, const float *mask,
                         float omr, float gcoef, float *grad) {
    double acc[16] = {0};
    int64_t k = 0;
    if (mask && grad) {
        for (; k + 16 <= count; k += 16)
#pragma omp simd
            for (int j = 0; j < 16; j++) {
                float res = (xt[k + j] - xtn[k + j]) + omr * (x0[k + j] - xt[k + j]);
                float mres = mask[k + j] * res;
                grad[k + j] = gcoef * mres;
                acc[j] += (double)mres * res;
            }
    } else if (mask) {
        for (; k + 16 <= count; k += 16)
#pragma omp simd
            for (int j = 0; j < 16; j++) {
                float res = (xt[k + j] - xtn[k + j]) + omr * (x0[k + j] - xt[k + j]);
                acc[j] += (double)(mask[k + j] * res) * res;
            }
    } else if (grad) {
        for (; k + 16 <= count; k += 16)
#pragma omp simd
            for (int j = 0; j < 16; j++) {
                float res = (xt[k + j] - xtn[k + j]) + omr * (x0[k + j] - xt[k + j]);
                grad[k + j] = gcoef * res;
                acc[j] += (double)res * res;
            }
    } else {
        for (; k + 16 <= count; k += 16)
#pragma omp simd
            for (int j = 0; j < 16; j++) {
                float res = (xt[k + j] - xtn[k + j]) + omr * (x0[k + j] - xt[k + j]);
                acc[j] += (double)res * res;
            }
    }
    for (int j = 0; k < count; k++, j++) {
        float res = (xt[k] - xtn[k]) + omr * (x0[k] - xt[k]);
        float mres = mask ? mask[k] * res : res;
        if (grad) grad[k] = gcoef * mres;
        acc[j] += (double)mres * res;
    }
    double sum = 0;
    for (int j = 0; j < 16; j++) sum += acc[j];
    return sum;
}

/* out[p * channels + c] = mask[p] for `pixels` pixels; constant channel counts vectorise. */
SIMD_CLONES
static void expand_mask(int64_t pixels, int64_t channels, const float *mask, float *out) {
    switch (channels) {
    case 1:
        memcpy(out, mask, (size_t)pixels * sizeof(float));
        break;
    case 3:
        for (int64_t p = 0; p < pixels; p++) out[3 * p] = out[3 * p + 1] = out[3 * p + 2] = mask[p];
        break;
    case 4:
        for (int64_t p = 0; p < pixels; p++)
            out[4 * p] = out[4 * p + 1] = out[4 * p + 2] = out[4 * p + 3] = mask[p];
        break;
    default:
        for (int64_t p = 0; p < pixels; p++)
            for (int64_t c = 0; c < channels; c++) out[p * channels + c] = mask[p];
    }
}

/* Pixels [p0, p1) of one sample: returns S (and the mask sum over those pixels in *msum). */
static double loss_chunk(int64_t p0, int64_t p1, int64_t channels, const float *x0, const float *xt,
                         const float *xtn, const float *mask, float omr, float gcoef, float *grad,
                         double *msum) {
    int64_t e0 = p0 * channels;
    const float *a = x0 + e0, *b = xt + e0, *c = xtn + e0;
    float *g = grad ? grad + e0 : NULL;
    if (!mask) return loss_range((p1 - p0) * channels, a, b, c, NULL, omr, gcoef, g);
    double sum = 0, ms = 0;
    for (int64_t p = p0; p < p1; p++) ms += mask[p];
    *msum = ms;
    if (channels >= WIDE_CHANNELS) {
        /* a pixel is long enough on its own: its mask value scales the whole pixel */
        for (int64_t p = p0; p < p1; p++) {
            int64_t off = (p - p0) * channels;
            sum += mask[p] * loss_range(channels, a + off, b + off, c + off, NULL, omr, gcoef * mask[p],
                                        g ? g + off : NULL);
        }
        return sum;
    }
    float expanded[MASK_BLOCK] __attribute__((aligned(64)));
    int64_t block_pixels = MASK_BLOCK / channels;
    for (int64_t p = p0; p < p1; p += block_pixels) {
        int64_t q = p + block_pixels < p1 ? p + block_pixels : p1, off = (p - p0) * channels;
        expand_mask(q - p, channels, mask + p, expanded);
        sum += loss_range((q - p) * channels, a + off, b + off, c + off, expanded, omr, gcoef, g ? g + off : NULL);
    }
    return sum;
}

typedef struct {
    double r, omr, w; /* sigma_tn^2 / sigma_t^2, 1 - r, EDM weight */
} loss_weights;

static loss_weights weights_of(double t, double tn, double sigma_data) {
    loss_weights q;
    q.r = tn * tn / (t * t);
    q.omr = (t - tn) * (t + tn) / (t * t);
    q.w = (t * t + sigma_data * sigma_data) / (t * sigma_data * t * sigma_data);
    return q;
}

int ambient_ambient_loss(int64_t n, int64_t size, int64_t channels, float sigma_data, const float *x0_pred,
                         const float *x_t, const float *x_tn, const float *sigma_t, const float *sigma_tn,
                         const float *logvar, const float *mask, float scale, float *loss, float *grad_x0,
                         float *grad_logvar) {
    ambient_clear_error();
    int status = check_sizes(__func__, n, size);
    if (status) return status;
    AMBIENT_REQUIRE(channels > 0, "%s: channels = %lld must be positive", __func__, (long long)channels);
    AMBIENT_REQUIRE(size % channels == 0, "%s: size = %lld is not a multiple of channels = %lld", __func__,
                    (long long)size, (long long)channels);
    AMBIENT_REQUIRE(isfinite(sigma_data) && sigma_data > 0, "%s: sigma_data = %g must be positive and finite",
                    __func__, sigma_data);
    AMBIENT_REQUIRE(isfinite(scale), "%s: scale = %g is not finite", __func__, scale);
    AMBIENT_REQUIRE((logvar == NULL) == (grad_logvar == NULL),
                    "%s: logvar and grad_logvar must be given together (logvar %s, grad_logvar %s)", __func__,
                    logvar ? "given" : "NULL", grad_logvar ? "given" : "NULL");
    if (n == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(sigma_t);
    AMBIENT_REQUIRE_POINTER(sigma_tn);
    AMBIENT_REQUIRE_POINTER(loss);
    status = check_sigmas(__func__, n, sigma_t, sigma_tn, 1);
    if (status) return status;
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

    /* Work items: fixed runs of whole pixels, so the sums do not depend on the thread count. */
    int64_t chunk_pixels = LOSS_CHUNK / channels > 0 ? LOSS_CHUNK / channels : 1;
    int64_t chunks = pixels > 0 ? (pixels + chunk_pixels - 1) / chunk_pixels : 0, items = n * chunks;
    double stack_slots[2 * STACK_SLOTS];
    double *partial = stack_slots;
    if (items > STACK_SLOTS) {
        partial = (double *)malloc((size_t)items * 2 * sizeof(double));
        if (!partial)
            return ambient_fail(AMBIENT_STATUS_OUT_OF_MEMORY, "%s: no memory for %lld partial sums", __func__,
                                (long long)items);
    }
    int threads = ambient_cpu_threads();
#pragma omp parallel for schedule(static) num_threads(threads) if(threads > 1 && n * size >= 16384)
    for (int64_t item = 0; item < items; item++) {
        int64_t i = item / chunks, p0 = (item % chunks) * chunk_pixels;
        int64_t p1 = p0 + chunk_pixels < pixels ? p0 + chunk_pixels : pixels;
        loss_weights q = weights_of(sigma_t[i], sigma_tn[i], sigma_data);
        double inv_var = logvar ? exp(-(double)logvar[i]) : 1.0;
        float gcoef = (float)(scale * 2.0 * q.w / q.omr * inv_var);
        double msum = 0;
        int64_t off = i * size;
        partial[2 * item] = loss_chunk(p0, p1, channels, x0_pred + off, x_t + off, x_tn + off,
                                       mask ? mask + i * pixels : NULL, (float)q.omr, gcoef,
                                       grad_x0 ? grad_x0 + off : NULL, &msum);
        partial[2 * item + 1] = msum;
    }
    for (int64_t i = 0; i < n; i++) {
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
    if (partial != stack_slots) free(partial);
    return AMBIENT_STATUS_OK;
}
