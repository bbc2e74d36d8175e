/*
 * The convolutions of conv2d.cu as matrix products for the tensor-core block of mma.cuh:
 * "sources" that read element (mn, k) of each implicit-GEMM operand straight from the float32
 * NHWC tensors (zero outside the image and outside the matrix), in the interface mma_stager
 * expects (K_CONTIG, at_mn, at_k, load). Shapes (conv2d.cu): M = n h w pixels, T = k^2 taps,
 *   forward          y[M, c_out]        = patches(x)[M, T c_in] . W[c_out, T c_in]^T
 *   backward_input   dx[M, c_in]        = patches(dy)[M, T c_out] . W'[c_in, T c_out]^T,
 *                                         W'[i, (t, o)] = W[o, T-1-t, i]
 *   backward_weight  dW[c_out, T c_in]  = dy^T[c_out, M] . patches(x)^T[T c_in, M]^T
 * (each product written as A[m, k] B[n, k], the form the block computes). A patch column
 * k = t C + c reads channel c of the pixel at tap t = (dy + 1) KS + (dx + 1).
 *
 * Pixel coordinates come from 32-bit divisions by run-time constants (fast_divisor), so one
 * call covers fewer than 2^31 pixels (conv2d.cu checks). Host and device code alike: the
 * emulation test (native/tests/test_cuda_mma.cu) runs these against a direct convolution.
 */
#ifndef AMBIENT_CUDA_CONV2D_OPERANDS_CUH
#define AMBIENT_CUDA_CONV2D_OPERANDS_CUH

#include "mma.cuh"

/* What every source needs to know about the image. */
struct conv_geometry {
    int h, w, ks;             /* image size, kernel size (1 or 3, nothing else) */
    fast_divisor div_w, div_h; /* pixel p -> (p / w, p % w); row -> (row / h, row % h) */
};

static inline conv_geometry conv_geometry_make(int64_t h, int64_t w, int64_t ks) {
    return {(int)h, (int)w, (int)ks, fast_divisor_make((uint32_t)w), fast_divisor_make((uint32_t)h)};
}

/* A pixel's position; valid is false past the last pixel (or past k_end). */
struct conv_pixel {
    int64_t p;
    int y, x;
    bool valid;
};

AMBIENT_HD conv_pixel conv_pixel_at(const conv_geometry &g, int64_t p, int64_t end) {
    if (p >= end) return {0, 0, 0, false};
    uint32_t q = fast_div(g.div_w, (uint32_t)p);
    int x = (int)((uint32_t)p - q * (uint32_t)g.w);
    int y = (int)(q - fast_div(g.div_h, q) * (uint32_t)g.h);
    return {p, y, x, true};
}

/* A tap and channel of a patch column k = t C + c: the offsets of its neighbour. */
struct conv_tap {
    int64_t c;
    int dy, dx;
    bool valid;
};

AMBIENT_HD conv_tap conv_tap_at(const conv_geometry &g, const fast_divisor &div_c, int64_t k, int64_t end) {
    if (k >= end) return {0, 0, 0, false};
    uint32_t t = fast_div(div_c, (uint32_t)k);
    /* kernel 3: t / 3 = (11 t) >> 5 for t < 9; kernel 1: t = 0 */
    int tap_row = g.ks == 3 ? (int)((t * 11u) >> 5) : 0, tap_col = (int)t - tap_row * g.ks, pad = g.ks / 2;
    return {(int64_t)((uint32_t)k - t * div_c.d), tap_row - pad, tap_col - pad, true};
}

/* patches(src)[p, k] for a tap/channel and a pixel: src's neighbour of p, zero outside. */
AMBIENT_HD float conv_patch_value(const conv_geometry &g, const float *src, int64_t channels, const conv_pixel &px,
                                  const conv_tap &tap) {
    if (!px.valid || !tap.valid) return 0.0f;
    int yy = px.y + tap.dy, xx = px.x + tap.dx;
    if (yy < 0 || yy >= g.h || xx < 0 || xx >= g.w) return 0.0f;
    return src[(px.p + (int64_t)tap.dy * g.w + tap.dx) * channels + tap.c];
}

/* Forward and input gradient, A: patches(src)[M, T C] (k = t C + c runs along channels). */
struct conv_patch_rows {
    static constexpr bool K_CONTIG = true;
    conv_geometry g;
    fast_divisor div_c; /* C, the channels of src */
    const float *src;
    int64_t pixels;
    using mn_state = conv_pixel;
    using k_state = conv_tap;
    AMBIENT_HD mn_state at_mn(int64_t p) const { return conv_pixel_at(g, p, pixels); }
    AMBIENT_HD k_state at_k(int64_t k, int64_t k_end) const { return conv_tap_at(g, div_c, k, k_end); }
    AMBIENT_HD float load(const mn_state &px, const k_state &tap) const {
        return conv_patch_value(g, src, div_c.d, px, tap);
    }
};

/* Input gradient, B: W'[i, (t, o)] = W[o, T-1-t, i] (the input channel i runs along memory). */
struct conv_flipped_weight_cols {
    static constexpr bool K_CONTIG = false;
    const float *weight;
    int64_t c_in;
    int taps;
    fast_divisor div_c_out;
    struct mn_state {
        int64_t i;
        bool valid;
    };
    struct k_state {
        int64_t offset; /* of W[o, T-1-t, 0] */
        bool valid;
    };
    AMBIENT_HD mn_state at_mn(int64_t i) const { return {i, i < c_in}; }
    AMBIENT_HD k_state at_k(int64_t k, int64_t k_end) const {
        if (k >= k_end) return {0, false};
        uint32_t t = fast_div(div_c_out, (uint32_t)k);
        int64_t o = (int64_t)((uint32_t)k - t * div_c_out.d);
        return {(o * taps + (taps - 1 - (int64_t)t)) * c_in, true};
    }
    AMBIENT_HD float load(const mn_state &r, const k_state &c) const {
        return r.valid && c.valid ? weight[c.offset + r.i] : 0.0f;
    }
};

/* Weight gradient, A: dy^T[c_out, M] (the output channel o runs along memory). */
struct conv_dy_cols {
    static constexpr bool K_CONTIG = false;
    const float *dy;
    int64_t c_out;
    struct mn_state {
        int64_t o;
        bool valid;
    };
    struct k_state {
        int64_t offset; /* of dy[p, 0] */
        bool valid;
    };
    AMBIENT_HD mn_state at_mn(int64_t o) const { return {o, o < c_out}; }
    AMBIENT_HD k_state at_k(int64_t p, int64_t p_end) const { return {p < p_end ? p * c_out : 0, p < p_end}; }
    AMBIENT_HD float load(const mn_state &r, const k_state &c) const {
        return r.valid && c.valid ? dy[c.offset + r.o] : 0.0f;
    }
};

/* Weight gradient, B: patches(x)^T[T c_in, M] (columns k = t c_in + c; the reduction runs over
 * pixels; channels run along memory). */
struct conv_patch_cols {
    static constexpr bool K_CONTIG = false;
    conv_geometry g;
    fast_divisor div_c; /* c_in */
    const float *src;
    int64_t columns; /* T c_in */
    using mn_state = conv_tap;
    using k_state = conv_pixel;
    AMBIENT_HD mn_state at_mn(int64_t k) const { return conv_tap_at(g, div_c, k, columns); }
    AMBIENT_HD k_state at_k(int64_t p, int64_t p_end) const { return conv_pixel_at(g, p, p_end); }
    AMBIENT_HD float load(const mn_state &tap, const k_state &px) const {
        return conv_patch_value(g, src, div_c.d, px, tap);
    }
};

/* The weight gradient reduces over all m pixels while its output (w_count floats) is small, so
 * the pixels are cut into *splits ranges of *chunk pixels (a multiple of slice_k), each range's
 * product written to scratch and the ranges added in order afterwards. A function of the
 * sizes only, so results do not depend on the GPU. */
#define CONV_SPLIT_PIXELS 1024
#define CONV_MAX_SPLITS 64
#define CONV_MAX_PARTIAL_FLOATS (INT64_C(1) << 24)

static inline void conv_weight_splits(int64_t m, int64_t w_count, int64_t slice_k, int64_t *splits, int64_t *chunk) {
    int64_t s = (m + CONV_SPLIT_PIXELS - 1) / CONV_SPLIT_PIXELS;
    s = s > CONV_MAX_SPLITS ? CONV_MAX_SPLITS : s;
    if (s > CONV_MAX_PARTIAL_FLOATS / w_count) s = CONV_MAX_PARTIAL_FLOATS / w_count;
    if (s < 1) s = 1;
    *chunk = ((m + s - 1) / s + slice_k - 1) / slice_k * slice_k;
    *splits = (m + *chunk - 1) / *chunk;
}

/* ---- One pass of the convolution as the tensor-core block's operands ---------------------------- */

enum { CONV_FORWARD = 0, CONV_INPUT = 1, CONV_WEIGHT = 2 };

/* A pass's sizes and tensors (the output is m x n, reduction length `reduce`; see the top). */
struct conv_mma_args {
    conv_geometry g;
    fast_divisor div_c_in, div_c_out;
    const float *x, *dy, *weight; /* the tensors the pass reads */
    float *out;                    /* y, dx, dweight, or the split partials (split z at z m n) */
    float beta;
    int64_t m, n, reduce, c_in, c_out;
    int64_t chunk; /* weight: pixels per split (all of them without splits) */
    bool partial;  /* weight with splits: raw products, no beta */
};

/* The pass `mode` of an n x h x w image batch (pixels = n h w < 2^31). */
static inline conv_mma_args conv_mma_args_make(int mode, int64_t pixels, int64_t h, int64_t w, int64_t c_in,
                                               int64_t c_out, int64_t kernel, const float *x, const float *dy,
                                               const float *weight, float *out, float beta, int64_t chunk,
                                               bool partial) {
    conv_mma_args a;
    a.g = conv_geometry_make(h, w, kernel);
    a.div_c_in = fast_divisor_make((uint32_t)c_in);
    a.div_c_out = fast_divisor_make((uint32_t)c_out);
    a.x = x;
    a.dy = dy;
    a.weight = weight;
    a.out = out;
    a.beta = beta;
    a.c_in = c_in;
    a.c_out = c_out;
    const int64_t taps = kernel * kernel;
    a.m = mode == CONV_WEIGHT ? c_out : pixels;
    a.n = mode == CONV_FORWARD ? c_out : mode == CONV_INPUT ? c_in : taps * c_in;
    a.reduce = mode == CONV_FORWARD ? taps * c_in : mode == CONV_INPUT ? taps * c_out : pixels;
    a.chunk = mode == CONV_WEIGHT ? chunk : a.reduce;
    a.partial = mode == CONV_WEIGHT && partial;
    return a;
}

/* Calls body(source_a, source_b, output, k_begin, k_end) with the operands of pass MODE for
 * split z (the weight gradient's pixel range z; 0 otherwise): what one block of
 * conv_mma_kernel multiplies, and what the emulation test multiplies. */
#if defined(__CUDACC__)
#pragma nv_exec_check_disable
#endif
template <int MODE, class BODY>
AMBIENT_HD void conv_mma_pass(const conv_mma_args &a, int64_t z, BODY &&body) {
    if (MODE == CONV_FORWARD) {
        const conv_patch_rows src_a{a.g, a.div_c_in, a.x, a.m};
        /* B: W[c_out, T c_in] as stored, a row-major matrix (row o, reduction index k contiguous) */
        const gemm_operand<true> src_b{a.weight, a.reduce, a.c_out};
        body(src_a, src_b, mma_output{a.out, a.n, a.m, a.n, 1.0f, a.beta, false}, (int64_t)0, a.reduce);
    } else if (MODE == CONV_INPUT) {
        const conv_patch_rows src_a{a.g, a.div_c_out, a.dy, a.m};
        const conv_flipped_weight_cols src_b{a.weight, a.c_in, a.g.ks * a.g.ks, a.div_c_out};
        body(src_a, src_b, mma_output{a.out, a.n, a.m, a.n, 1.0f, a.beta, false}, (int64_t)0, a.reduce);
    } else {
        const conv_dy_cols src_a{a.dy, a.c_out};
        const conv_patch_cols src_b{a.g, a.div_c_in, a.x, a.n};
        const int64_t k_begin = z * a.chunk, k_end = k_begin + a.chunk < a.reduce ? k_begin + a.chunk : a.reduce;
        const mma_output out = a.partial ? mma_output{a.out + z * a.m * a.n, a.n, a.m, a.n, 1.0f, 0.0f, true}
                                         : mma_output{a.out, a.n, a.m, a.n, 1.0f, a.beta, false};
        body(src_a, src_b, out, k_begin, k_end);
    }
}

#endif
