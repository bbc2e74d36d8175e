/*
 * 2-D convolution of EDM2's MPConv layers: NHWC float32, stride 1, square kernel 1 or 3 with
 * "same" zero padding (kernel / 2), weight OHWI (c_out x kernel x kernel x c_in).
 *
 * Every pass is one matrix product over "patches": the patch of pixel p of an NHWC tensor
 * with C channels is the row of T * C values (T = kernel^2 taps, tap-major, zero where a tap
 * falls outside the image), so patches(x) is M x T*C with M = n * h * w:
 *   forward          y[M, c_out]        = patches(x)[M, T c_in] * W^T          (W is c_out x T c_in)
 *   backward_input   dx[M, c_in]        = patches(dy)[M, T c_out] * W'         W'[(t, o), i] = W[o, T-1-t, i]
 *   backward_weight  dW^T[T c_in, c_out] = patches(x)^T[T c_in, M] * dy[M, c_out]
 * (the input gradient convolves dy with the spatially flipped, channel-transposed kernel).
 * Patches are never materialised: the GEMM's packing routines read them straight from the
 * NHWC tensor ("implicit GEMM"), so the only extra traffic is the packed blocks that stay in
 * cache. The register tile, packing transpose and blocking come from the micro-kernel table
 * ambient_gemm uses (kernels.h), so these passes run at its speed on every ISA.
 *
 *   forward, backward_input: the weight operand is packed once per call (it is small) and
 *     shared; threads take blocks of mc output rows, gather each block's patches into an
 *     mr-row buffer and pack them, then multiply against every packed weight sliver.
 *   backward_weight: the reduction runs over M, which is large while the output is small, so
 *     each thread reduces its own range of pixels into its own dW^T, and the end adds the
 *     copies up, transposed, into dW.
 * Short runs are copied with masked AVX-512 moves where the processor has them (see below).
 * 1x1 kernels are plain matrix products and go to ambient_gemm. Every 3x3 pass goes to
 * Winograd F(2x2, 3x3) (cpu/conv2d_winograd.c) where it applies; the implicit GEMM here is the
 * fallback (1-pixel-wide images, few channels for the weight gradient) and what
 * AMBIENT_CONV_ALGO=gemm forces.
 */
#include "internal.h"
#include "kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CONV_X86 1
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 3x3 passes by Winograd F(2x2, 3x3) (cpu/conv2d_winograd.c) where it applies
 * (AMBIENT_CONV_ALGO=gemm forces the implicit GEMM below). */
int ambient_conv2d_winograd_applies(int64_t h, int64_t w);
int ambient_conv2d_winograd(int64_t n, int64_t h, int64_t w, int64_t cin, int64_t cout, const float *src,
                            const float *weight, int flipped, float beta, float *dst, int threads);
/* ... and its weight gradient, where the channel counts make it pay. */
int ambient_conv2d_winograd_weight_applies(int64_t h, int64_t w, int64_t cin, int64_t cout);
int ambient_conv2d_winograd_weight(int64_t n, int64_t h, int64_t w, int64_t cin, int64_t cout, const float *x,
                                   const float *dy, float beta, float *dweight, int threads);

static int64_t min64(int64_t x, int64_t y) { return x < y ? x : y; }
static int64_t ceil_div(int64_t x, int64_t y) { return (x + y - 1) / y; }
static int64_t round_up(int64_t x, int64_t y) { return ceil_div(x, y) * y; }

/* Below this many multiply-adds per thread a thread team costs more than it saves. */
#define WORK_PER_THREAD (INT64_C(1) << 18)

/* ---- Scratch ------------------------------------------------------------------------------- */

/* Scratch is kept between calls (cpu/scratch.c). */
static void *scratch_cache;

/* ---- Patches ------------------------------------------------------------------------------- */

typedef struct {
    const float *src;         /* NHWC tensor the patches are read from */
    int64_t h, w, channels;   /* its image size and channels */
    int kernel, taps, pad;    /* taps = kernel^2, pad = kernel / 2 */
} patch_source;

/* Pointer to the `channels` values that tap t of pixel p reads, or NULL in the padding. */
static inline const float *tap_pointer(const patch_source *ps, int64_t p, int t) {
    int64_t x = p % ps->w, y = (p / ps->w) % ps->h;
    int64_t yy = y + t / ps->kernel - ps->pad, xx = x + t % ps->kernel - ps->pad;
    if (yy < 0 || yy >= ps->h || xx < 0 || xx >= ps->w) return NULL;
    return ps->src + (p + (yy - y) * ps->w + (xx - x)) * ps->channels;
}

/* The packing below copies short runs (a tap's channels, or the part of them in one sliver):
 * left to the compiler those become a memmove call each, which costs more than the copy. On
 * AVX-512 processors (the table dispatch.c chose says so) they are whole and masked vector
 * moves instead; elsewhere plain loops. */
static inline void copy_or_zero_plain(float *restrict dst, const float *restrict src, int64_t count) {
    if (src == NULL)
        for (int64_t i = 0; i < count; i++) dst[i] = 0.0f;
    else
        for (int64_t i = 0; i < count; i++) dst[i] = src[i];
}

#ifdef CONV_X86
#define AVX512_TARGET __attribute__((target("avx512f")))
__attribute__((target("avx512f"))) static inline void copy_or_zero_avx512(float *restrict dst,
                                                                         const float *restrict src,
                                                                         int64_t count) {
    int64_t i = 0;
    if (src == NULL) {
        for (; i + 16 <= count; i += 16) _mm512_storeu_ps(dst + i, _mm512_setzero_ps());
        if (i < count) _mm512_mask_storeu_ps(dst + i, (__mmask16)((1u << (count - i)) - 1), _mm512_setzero_ps());
        return;
    }
    for (; i + 16 <= count; i += 16) _mm512_storeu_ps(dst + i, _mm512_loadu_ps(src + i));
    if (i < count) {
        __mmask16 mask = (__mmask16)((1u << (count - i)) - 1);
        _mm512_mask_storeu_ps(dst + i, mask, _mm512_maskz_loadu_ps(mask, src + i));
    }
}

/* The same for count <= 32 (a sliver's width), without a loop: GCC turns a loop of vector
 * moves back into a memmove call. */
__attribute__((target("avx512f"))) static inline void copy_or_zero_short_avx512(float *restrict dst,
                                                                               const float *restrict src,
                                                                               int64_t count) {
    unsigned bits = count >= 32 ? 0xFFFFFFFFu : (1u << count) - 1;
    __mmask16 lo = (__mmask16)(bits & 0xFFFF), hi = (__mmask16)(bits >> 16);
    __m512 a = src ? _mm512_maskz_loadu_ps(lo, src) : _mm512_setzero_ps();
    _mm512_mask_storeu_ps(dst, lo, a);
    if (hi) {
        __m512 b = src ? _mm512_maskz_loadu_ps(hi, src + 16) : _mm512_setzero_ps();
        _mm512_mask_storeu_ps(dst + 16, hi, b);
    }
}
#else
#define AVX512_TARGET
#define copy_or_zero_avx512 copy_or_zero_plain
#define copy_or_zero_short_avx512 copy_or_zero_plain
#endif

/* Columns [k0, k0 + kc) of the patch rows of pixels [p0, p0 + rows) into dst (row stride kc). */
#define DEFINE_GATHER_PATCH_ROWS(name, attributes, copy)                                               \
    attributes static void name(const patch_source *ps, int64_t p0, int rows, int64_t k0, int64_t kc, \
                                float *restrict dst) {                                                \
        const int64_t c = ps->channels;                                                               \
        for (int r = 0; r < rows; r++) {                                                              \
            float *out = dst + r * kc;                                                                \
            for (int64_t col = k0; col < k0 + kc;) {                                                  \
                int t = (int)(col / c);                                                               \
                int64_t ci = col - t * c, len = min64(c - ci, k0 + kc - col);                         \
                const float *src = tap_pointer(ps, p0 + r, t);                                        \
                copy(out + (col - k0), src ? src + ci : NULL, len);                                   \
                col += len;                                                                           \
            }                                                                                         \
        }                                                                                             \
    }
DEFINE_GATHER_PATCH_ROWS(gather_patch_rows_plain, , copy_or_zero_plain)
DEFINE_GATHER_PATCH_ROWS(gather_patch_rows_avx512, AVX512_TARGET, copy_or_zero_avx512)

static void gather_patch_rows(const ambient_cpu_kernels *kern, const patch_source *ps, int64_t p0, int rows,
                              int64_t k0, int64_t kc, float *restrict dst) {
    if (kern == &ambient_cpu_kernels_avx512) gather_patch_rows_avx512(ps, p0, rows, k0, kc, dst);
    else gather_patch_rows_plain(ps, p0, rows, k0, kc, dst);
}

/* ---- Forward and input gradient: out[M, ncols] = patches[M, K] * B[K, ncols] ------------------ */

/* k steps of (nearly) equal length, a multiple of 16 so that every packed sliver of B starts
 * 64-byte aligned, up to 5/4 of the table's kc (measured: K = 9 x 64 in one step beats two). */
static int64_t even_kc(const ambient_cpu_kernels *kern, int64_t k) {
    int64_t steps = ceil_div(k, kern->kc * 5 / 4);
    return min64(round_up(ceil_div(k, steps), 16), round_up(k, 16));
}

/* B packed for every k step: step s (rows [pc, pc + kc)) at bpack + pc * ncols_pad, its
 * sliver jt at + jt * nr * kc, k-major (nr floats per k step, zero past ncols).
 *   forward:        B[k, o] = W[o, k]: the transposed layout pack_transposed reads
 *   backward_input: B[(t, o), i] = W[o, T-1-t, i]: rows of W, copied */
typedef struct {
    const float *weight;
    int64_t c_in, c_out;
    int taps;
    int flipped; /* backward_input's W' */
} weight_operand;

static void pack_weight_sliver(const weight_operand *wo, const ambient_cpu_kernels *kern,
                               int64_t ncols, int64_t pc, int64_t kc, int64_t j, float *restrict dst) {
    const int nr = kern->nr;
    int cols = (int)min64(nr, ncols - j);
    if (!wo->flipped) {
        int64_t k_total = wo->taps * wo->c_in;
        kern->pack_transposed(kc, cols, nr, wo->weight + j * k_total + pc, k_total, dst);
        return;
    }
    for (int64_t p = 0; p < kc; p++) {
        int64_t row = pc + p, t = row / wo->c_out, o = row - t * wo->c_out;
        const float *src = wo->weight + (o * wo->taps + (wo->taps - 1 - t)) * wo->c_in + j;
        float *out = dst + p * nr;
        for (int c = 0; c < cols; c++) out[c] = src[c];
        for (int c = cols; c < nr; c++) out[c] = 0.0f;
    }
}

static void rows_product(const patch_source *ps, int64_t m, int64_t ncols, const weight_operand *wo,
                         float beta, float *out, int threads, float *scratch) {
    const ambient_cpu_kernels *kern = ambient_cpu_kernels_get();
    const int mr = kern->mr, nr = kern->nr;
    const int64_t k = ps->taps * ps->channels, kc_step = even_kc(kern, k);
    const int64_t ncols_pad = round_up(ncols, nr), col_tiles = ncols_pad / nr;
    const int64_t steps = ceil_div(k, kc_step);

    /* Blocks of at most mc rows, enough of them for every thread, all of about one size. */
    int64_t row_tiles = ceil_div(m, mr);
    int64_t block_tiles = min64(kern->mc / mr, ceil_div(row_tiles, 4 * (int64_t)threads));
    if (block_tiles < 1) block_tiles = 1;
    int64_t blocks = ceil_div(row_tiles, block_tiles);
    block_tiles = ceil_div(row_tiles, blocks);
    blocks = ceil_div(row_tiles, block_tiles);

    float *bpack = scratch;
    int64_t a_floats = round_up(block_tiles * mr * kc_step, 16), g_floats = round_up(mr * kc_step, 16);
    float *per_thread = bpack + round_up(k * ncols_pad, 16);

#pragma omp parallel num_threads(threads) if (threads > 1)
    {
#pragma omp for schedule(static) collapse(2)
        for (int64_t s = 0; s < steps; s++)
            for (int64_t jt = 0; jt < col_tiles; jt++) {
                int64_t pc = s * kc_step, kc = min64(kc_step, k - pc);
                pack_weight_sliver(wo, kern, ncols, pc, kc, jt * nr, bpack + pc * ncols_pad + jt * nr * kc);
            }
        /* (the for's implicit barrier: B is complete before anyone multiplies) */

        float *apack = per_thread + omp_get_thread_num() * (a_floats + g_floats);
        float *gather = apack + a_floats;
#pragma omp for schedule(dynamic, 1)
        for (int64_t blk = 0; blk < blocks; blk++) {
            int64_t i0 = blk * block_tiles * mr, rows = min64(block_tiles * mr, m - i0);
            for (int64_t s = 0; s < steps; s++) {
                int64_t pc = s * kc_step, kc = min64(kc_step, k - pc);
                float b = s == 0 ? beta : 1.0f;
                for (int64_t ir = 0; ir < rows; ir += mr) {
                    int r = (int)min64(mr, rows - ir);
                    gather_patch_rows(kern, ps, i0 + ir, r, pc, kc, gather);
                    kern->pack_transposed(kc, r, mr, gather, kc, apack + ir * kc);
                }
                const float *bstep = bpack + pc * ncols_pad;
                for (int64_t jt = 0; jt < col_tiles; jt++) {
                    int64_t j = jt * nr;
                    int cols = (int)min64(nr, ncols - j);
                    for (int64_t ir = 0; ir < rows; ir += mr)
                        kern->gemm_tile(kc, apack + ir * kc, bstep + j * kc, 1.0f, b, out + (i0 + ir) * ncols + j,
                                        ncols, (int)min64(mr, rows - ir), cols);
                }
            }
        }
    }
}

static int64_t rows_product_scratch(const patch_source *ps, int64_t m, int64_t ncols, int threads) {
    const ambient_cpu_kernels *kern = ambient_cpu_kernels_get();
    int64_t k = ps->taps * ps->channels, kc_step = even_kc(kern, k);
    int64_t a_floats = round_up(round_up(min64(kern->mc, round_up(m, kern->mr)), kern->mr) * kc_step, 16);
    int64_t g_floats = round_up(kern->mr * kc_step, 16);
    return round_up(k * round_up(ncols, kern->nr), 16) + threads * (a_floats + g_floats);
}

/* ---- Weight gradient: dW^T[K, c_out] = patches(x)^T[K, M] * dy[M, c_out] ------------------- */

/* One run of columns of a patch sliver that comes from one tap: sliver columns [off, off + len)
 * are channels [ci, ci + len) of tap t. */
typedef struct {
    int t, off, len;
    int64_t ci;
} sliver_segment;

/* Patch columns [j, j + cols) of kc pixels into one k-major sliver of `width` floats per pixel
 * (zero past cols), reading through the pixels' tap pointers nbr[p * taps + t]. */
#define DEFINE_PACK_PATCH_SLIVER(name, attributes, copy)                                                  \
    attributes static void name(int64_t kc, int width, int taps, const float *const *nbr,                  \
                                const sliver_segment *seg, int segments, int cols, float *restrict dst) {   \
        for (int64_t p = 0; p < kc; p++) {                                                                 \
            float *out = dst + p * width;                                                                  \
            const float *const *np = nbr + p * taps;                                                       \
            for (int s = 0; s < segments; s++) {                                                           \
                const float *src = np[seg[s].t];                                                           \
                copy(out + seg[s].off, src ? src + seg[s].ci : NULL, seg[s].len);                          \
            }                                                                                              \
            if (cols < width) copy(out + cols, NULL, width - cols);                                        \
        }                                                                                                  \
    }
DEFINE_PACK_PATCH_SLIVER(pack_patch_sliver_plain, , copy_or_zero_plain)
DEFINE_PACK_PATCH_SLIVER(pack_patch_sliver_avx512, AVX512_TARGET, copy_or_zero_short_avx512)

/* kc rows of `channels` values (row stride channels) into width-wide k-major slivers:
 * dst[(i / width) * width * kc + p * width + i % width] = src[p * channels + i], zero-padded. */
#define DEFINE_PACK_ROWS(name, attributes, copy)                                                            \
    attributes static void name(int64_t kc, int64_t channels, int width, const float *src, float *restrict dst) { \
        for (int64_t i = 0; i < channels; i += width) {                                                      \
            int rows = (int)min64(width, channels - i);                                                      \
            float *out = dst + i * kc;                                                                       \
            for (int64_t p = 0; p < kc; p++) {                                                               \
                copy(out + p * width, src + p * channels + i, rows);                                         \
                if (rows < width) copy(out + p * width + rows, NULL, width - rows);                          \
            }                                                                                                \
        }                                                                                                    \
    }
DEFINE_PACK_ROWS(pack_rows_plain, , copy_or_zero_plain)
DEFINE_PACK_ROWS(pack_rows_avx512, AVX512_TARGET, copy_or_zero_short_avx512)

/* The product is computed transposed, dW^T = patches^T * dy, because c_out (a multiple of 16
 * or 32 in every network) then fills the micro-kernel's nr columns while the long K = 9 c_in
 * side takes the mr rows: with dW = dy^T * patches, c_out = 64 or 128 rows would leave the
 * last mr = 14 tile mostly empty (9% of the work wasted). The reduction over M is split
 * between threads, each into a private dW^T; the end adds them up, transposed, into dW with
 * the caller's beta. */
static void weight_product(const patch_source *ps, int64_t m, const float *dy, int64_t c_out, float beta,
                           float *dweight, int threads, float *scratch) {
    const ambient_cpu_kernels *kern = ambient_cpu_kernels_get();
    const int mr = kern->mr, nr = kern->nr, taps = ps->taps;
    const int64_t k_rows = taps * ps->channels, kc_max = kern->kc;
    const int64_t col_tiles = ceil_div(c_out, nr);
    const int64_t a_floats = round_up(mr * kc_max, 16), b_floats = round_up(col_tiles * nr * kc_max, 16);
    /* the tap pointer table: kc_max x taps pointers, 2 floats each */
    const int64_t n_floats = round_up(2 * kc_max * taps, 16), part_floats = round_up(k_rows * c_out, 16);
    const int64_t thread_floats = a_floats + b_floats + n_floats + part_floats;

#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        int tid = omp_get_thread_num(), team = omp_get_num_threads();
        float *apack = scratch + tid * thread_floats, *bpack = apack + a_floats;
        const float **nbr = (const float **)(void *)(bpack + b_floats);
        float *part = bpack + b_floats + n_floats;
        int64_t p_begin = m * tid / team, p_end = m * (tid + 1) / team;

        for (int64_t pc = p_begin; pc < p_end; pc += kc_max) {
            int64_t kc = min64(kc_max, p_end - pc);
            float b = pc == p_begin ? 0.0f : 1.0f;
            /* B = dy rows pc .. pc + kc, nr channels per sliver */
            if (kern == &ambient_cpu_kernels_avx512) pack_rows_avx512(kc, c_out, nr, dy + pc * c_out, bpack);
            else pack_rows_plain(kc, c_out, nr, dy + pc * c_out, bpack);
            for (int64_t p = 0; p < kc; p++)
                for (int t = 0; t < taps; t++) nbr[p * taps + t] = tap_pointer(ps, pc + p, t);

            for (int64_t i = 0; i < k_rows; i += mr) {
                int rows = (int)min64(mr, k_rows - i);
                sliver_segment seg[64];
                int segments = 0;
                for (int off = 0; off < rows;) {
                    int64_t col = i + off;
                    int t = (int)(col / ps->channels);
                    int64_t ci = col - t * ps->channels;
                    int len = (int)min64(ps->channels - ci, rows - off);
                    seg[segments++] = (sliver_segment){t, off, len, ci};
                    off += len;
                }
                if (kern == &ambient_cpu_kernels_avx512)
                    pack_patch_sliver_avx512(kc, mr, taps, nbr, seg, segments, rows, apack);
                else
                    pack_patch_sliver_plain(kc, mr, taps, nbr, seg, segments, rows, apack);
                for (int64_t jt = 0; jt < col_tiles; jt++) {
                    int64_t j = jt * nr;
                    kern->gemm_tile(kc, apack, bpack + j * kc, 1.0f, b, part + i * c_out + j, c_out, rows,
                                    (int)min64(nr, c_out - j));
                }
            }
        }
#pragma omp barrier
        /* dW[o, k] = sum over threads of dW^T[k, o] (+ beta dW): each thread a range of output
         * rows, 16 at a time so that the transposed reads use whole cache lines. */
        int64_t o0 = c_out * tid / team, o1 = c_out * (tid + 1) / team;
        for (int64_t ob = o0; ob < o1; ob += 16) {
            int64_t oe = min64(ob + 16, o1);
            for (int64_t k = 0; k < k_rows; k++)
                for (int64_t o = ob; o < oe; o++) {
                    float sum = 0.0f;
                    for (int u = 0; u < team; u++) sum += scratch[u * thread_floats + a_floats + b_floats + n_floats + k * c_out + o];
                    float *d = dweight + o * k_rows + k;
                    *d = beta == 0.0f ? sum : sum + beta * *d;
                }
        }
    }
}

static int64_t weight_product_scratch(int64_t c_out, int64_t k_rows, int taps, int threads) {
    const ambient_cpu_kernels *kern = ambient_cpu_kernels_get();
    int64_t a_floats = round_up(kern->mr * kern->kc, 16);
    int64_t b_floats = round_up(ceil_div(c_out, kern->nr) * kern->nr * kern->kc, 16);
    int64_t n_floats = round_up(2 * kern->kc * taps, 16), part_floats = round_up(k_rows * c_out, 16);
    return threads * (a_floats + b_floats + n_floats + part_floats);
}

/* ---- Entry points ------------------------------------------------------------------------------ */

/* Checks the sizes, kernel and beta every pass shares; *m = n * h * w. */
static int check_conv(const char *function, int64_t n, int64_t h, int64_t w, int64_t c_in, int64_t c_out,
                      int64_t kernel, float beta, int64_t *m) {
    const struct { const char *name; int64_t value; } sizes[] = {
        {"n", n}, {"h", h}, {"w", w}, {"c_in", c_in}, {"c_out", c_out}};
    for (int i = 0; i < 5; i++)
        AMBIENT_REQUIRE(sizes[i].value >= 0 && sizes[i].value <= AMBIENT_MAX_COUNT, "%s: %s = %lld is %s", function,
                        sizes[i].name, (long long)sizes[i].value, sizes[i].value < 0 ? "negative" : "too large");
    AMBIENT_REQUIRE(kernel == 1 || kernel == 3, "%s: kernel = %lld is not supported (1 or 3)", function,
                    (long long)kernel);
    AMBIENT_REQUIRE(isfinite(beta), "%s: beta = %g is not finite", function, beta);
    int64_t px, c_max = c_in > c_out ? c_in : c_out, e;
    int ovf = __builtin_mul_overflow(n, h, &px) || __builtin_mul_overflow(px, w, &px) ||
              __builtin_mul_overflow(px, c_max, &e) || e > AMBIENT_MAX_COUNT ||
              __builtin_mul_overflow(c_in * kernel * kernel, c_out, &e) || e > AMBIENT_MAX_COUNT;
    /* (c_in * 9 cannot overflow: c_in <= 2^58) */
    AMBIENT_REQUIRE(!ovf, "%s: n x h x w x c = %lld x %lld x %lld x %lld (or the weight, %lld x %lld x %lld x %lld) is too large",
                    function, (long long)n, (long long)h, (long long)w, (long long)c_max, (long long)c_out,
                    (long long)kernel, (long long)kernel, (long long)c_in);
    *m = px;
    return AMBIENT_STATUS_OK;
}

/* out = beta * out over count elements, without reading out when beta == 0. */
static void scale_output(float *out, int64_t count, float beta) {
    if (beta == 0.0f) memset(out, 0, (size_t)count * sizeof(float));
    else if (beta != 1.0f)
        for (int64_t i = 0; i < count; i++) out[i] *= beta;
}

static int threads_for(double multiply_adds) {
    int threads = ambient_cpu_threads();
    if (multiply_adds < (double)threads * (double)WORK_PER_THREAD)
        threads = (int)(multiply_adds / (double)WORK_PER_THREAD) + 1;
    return threads < 1 ? 1 : threads;
}

/* Reports a failed ambient_gemm under the caller's name. */
static int gemm_status(const char *function, int status) {
    if (status == AMBIENT_STATUS_OK) return status;
    char message[512];
    snprintf(message, sizeof message, "%s", ambient_last_error());
    return ambient_fail(status, "%s: %s", function, message);
}

#define F ((int64_t)sizeof(float))
#define REQUIRE_DISJOINT(out, out_count, in, in_count)                                                   \
    AMBIENT_REQUIRE(!ambient_overlaps(out, (out_count) * F, in, (in_count) * F), "%s: %s = %p overlaps %s = %p", \
                    __func__, #out, (void *)(out), #in, (const void *)(in))

/* The 3x3 forward convolution (flipped = 0: src is x with c_in channels, dst y with c_out) or
 * input gradient (flipped = 1: src is dy with c_out channels, dst dx with c_in), after the
 * entry points' checks: Winograd where it applies, else the implicit GEMM. */
static int conv3x3_rows(const char *function, int64_t n, int64_t h, int64_t w, int64_t c_in, int64_t c_out,
                        const float *src, const float *weight, int flipped, float beta, float *dst) {
    int64_t m = n * h * w;
    int64_t src_channels = flipped ? c_out : c_in, dst_channels = flipped ? c_in : c_out;
    int threads = threads_for((double)(m * dst_channels) * (double)(9 * src_channels));
    if (ambient_conv2d_winograd_applies(h, w))
        return ambient_conv2d_winograd(n, h, w, src_channels, dst_channels, src, weight, flipped, beta, dst, threads);
    patch_source ps = {src, h, w, src_channels, 3, 9, 1};
    weight_operand wo = {weight, c_in, c_out, 9, flipped};
    int64_t floats = rows_product_scratch(&ps, m, dst_channels, threads);
    float *scratch = ambient_scratch_take(&scratch_cache, floats);
    if (scratch == NULL)
        return ambient_fail(AMBIENT_STATUS_OUT_OF_MEMORY, "%s: cannot allocate %lld bytes of packing buffers",
                            function, (long long)(floats * F));
    rows_product(&ps, m, dst_channels, &wo, beta, dst, threads, scratch);
    ambient_scratch_give(&scratch_cache, scratch);
    return AMBIENT_STATUS_OK;
}

int ambient_conv2d_forward(int64_t n, int64_t h, int64_t w, int64_t c_in, int64_t c_out, int64_t kernel,
                           const float *x, const float *weight, float beta, float *y) {
    ambient_clear_error();
    int64_t m = 0;
    int status = check_conv(__func__, n, h, w, c_in, c_out, kernel, beta, &m);
    if (status) return status;
    int64_t y_count = m * c_out, x_count = m * c_in, w_count = c_out * kernel * kernel * c_in;
    if (y_count == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(y);
    if (c_in == 0) {
        scale_output(y, y_count, beta);
        return AMBIENT_STATUS_OK;
    }
    AMBIENT_REQUIRE_POINTER(x);
    AMBIENT_REQUIRE_POINTER(weight);
    REQUIRE_DISJOINT(y, y_count, x, x_count);
    REQUIRE_DISJOINT(y, y_count, weight, w_count);

    if (kernel == 1)
        return gemm_status(__func__, ambient_gemm(0, 1, 1, m, c_out, c_in, 1.0f, x, c_in, 0, weight, c_in, 0, beta,
                                                  y, c_out, 0));
    return conv3x3_rows(__func__, n, h, w, c_in, c_out, x, weight, 0, beta, y);
}

int ambient_conv2d_backward_input(int64_t n, int64_t h, int64_t w, int64_t c_in, int64_t c_out, int64_t kernel,
                                  const float *dy, const float *weight, float beta, float *dx) {
    ambient_clear_error();
    int64_t m = 0;
    int status = check_conv(__func__, n, h, w, c_in, c_out, kernel, beta, &m);
    if (status) return status;
    int64_t dx_count = m * c_in, dy_count = m * c_out, w_count = c_out * kernel * kernel * c_in;
    if (dx_count == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(dx);
    if (c_out == 0) {
        scale_output(dx, dx_count, beta);
        return AMBIENT_STATUS_OK;
    }
    AMBIENT_REQUIRE_POINTER(dy);
    AMBIENT_REQUIRE_POINTER(weight);
    REQUIRE_DISJOINT(dx, dx_count, dy, dy_count);
    REQUIRE_DISJOINT(dx, dx_count, weight, w_count);

    if (kernel == 1)
        return gemm_status(__func__, ambient_gemm(0, 0, 1, m, c_in, c_out, 1.0f, dy, c_out, 0, weight, c_in, 0, beta,
                                                  dx, c_in, 0));
    return conv3x3_rows(__func__, n, h, w, c_in, c_out, dy, weight, 1, beta, dx);
}

int ambient_conv2d_backward_weight(int64_t n, int64_t h, int64_t w, int64_t c_in, int64_t c_out, int64_t kernel,
                                   const float *x, const float *dy, float beta, float *dweight) {
    ambient_clear_error();
    int64_t m = 0;
    int status = check_conv(__func__, n, h, w, c_in, c_out, kernel, beta, &m);
    if (status) return status;
    int64_t k_cols = kernel * kernel * c_in, w_count = c_out * k_cols, x_count = m * c_in, dy_count = m * c_out;
    if (w_count == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(dweight);
    if (m == 0) {
        scale_output(dweight, w_count, beta);
        return AMBIENT_STATUS_OK;
    }
    AMBIENT_REQUIRE_POINTER(x);
    AMBIENT_REQUIRE_POINTER(dy);
    REQUIRE_DISJOINT(dweight, w_count, x, x_count);
    REQUIRE_DISJOINT(dweight, w_count, dy, dy_count);

    if (kernel == 1)
        return gemm_status(__func__, ambient_gemm(1, 0, 1, c_out, c_in, m, 1.0f, dy, c_out, 0, x, c_in, 0, beta,
                                                  dweight, c_in, 0));
    int threads = threads_for((double)w_count * (double)m);
    if (ambient_conv2d_winograd_weight_applies(h, w, c_in, c_out))
        return ambient_conv2d_winograd_weight(n, h, w, c_in, c_out, x, dy, beta, dweight, threads);
    /* Every thread needs a few k steps of its own, and its own copy of dW must be worth it. */
    int64_t by_steps = m / (ambient_cpu_kernels_get()->kc / 2) + 1;
    if (threads > by_steps) threads = (int)by_steps;
    patch_source ps = {x, h, w, c_in, 3, 9, 1};
    int64_t floats = weight_product_scratch(c_out, k_cols, 9, threads);
    float *scratch = ambient_scratch_take(&scratch_cache, floats);
    if (scratch == NULL)
        return ambient_fail(AMBIENT_STATUS_OUT_OF_MEMORY, "%s: cannot allocate %lld bytes of packing buffers",
                            __func__, (long long)(floats * F));
    weight_product(&ps, m, dy, c_out, beta, dweight, threads, scratch);
    ambient_scratch_give(&scratch_cache, scratch);
    return AMBIENT_STATUS_OK;
}
