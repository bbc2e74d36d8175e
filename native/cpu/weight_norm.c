/*
 * Weight normalisation of EDM2's MPConv, per output filter (a row of F = fan_in weights):
 *   d = eps + |w| / sqrt(F)
 *   forward:  w_hat = s * w / d,     s = gain / sqrt(F)         (so |w_hat| ~ gain)
 *   force:    w     = w / d          (training step (1), in place: the raw weights keep
 *                                     unit RMS, so their norm never grows)
 *   backward: with g = <dw_hat, w> and |w| = r sqrt(F),
 *             dw    = s * (dw_hat / d - w * g / (d^2 * sqrt(F) * |w|))   (0 where |w| = 0)
 *             dgain = sum over rows of g / (d * sqrt(F))   (= <dw_hat, w_hat> / gain, without
 *                                     dividing by gain, so gain = 0 is fine)
 * Norms and dot products accumulate in double. The weights of one layer are small (at most a
 * few million values): one pass over them, rows split over threads when there are enough.
 */
#include "internal.h"

#include <math.h>

/* Below this many weights one thread does it all. */
#define PARALLEL_THRESHOLD 65536
#define SIMD_CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))

SIMD_CLONES
static void forward_rows(int64_t begin, int64_t end, int64_t fan_in, double eps, double gain,
                         const float *w, float *w_hat) {
    double root = sqrt((double)fan_in);
    for (int64_t row = begin; row < end; row++) {
        const float *wr = w + row * fan_in;
        float *out = w_hat + row * fan_in;
        double sum = 0;
#pragma omp simd reduction(+ : sum)
        for (int64_t i = 0; i < fan_in; i++) sum += (double)wr[i] * wr[i];
        float scale = (float)(gain / ((eps + sqrt(sum) / root) * root));
#pragma omp simd
        for (int64_t i = 0; i < fan_in; i++) out[i] = wr[i] * scale;
    }
}

/* Returns this range's contribution to dgain. */
SIMD_CLONES
static double backward_rows(int64_t begin, int64_t end, int64_t fan_in, double eps, double gain,
                            const float *w, const float *dw_hat, float *dw) {
    double root = sqrt((double)fan_in), dgain = 0;
    for (int64_t row = begin; row < end; row++) {
        const float *wr = w + row * fan_in, *gr = dw_hat + row * fan_in;
        float *out = dw + row * fan_in;
        double sum = 0, dot = 0;
#pragma omp simd reduction(+ : sum, dot)
        for (int64_t i = 0; i < fan_in; i++) {
            sum += (double)wr[i] * wr[i];
            dot += (double)gr[i] * wr[i];
        }
        double norm = sqrt(sum), d = eps + norm / root, s = gain / root;
        float a = (float)(s / d);
        float b = norm > 0 ? (float)(s * dot / (d * d * root * norm)) : 0.0f;
#pragma omp simd
        for (int64_t i = 0; i < fan_in; i++) out[i] = gr[i] * a - wr[i] * b;
        dgain += dot / (d * root);
    }
    return dgain;
}

SIMD_CLONES
static void force_rows(int64_t begin, int64_t end, int64_t fan_in, double eps, float *w) {
    double root = sqrt((double)fan_in);
    for (int64_t row = begin; row < end; row++) {
        float *wr = w + row * fan_in;
        double sum = 0;
#pragma omp simd reduction(+ : sum)
        for (int64_t i = 0; i < fan_in; i++) sum += (double)wr[i] * wr[i];
        float scale = (float)(1.0 / (eps + sqrt(sum) / root));
#pragma omp simd
        for (int64_t i = 0; i < fan_in; i++) wr[i] *= scale;
    }
}

static int check_shape(const char *function, int64_t filters, int64_t fan_in, float eps) {
    AMBIENT_REQUIRE(filters >= 0, "%s: filters = %lld is negative", function, (long long)filters);
    AMBIENT_REQUIRE(fan_in >= 0, "%s: fan_in = %lld is negative", function, (long long)fan_in);
    AMBIENT_REQUIRE(fan_in == 0 || filters <= AMBIENT_MAX_COUNT / fan_in,
                    "%s: filters * fan_in = %lld * %lld is too large", function, (long long)filters,
                    (long long)fan_in);
    AMBIENT_REQUIRE(isfinite(eps) && eps > 0, "%s: eps = %g must be positive and finite", function, eps);
    return AMBIENT_STATUS_OK;
}

int ambient_weight_norm_forward(int64_t filters, int64_t fan_in, float eps, float gain, const float *w,
                                float *w_hat) {
    ambient_clear_error();
    int status = check_shape(__func__, filters, fan_in, eps);
    if (status) return status;
    AMBIENT_REQUIRE(isfinite(gain), "%s: gain = %g is not finite", __func__, gain);
    int64_t count = filters * fan_in;
    if (count == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(w);
    AMBIENT_REQUIRE_POINTER(w_hat);
    int64_t bytes = count * (int64_t)sizeof(float);
    AMBIENT_REQUIRE(w_hat == w || !ambient_overlaps(w_hat, bytes, w, bytes),
                    "%s: w_hat = %p partly overlaps w = %p (it may equal it)", __func__, (void *)w_hat,
                    (const void *)w);
    AMBIENT_PARALLEL_CHUNKS(filters, PARALLEL_THRESHOLD / fan_in + 1,
                            forward_rows(begin, end, fan_in, eps, gain, w, w_hat));
    return AMBIENT_STATUS_OK;
}

int ambient_weight_norm_backward(int64_t filters, int64_t fan_in, float eps, float gain, const float *w,
                                 const float *dw_hat, float *dw, float *dgain) {
    ambient_clear_error();
    int status = check_shape(__func__, filters, fan_in, eps);
    if (status) return status;
    AMBIENT_REQUIRE(isfinite(gain), "%s: gain = %g is not finite", __func__, gain);
    int64_t count = filters * fan_in, bytes = count * (int64_t)sizeof(float);
    if (count > 0) {
        AMBIENT_REQUIRE_POINTER(w);
        AMBIENT_REQUIRE_POINTER(dw_hat);
        AMBIENT_REQUIRE_POINTER(dw);
        AMBIENT_REQUIRE(!ambient_overlaps(dw, bytes, w, bytes), "%s: dw = %p overlaps w = %p", __func__,
                        (void *)dw, (const void *)w);
        AMBIENT_REQUIRE(!ambient_overlaps(dw, bytes, dw_hat, bytes), "%s: dw = %p overlaps dw_hat = %p",
                        __func__, (void *)dw, (const void *)dw_hat);
    }
    if (dgain != NULL && count > 0) {
        int64_t f = (int64_t)sizeof(float);
        AMBIENT_REQUIRE(!ambient_overlaps(dgain, f, dw, bytes) && !ambient_overlaps(dgain, f, w, bytes) &&
                            !ambient_overlaps(dgain, f, dw_hat, bytes),
                        "%s: dgain = %p overlaps w, dw_hat or dw", __func__, (void *)dgain);
    }
    double total = 0;
    if (count > 0) {
        int64_t threshold = PARALLEL_THRESHOLD / fan_in + 1;
        int threads = filters >= threshold ? ambient_cpu_threads() : 1;
#pragma omp parallel num_threads(threads) if (threads > 1) reduction(+ : total)
        {
            int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
            total += backward_rows(filters * t / nt, filters * (t + 1) / nt, fan_in, eps, gain, w, dw_hat, dw);
        }
    }
    if (dgain != NULL) *dgain = (float)total;
    return AMBIENT_STATUS_OK;
}

int ambient_weight_norm_force(int64_t filters, int64_t fan_in, float eps, float *w) {
    ambient_clear_error();
    int status = check_shape(__func__, filters, fan_in, eps);
    if (status) return status;
    if (filters * fan_in == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(w);
    AMBIENT_PARALLEL_CHUNKS(filters, PARALLEL_THRESHOLD / fan_in + 1, force_rows(begin, end, fan_in, eps, w));
    return AMBIENT_STATUS_OK;
}
