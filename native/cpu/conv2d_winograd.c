/*
 * 3x3 "same" convolution (NHWC, stride 1, pad 1) by Winograd F(2x2, 3x3) or, where it saves
 * work (winograd_tile below), F(4x4, 3x3): the same scheme with 4x4 tiles, 6x6 patches and 36
 * positions (see "F(4x4, 3x3)" and, for the weight gradient, "by F(4x4)"); used by
 * ambient_conv2d_forward, ambient_conv2d_backward_input and (below, "Weight gradient")
 * ambient_conv2d_backward_weight; cpu/conv2d.c decides when.
 *
 * The output is cut into 2x2 tiles; tile (ty, tx) reads the 4x4 input patch at
 * (2 ty - 1, 2 tx - 1) (zero outside the image). With
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
 *   A^T = [1 1 1 0; 0 1 -1 -1]
 * every tile's output is  Y = A^T [ sum_k (G g_jk G^T) o (B^T d_k B) ] A,  so for each of the
 * 16 positions (u, v) of the 4x4 transform domain the sum over input channels k is one matrix
 * product  M_uv[tiles, c_out] = V_uv[tiles, c_in] * U_uv[c_in, c_out]: 16 products of 4 / 9
 * the multiply-adds of the direct convolution's one (2.25x fewer), done by the GEMM
 * micro-kernel (kernels.h). F(2x2) keeps float32 rounding close to the direct sum (the
 * transforms only add, subtract and halve); F(4x4) saves 1.8x more but amplifies it.
 *
 * The input gradient is the same convolution of dy with W'[i, t, o] = W[o, 8 - t, i] (the
 * kernel flipped and its channels transposed), so only the weight transform differs.
 *
 * Work: U is transformed and packed once per call (all threads); then each thread takes an
 * equal range of tiles in blocks of `block` tiles (a multiple of the micro-kernel's mr): input
 * transform (channels vectorised, NHWC keeps them contiguous) into a row-major buffer, which
 * the row-major micro-kernel reads as it is (AVX-512) or which is packed per position into the
 * micro-kernel's A layout; 16 x (col slivers x row slivers) micro-kernel calls into M; output
 * transform into y (beta applied there). A block's V and M stay in L2.
 */
#include "internal.h"
#include "kernels.h"

#include <stdlib.h>
#include <string.h>

#define SIMD_CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))

static int64_t min64(int64_t x, int64_t y) { return x < y ? x : y; }
static int64_t ceil_div(int64_t x, int64_t y) { return (x + y - 1) / y; }
static int64_t round_up(int64_t x, int64_t y) { return ceil_div(x, y) * y; }

static void *winograd_scratch_slot;

typedef struct {
    int64_t n, h, w, cin, cout; /* of the convolution computed: src has cin channels, dst cout */
    int tile, positions;        /* F(2x2): 2 and 16; F(4x4): 4 and 36 */
    int64_t th, tw, tiles;      /* tiles per column, per row, in all */
    int64_t block, kc_step, ncols_pad;
    const float *src, *weight;
    int flipped;
    float beta;
    float *dst;
} wino_problem;

/* Tiles per block: several row slivers so that each packed B sliver is reused, while the
 * block's V (16 x block x cin) and M (16 x block x cout) stay in L2 (400 KiB: a few percent
 * faster on Zen 4 than budgets from 256 KiB to 1.6 MiB). */
static int64_t block_tiles(const ambient_cpu_kernels *kern, int positions, int64_t cin, int64_t cout, int64_t tiles) {
    int64_t budget = (INT64_C(400) << 10) / (positions * 4 * (cin + cout));
    int64_t slivers = budget / kern->mr;
    if (slivers < 1) slivers = 1;
    if (slivers > 8) slivers = 8;
    return min64(slivers * kern->mr, round_up(tiles, kern->mr));
}

/* ---- Weight transform: U_uv[k, j] = (G g_jk G^T)[u, v], packed per position as the GEMM's B
 * (slivers of nr columns, k-major: bpack + pos * cin * ncols_pad + jt * nr * cin + k * nr).
 * The output channels of one sliver are the vector lanes, so every store is a contiguous row
 * of the packed layout: g[t] holds tap t (row-major 3x3) of those nr filters, zero past the
 * last one. */
SIMD_CLONES static void transform_weight_taps(int nr, const float *restrict g0, const float *restrict g1,
                                              const float *restrict g2, const float *restrict g3,
                                              const float *restrict g4, const float *restrict g5,
                                              const float *restrict g6, const float *restrict g7,
                                              const float *restrict g8, float *restrict dst, int64_t pos_stride) {
#pragma omp simd
    for (int jr = 0; jr < nr; jr++) {
        /* rows: G g (4 x 3), column by column */
        float r00 = g0[jr], r01 = g1[jr], r02 = g2[jr];
        float r30 = g6[jr], r31 = g7[jr], r32 = g8[jr];
        float r10 = 0.5f * (r00 + g3[jr] + r30), r11 = 0.5f * (r01 + g4[jr] + r31), r12 = 0.5f * (r02 + g5[jr] + r32);
        float r20 = 0.5f * (r00 - g3[jr] + r30), r21 = 0.5f * (r01 - g4[jr] + r31), r22 = 0.5f * (r02 - g5[jr] + r32);
        /* columns: (G g) G^T */
#define AMBIENT_WINO_ROW(u, a, b, c)                                         \
        dst[(u * 4 + 0) * pos_stride + jr] = a;                              \
        dst[(u * 4 + 1) * pos_stride + jr] = 0.5f * (a + b + c);             \
        dst[(u * 4 + 2) * pos_stride + jr] = 0.5f * (a - b + c);             \
        dst[(u * 4 + 3) * pos_stride + jr] = c;
        AMBIENT_WINO_ROW(0, r00, r01, r02)
        AMBIENT_WINO_ROW(1, r10, r11, r12)
        AMBIENT_WINO_ROW(2, r20, r21, r22)
        AMBIENT_WINO_ROW(3, r30, r31, r32)
#undef AMBIENT_WINO_ROW
    }
}

/* ---- F(4x4, 3x3): 4x4 output tiles from 6x6 input patches at (4 ty - 1, 4 tx - 1), 36
 * positions for 16 outputs: 2.25 multiply-adds per output and input channel, against F(2x2)'s
 * 4 and the direct convolution's 9. With the interpolation points 0, +-1, +-2 and infinity,
 *   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
 *   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
 *   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1].
 * The transforms scale by up to 8, so float32 rounding grows: about 7e-7 of the sum of
 * |products| at 128 channels (F(2x2): 4e-8; the tests allow 1e-5 for F(4x4), 2e-6 otherwise).
 * The weight gradient has its own F(4x4) below. Each 1-D transform maps six values (or three,
 * G) to six (four, A^T). */
#define AMBIENT_WINO6_BT(d0, d1, d2, d3, d4, d5, o0, o1, o2, o3, o4, o5) \
    o0 = 4.0f * d0 - 5.0f * d2 + d4;                                     \
    o1 = (d3 + d4) - 4.0f * (d1 + d2);                                   \
    o2 = (d4 - d3) + 4.0f * (d1 - d2);                                   \
    o3 = (d4 - d2) + 2.0f * (d3 - d1);                                   \
    o4 = (d4 - d2) - 2.0f * (d3 - d1);                                   \
    o5 = 4.0f * d1 - 5.0f * d3 + d5;
#define AMBIENT_WINO6_G(a0, a1, a2, o0, o1, o2, o3, o4, o5) \
    o0 = 0.25f * a0;                                        \
    o1 = (-1.0f / 6.0f) * (a0 + a1 + a2);                   \
    o2 = (-1.0f / 6.0f) * (a0 - a1 + a2);                   \
    o3 = (1.0f / 24.0f) * a0 + (1.0f / 12.0f) * a1 + (1.0f / 6.0f) * a2; \
    o4 = (1.0f / 24.0f) * a0 - (1.0f / 12.0f) * a1 + (1.0f / 6.0f) * a2; \
    o5 = a2;
#define AMBIENT_WINO6_AT(m0, m1, m2, m3, m4, m5, o0, o1, o2, o3) \
    o0 = m0 + m1 + m2 + m3 + m4;                                 \
    o1 = (m1 - m2) + 2.0f * (m3 - m4);                           \
    o2 = (m1 + m2) + 4.0f * (m3 + m4);                           \
    o3 = (m1 - m2) + 8.0f * (m3 - m4) + m5;

/* U for F(4x4): as transform_weight_taps, 36 positions. */
SIMD_CLONES static void transform_weight_taps6(int nr, const float *restrict g0, const float *restrict g1,
                                               const float *restrict g2, const float *restrict g3,
                                               const float *restrict g4, const float *restrict g5,
                                               const float *restrict g6, const float *restrict g7,
                                               const float *restrict g8, float *restrict dst, int64_t pos_stride) {
#pragma omp simd
    for (int jr = 0; jr < nr; jr++) {
        /* columns of G g (6 x 3) */
        float r00, r10, r20, r30, r40, r50, r01, r11, r21, r31, r41, r51, r02, r12, r22, r32, r42, r52;
        AMBIENT_WINO6_G(g0[jr], g3[jr], g6[jr], r00, r10, r20, r30, r40, r50)
        AMBIENT_WINO6_G(g1[jr], g4[jr], g7[jr], r01, r11, r21, r31, r41, r51)
        AMBIENT_WINO6_G(g2[jr], g5[jr], g8[jr], r02, r12, r22, r32, r42, r52)
        /* rows of (G g) G^T */
#define AMBIENT_WINO6_U_ROW(u, a0, a1, a2)                                  \
        {                                                                   \
            float o0, o1, o2, o3, o4, o5;                                   \
            AMBIENT_WINO6_G(a0, a1, a2, o0, o1, o2, o3, o4, o5)             \
            dst[(u * 6 + 0) * pos_stride + jr] = o0;                        \
            dst[(u * 6 + 1) * pos_stride + jr] = o1;                        \
            dst[(u * 6 + 2) * pos_stride + jr] = o2;                        \
            dst[(u * 6 + 3) * pos_stride + jr] = o3;                        \
            dst[(u * 6 + 4) * pos_stride + jr] = o4;                        \
            dst[(u * 6 + 5) * pos_stride + jr] = o5;                        \
        }
        AMBIENT_WINO6_U_ROW(0, r00, r01, r02)
        AMBIENT_WINO6_U_ROW(1, r10, r11, r12)
        AMBIENT_WINO6_U_ROW(2, r20, r21, r22)
        AMBIENT_WINO6_U_ROW(3, r30, r31, r32)
        AMBIENT_WINO6_U_ROW(4, r40, r41, r42)
        AMBIENT_WINO6_U_ROW(5, r50, r51, r52)
#undef AMBIENT_WINO6_U_ROW
    }
}

/* The packed U of output channel sliver jt, input channel k. Forward: taps from `taps`, the
 * weight rearranged by sliver (taps + jt * 9 * cin * nr + (t * cin + k) * nr + jr, zero-padded).
 * Flipped: W'[k, t, j] = W[k, 8 - t, j] straight from the weight, whose rows of output channels
 * are contiguous (copied into `pad`, zero-padded, for a partial last sliver). */
static void transform_weight_sliver(const wino_problem *pb, int nr, int64_t jt, int64_t k, const float *taps,
                                    float *pad, float *bpack) {
    const int64_t cin = pb->cin, cout = pb->cout;
    const float *g[9];
    if (!pb->flipped) {
        for (int t = 0; t < 9; t++) g[t] = taps + (jt * 9 * cin + t * cin + k) * nr;
    } else {
        int64_t cols = min64(nr, cout - jt * nr);
        for (int t = 0; t < 9; t++) {
            const float *row = pb->weight + (k * 9 + (8 - t)) * cout + jt * nr;
            if (cols == nr) {
                g[t] = row;
            } else {
                float *p = pad + t * nr;
                for (int jr = 0; jr < nr; jr++) p[jr] = jr < cols ? row[jr] : 0.0f;
                g[t] = p;
            }
        }
    }
    if (pb->tile == 4)
        transform_weight_taps6(nr, g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8],
                               bpack + jt * nr * cin + k * nr, cin * pb->ncols_pad);
    else
        transform_weight_taps(nr, g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8],
                              bpack + jt * nr * cin + k * nr, cin * pb->ncols_pad);
}

/* ---- Input transform of rows tiles starting at tile t0 into v[pos][r][0:cin] (row stride ld).
 * The channel loop is the vector loop: each patch pixel's pointer is a local of its own and the
 * transform is written out per position, which GCC vectorises (a loop over a pointer array and
 * a 4x4 temporary, as before, it left scalar). */
SIMD_CLONES static void transform_input(const wino_problem *pb, int64_t t0, int rows, int64_t ld, const float *zero,
                                        float *restrict v) {
    const int64_t cin = pb->cin, per_image = pb->th * pb->tw, ps = (int64_t)rows * ld;
    for (int r = 0; r < rows; r++) {
        int64_t t = t0 + r, img = t / per_image, ty = (t % per_image) / pb->tw, tx = t % pb->tw;
        const float *d[16];
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 4; b++) {
                int64_t yy = 2 * ty - 1 + a, xx = 2 * tx - 1 + b;
                d[a * 4 + b] = (yy < 0 || yy >= pb->h || xx < 0 || xx >= pb->w)
                                   ? zero
                                   : pb->src + ((img * pb->h + yy) * pb->w + xx) * cin;
            }
        const float *restrict d00 = d[0], *restrict d01 = d[1], *restrict d02 = d[2], *restrict d03 = d[3];
        const float *restrict d10 = d[4], *restrict d11 = d[5], *restrict d12 = d[6], *restrict d13 = d[7];
        const float *restrict d20 = d[8], *restrict d21 = d[9], *restrict d22 = d[10], *restrict d23 = d[11];
        const float *restrict d30 = d[12], *restrict d31 = d[13], *restrict d32 = d[14], *restrict d33 = d[15];
        float *restrict out = v + r * ld;
#pragma omp simd
        for (int64_t c = 0; c < cin; c++) {
            /* columns: e = B^T d, row a of e from rows 0..3 of the patch */
            float e00 = d00[c] - d20[c], e01 = d01[c] - d21[c], e02 = d02[c] - d22[c], e03 = d03[c] - d23[c];
            float e10 = d10[c] + d20[c], e11 = d11[c] + d21[c], e12 = d12[c] + d22[c], e13 = d13[c] + d23[c];
            float e20 = d20[c] - d10[c], e21 = d21[c] - d11[c], e22 = d22[c] - d12[c], e23 = d23[c] - d13[c];
            float e30 = d10[c] - d30[c], e31 = d11[c] - d31[c], e32 = d12[c] - d32[c], e33 = d13[c] - d33[c];
            /* rows: e B, positions a * 4 .. a * 4 + 3 from row a of e */
#define AMBIENT_WINO_B_ROW(a, e0, e1, e2, e3) \
            out[(a * 4 + 0) * ps + c] = e0 - e2;  \
            out[(a * 4 + 1) * ps + c] = e1 + e2;  \
            out[(a * 4 + 2) * ps + c] = e2 - e1;  \
            out[(a * 4 + 3) * ps + c] = e1 - e3;
            AMBIENT_WINO_B_ROW(0, e00, e01, e02, e03)
            AMBIENT_WINO_B_ROW(1, e10, e11, e12, e13)
            AMBIENT_WINO_B_ROW(2, e20, e21, e22, e23)
            AMBIENT_WINO_B_ROW(3, e30, e31, e32, e33)
#undef AMBIENT_WINO_B_ROW
        }
    }
}

/* ---- Output transform of rows tiles starting at t0 from m[pos][r][cout] (row stride cout). */
SIMD_CLONES static void transform_output(const wino_problem *pb, int64_t t0, int64_t rows, const float *restrict m) {
    const int64_t cout = pb->cout, per_image = pb->th * pb->tw, pos_stride = pb->block * cout;
    const float beta = pb->beta;
    for (int64_t r = 0; r < rows; r++) {
        int64_t t = t0 + r, img = t / per_image, ty = (t % per_image) / pb->tw, tx = t % pb->tw;
        int64_t y0 = 2 * ty, x0 = 2 * tx;
        int ny = y0 + 1 < pb->h ? 2 : 1, nx = x0 + 1 < pb->w ? 2 : 1;
        float *o00 = pb->dst + ((img * pb->h + y0) * pb->w + x0) * cout;
        float *o01 = o00 + cout, *o10 = o00 + pb->w * cout, *o11 = o10 + cout;
        const float *in = m + r * cout;
        if (ny == 2 && nx == 2 && beta == 0.0f) {
            for (int64_t c = 0; c < cout; c++) {
                float s[2][4];
                for (int b = 0; b < 4; b++) {
                    float m0 = in[b * pos_stride + c], m1 = in[(4 + b) * pos_stride + c];
                    float m2 = in[(8 + b) * pos_stride + c], m3 = in[(12 + b) * pos_stride + c];
                    s[0][b] = m0 + m1 + m2;
                    s[1][b] = m1 - m2 - m3;
                }
                o00[c] = s[0][0] + s[0][1] + s[0][2];
                o01[c] = s[0][1] - s[0][2] - s[0][3];
                o10[c] = s[1][0] + s[1][1] + s[1][2];
                o11[c] = s[1][1] - s[1][2] - s[1][3];
            }
            continue;
        }
        float *outs[4] = {o00, o01, o10, o11};
        for (int64_t c = 0; c < cout; c++) {
            float s[2][4];
            for (int b = 0; b < 4; b++) {
                float m0 = in[b * pos_stride + c], m1 = in[(4 + b) * pos_stride + c];
                float m2 = in[(8 + b) * pos_stride + c], m3 = in[(12 + b) * pos_stride + c];
                s[0][b] = m0 + m1 + m2;
                s[1][b] = m1 - m2 - m3;
            }
            float o[4] = {s[0][0] + s[0][1] + s[0][2], s[0][1] - s[0][2] - s[0][3], s[1][0] + s[1][1] + s[1][2],
                          s[1][1] - s[1][2] - s[1][3]};
            for (int q = 0; q < 4; q++) {
                if ((q >> 1) >= ny || (q & 1) >= nx) continue;
                float *p = outs[q] + c;
                *p = beta == 0.0f ? o[q] : o[q] + beta * *p;
            }
        }
    }
}

/* Channels per step of the F(4x4) transforms: each goes through a small temporary in two
 * 1-D passes (36 live pointers and values in one loop would not stay in registers). */
#define WINO6_CHUNK 16

/* The input transform of F(4x4), as transform_input: 36 positions. */
SIMD_CLONES static void transform_input6(const wino_problem *pb, int64_t t0, int rows, int64_t ld, const float *zero,
                                         float *restrict v) {
    const int64_t cin = pb->cin, per_image = pb->th * pb->tw, ps = (int64_t)rows * ld;
    float e[6][6][WINO6_CHUNK]; /* e[u][b] = (B^T d)[u][b], per channel of the step */
    for (int r = 0; r < rows; r++) {
        int64_t t = t0 + r, img = t / per_image, ty = (t % per_image) / pb->tw, tx = t % pb->tw;
        const float *d[36];
        for (int a = 0; a < 6; a++)
            for (int b = 0; b < 6; b++) {
                int64_t yy = 4 * ty - 1 + a, xx = 4 * tx - 1 + b;
                d[a * 6 + b] = (yy < 0 || yy >= pb->h || xx < 0 || xx >= pb->w)
                                   ? zero
                                   : pb->src + ((img * pb->h + yy) * pb->w + xx) * cin;
            }
        float *restrict out = v + r * ld;
        for (int64_t c0 = 0; c0 < cin; c0 += WINO6_CHUNK) {
            const int len = (int)min64(WINO6_CHUNK, cin - c0);
            for (int b = 0; b < 6; b++) {
                const float *restrict s0 = d[b] + c0, *restrict s1 = d[6 + b] + c0, *restrict s2 = d[12 + b] + c0;
                const float *restrict s3 = d[18 + b] + c0, *restrict s4 = d[24 + b] + c0, *restrict s5 = d[30 + b] + c0;
#pragma omp simd
                for (int c = 0; c < len; c++) {
                    AMBIENT_WINO6_BT(s0[c], s1[c], s2[c], s3[c], s4[c], s5[c], e[0][b][c], e[1][b][c], e[2][b][c],
                                     e[3][b][c], e[4][b][c], e[5][b][c])
                }
            }
            for (int u = 0; u < 6; u++) {
                float *restrict o = out + (u * 6) * ps + c0;
#pragma omp simd
                for (int c = 0; c < len; c++) {
                    AMBIENT_WINO6_BT(e[u][0][c], e[u][1][c], e[u][2][c], e[u][3][c], e[u][4][c], e[u][5][c], o[c],
                                     o[ps + c], o[2 * ps + c], o[3 * ps + c], o[4 * ps + c], o[5 * ps + c])
                }
            }
        }
    }
}

/* The output transform of F(4x4), as transform_output: tiles at the image's right or bottom
 * edge write only the pixels inside it. */
SIMD_CLONES static void transform_output6(const wino_problem *pb, int64_t t0, int64_t rows, const float *restrict m) {
    const int64_t cout = pb->cout, per_image = pb->th * pb->tw, pos_stride = pb->block * cout;
    const float beta = pb->beta;
    float s[4][6][WINO6_CHUNK]; /* s[i][b] = (A^T M)[i][b], per channel of the step */
    for (int64_t r = 0; r < rows; r++) {
        int64_t t = t0 + r, img = t / per_image, ty = (t % per_image) / pb->tw, tx = t % pb->tw;
        int64_t y0 = 4 * ty, x0 = 4 * tx;
        int ny = (int)min64(4, pb->h - y0), nx = (int)min64(4, pb->w - x0);
        const float *in = m + r * cout;
        for (int64_t c0 = 0; c0 < cout; c0 += WINO6_CHUNK) {
            const int len = (int)min64(WINO6_CHUNK, cout - c0);
            for (int b = 0; b < 6; b++) {
                const float *restrict m0 = in + b * pos_stride + c0;
#pragma omp simd
                for (int c = 0; c < len; c++) {
                    AMBIENT_WINO6_AT(m0[c], m0[6 * pos_stride + c], m0[12 * pos_stride + c], m0[18 * pos_stride + c],
                                     m0[24 * pos_stride + c], m0[30 * pos_stride + c], s[0][b][c], s[1][b][c], s[2][b][c],
                                     s[3][b][c])
                }
            }
            for (int i = 0; i < ny; i++) {
                float *restrict o = pb->dst + ((img * pb->h + y0 + i) * pb->w + x0) * cout + c0;
                if (nx == 4 && beta == 0.0f) {
#pragma omp simd
                    for (int c = 0; c < len; c++) {
                        AMBIENT_WINO6_AT(s[i][0][c], s[i][1][c], s[i][2][c], s[i][3][c], s[i][4][c], s[i][5][c], o[c],
                                         o[cout + c], o[2 * cout + c], o[3 * cout + c])
                    }
                    continue;
                }
                for (int c = 0; c < len; c++) {
                    float q[4];
                    AMBIENT_WINO6_AT(s[i][0][c], s[i][1][c], s[i][2][c], s[i][3][c], s[i][4][c], s[i][5][c], q[0], q[1],
                                     q[2], q[3])
                    for (int j = 0; j < nx; j++) {
                        float *p = o + j * cout + c;
                        *p = beta == 0.0f ? q[j] : q[j] + beta * *p;
                    }
                }
            }
        }
    }
}

/* The tile AMBIENT_WINOGRAD_TILE=2 or 4 forces (F(2x2) rounds closer to the direct sum; the
 * tests run both), else 0. */
static int forced_tile(void) {
    const char *forced = getenv("AMBIENT_WINOGRAD_TILE");
    return forced != NULL && (strcmp(forced, "2") == 0 || strcmp(forced, "4") == 0) ? forced[0] - '0' : 0;
}

/* Whether F(4x4) computes fewer positions than F(2x2) by a margin: 36 per 4x4 tile against 16
 * per 2x2 tile, partial tiles at the edges counted whole. */
static int f4_fewer_positions(int64_t h, int64_t w) {
    double f4 = 36.0 * (double)ceil_div(h, 4) * (double)ceil_div(w, 4);
    double f2 = 16.0 * (double)ceil_div(h, 2) * (double)ceil_div(w, 2);
    return f4 <= 0.75 * f2;
}

/* Forward pass and input gradient: F(4x4) where it saves positions and the image has enough
 * tiles to carry its larger U (36 c_in c_out, transformed per call and streamed once per
 * block): measured on one core of this project's AMD EPYC, N = 32: 16x16 1.33x faster at 128
 * and 256 channels, 8x8 1.15x at 128 -> 128 but 0.9x at 256 -> 256, 4x4 0.66x. The choice
 * ignores the batch size, so that an image's result does not depend on the batch it is in. */
static int winograd_tile(int64_t h, int64_t w, int64_t cin, int64_t cout) {
    if (forced_tile()) return forced_tile();
    double tiles4 = (double)ceil_div(h, 4) * (double)ceil_div(w, 4);
    return f4_fewer_positions(h, w) && tiles4 >= 3.0 * (double)cin * (double)cout / 16384.0 ? 4 : 2;
}

/* Weight gradient: F(4x4) wherever it saves positions, having no U to stream (1.4x to 1.5x
 * faster than F(2x2) from 4x4 to 32x32 images, 128 and 256 channels, same machine). */
static int winograd_weight_tile(int64_t h, int64_t w) {
    if (forced_tile()) return forced_tile();
    return f4_fewer_positions(h, w) ? 4 : 2;
}

int ambient_conv2d_winograd_applies(int64_t h, int64_t w) {
    const char *algo = getenv("AMBIENT_CONV_ALGO");
    if (algo != NULL && strcmp(algo, "gemm") == 0) return 0;
    /* a 1-pixel-wide image wastes at least half of every tile */
    return h >= 2 && w >= 2;
}

int ambient_conv2d_winograd(int64_t n, int64_t h, int64_t w, int64_t cin, int64_t cout, const float *src,
                            const float *weight, int flipped, float beta, float *dst, int threads) {
    const ambient_cpu_kernels *kern = ambient_cpu_kernels_get();
    const int mr = kern->mr, nr = kern->nr;
    const int tile = winograd_tile(h, w, cin, cout), positions = (tile + 2) * (tile + 2);
    void (*const transform_in)(const wino_problem *, int64_t, int, int64_t, const float *, float *) =
        tile == 4 ? transform_input6 : transform_input;
    void (*const transform_out)(const wino_problem *, int64_t, int64_t, const float *) =
        tile == 4 ? transform_output6 : transform_output;
    wino_problem pb = {n, h, w, cin, cout, tile, positions, ceil_div(h, tile), ceil_div(w, tile), 0, 0, 0, 0,
                       src, weight, flipped, beta, dst};
    pb.tiles = n * pb.th * pb.tw;
    pb.block = block_tiles(kern, positions, cin, cout, pb.tiles);
    int64_t steps = ceil_div(cin, kern->kc * 5 / 4);
    pb.kc_step = round_up(ceil_div(cin, steps), 16);
    pb.ncols_pad = round_up(cout, nr);
    const int64_t col_tiles = pb.ncols_pad / nr, blocks = ceil_div(pb.tiles, pb.block);
    if (threads > blocks) threads = (int)blocks;

    const int64_t b_floats = round_up(positions * cin * pb.ncols_pad, 16), z_floats = round_up(cin, 16);
    const int64_t taps_floats = flipped ? 0 : round_up(9 * cin * pb.ncols_pad, 16);
    /* Row-major V (gemm_tile_rows): a row stride that is a multiple of 128 floats would put
     * the 14 rows a micro-kernel reads at once into a few L1 sets; one more cache line
     * spreads them. mr rows of slack: see the block loop. */
    const int64_t lda = cin % 128 == 0 ? cin + 16 : cin;
    /* ... and only while a micro-kernel's 14 rows fit in half of L1 (at 512 channels the
     * packed sliver, one stream instead of 14, was faster: 8x8, 512 -> 512) */
    const int rows_kernel = kern->gemm_tile_rows != NULL && cin <= 256;
    const int64_t a_floats = round_up(positions * pb.block * lda + mr * lda, 16);
    const int64_t v_floats = round_up(positions * mr * cin, 16), m_floats = round_up(positions * pb.block * cout, 16);
    const int64_t p_floats = round_up(9 * nr, 16), thread_floats = a_floats + v_floats + m_floats + p_floats;
    float *scratch = ambient_scratch_take(&winograd_scratch_slot, b_floats + z_floats + taps_floats + threads * thread_floats);
    if (scratch == NULL)
        return ambient_fail(AMBIENT_STATUS_OUT_OF_MEMORY, "ambient_conv2d: cannot allocate Winograd buffers");
    float *bpack = scratch, *zero = scratch + b_floats;
    memset(zero, 0, (size_t)z_floats * sizeof(float));

#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        float *taps = scratch + b_floats + z_floats;
        float *apack = taps + taps_floats + omp_get_thread_num() * thread_floats;
        float *vbuf = apack + a_floats, *mbuf = vbuf + v_floats, *pad = mbuf + m_floats;
        if (!flipped) {
            /* each sliver's filters as taps x nr: a transpose, which the packing kernel does */
#pragma omp for schedule(static)
            for (int64_t jt = 0; jt < col_tiles; jt++)
                kern->pack_transposed(9 * cin, (int)min64(nr, cout - jt * nr), nr, weight + jt * nr * 9 * cin, 9 * cin,
                                      taps + jt * 9 * cin * nr);
        }
#pragma omp for schedule(static)
        for (int64_t i = 0; i < col_tiles * cin; i++) transform_weight_sliver(&pb, nr, i / cin, i % cin, taps, pad, bpack);

        /* Each thread its own equal range of tiles (whole slivers), in blocks: with a few
         * dozen blocks, handing them out one by one left a thread idle for half a block at
         * the end of most calls. */
        const int64_t slivers = ceil_div(pb.tiles, mr), tid = omp_get_thread_num(), team = omp_get_num_threads();
        const int64_t range_end = min64(slivers * (tid + 1) / team * mr, pb.tiles);
        for (int64_t t0 = slivers * tid / team * mr; t0 < range_end; t0 += pb.block) {
            int64_t rows = min64(pb.block, range_end - t0);
            if (rows_kernel) {
                /* V for the block row-major, [pos][rows][cin], which gemm_tile_rows reads as it
                 * is; the last sliver of the last position reads up to mr - 1 rows past the
                 * block, which stay zero */
                transform_in(&pb, t0, (int)rows, lda, zero, apack);
                if (rows % mr)
                    memset(apack + positions * rows * lda, 0, (size_t)((mr - rows % mr) * lda) * sizeof(float));
            } else {
                /* V for the block, packed: apack + pos * block * cin + sliver * mr * cin + k * mr */
                for (int64_t ir = 0; ir < rows; ir += mr) {
                    int r = (int)min64(mr, rows - ir);
                    transform_in(&pb, t0 + ir, r, cin, zero, vbuf);
                    for (int pos = 0; pos < positions; pos++)
                        kern->pack_transposed(cin, r, mr, vbuf + pos * r * cin, cin,
                                              apack + pos * pb.block * cin + ir * cin);
                }
            }
            for (int pos = 0; pos < positions; pos++) {
                const float *b = bpack + pos * cin * pb.ncols_pad;
                float *mpos = mbuf + pos * pb.block * cout;
                for (int64_t pc = 0; pc < cin; pc += pb.kc_step) {
                    int64_t kc = min64(pb.kc_step, cin - pc);
                    float bt = pc == 0 ? 0.0f : 1.0f;
                    for (int64_t jt = 0; jt < col_tiles; jt++) {
                        int64_t j = jt * nr;
                        int cols = (int)min64(nr, cout - j);
                        for (int64_t ir = 0; ir < rows; ir += mr) {
                            int r = (int)min64(mr, rows - ir);
                            if (rows_kernel)
                                kern->gemm_tile_rows(kc, apack + (pos * rows + ir) * lda + pc, lda, b + j * cin + pc * nr,
                                                     1.0f, bt, mpos + ir * cout + j, cout, r, cols);
                            else
                                kern->gemm_tile(kc, apack + pos * pb.block * cin + ir * cin + pc * mr,
                                                b + j * cin + pc * nr, 1.0f, bt, mpos + ir * cout + j, cout, r, cols);
                        }
                    }
                }
            }
            transform_out(&pb, t0, rows, mbuf);
        }
    }
    ambient_scratch_give(&winograd_scratch_slot, scratch);
    return AMBIENT_STATUS_OK;
}

/* ---- Weight gradient -------------------------------------------------------------------------
 *
 * The weight gradient is the transpose of the map W -> y for fixed x, so the same tiles give
 *   dW = G'^T [ sum over tiles (A' dy_t A'^T) o (B^T d_t B) ] G'
 * for each 2x2 tile dy_t of the output gradient and its 4x4 input patch d_t (zero outside the
 * image, which also covers the half tiles of odd sizes), with
 *   A' = [1 0; 1 1; 1 -1; 0 1],  G' = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 -1]
 * (A and G of the forward pass with the sign of their last row flipped in both, which cancels
 * and spares the negations). The sum over tiles is, for each transform position (u, v), one
 * matrix product with K = tiles:  dU_uv[c_out, c_in] = Y_uv^T[c_out, tiles] * V_uv[tiles, c_in],
 * 16 x (c_out c_in) multiply-adds per tile instead of the direct 36 x (c_out c_in) per 2x2
 * pixels; the 3x3 result of the final transform is tiny.
 *
 * Work: one item per thread, (group of rows u, range of tiles), each summing into its own dU
 * blocks, so the result does not depend on scheduling; the end sums the ranges, applies G'
 * and beta. An item walks its tiles in chunks of kc, up to two rows u (8 positions) at a time:
 * it transforms the chunk straight into the micro-kernel's packed layouts (Y as A: slivers of
 * mr c_out rows; V as B: slivers of nr c_in columns), each source pixel loaded once for all the
 * positions, then runs the 8 products on them. kc is sized so that the chunk's packed panels
 * stay in L2; dU is read and written once per chunk.
 */

typedef struct {
    int64_t n, h, w, cin, cout, th, tw, tiles;
    int tile, alpha;                            /* 2 and 4 (F(2x2)), or 4 and 6 (F(4x4)) */
    int64_t ranges, kc_max, rows_pad, cols_pad; /* dU_uv is rows_pad (c_out) x cols_pad (c_in) */
    const float *x, *dy, *zero;
    float *du; /* (range, position) blocks of rows_pad x cols_pad */
} wino_weight_problem;

/* The alpha x alpha patch d of tile t (x pixels (tile ty - 1 + a, tile tx - 1 + b)) and its
 * tile x tile gradient (dy pixels (tile ty + i, tile tx + j)), zero rows outside the image. */
static void tile_pointers(const wino_weight_problem *pb, int64_t t, const float *d[36], const float *g[16]) {
    int64_t per_image = pb->th * pb->tw, img = t / per_image, ty = (t % per_image) / pb->tw, tx = t % pb->tw;
    const int m = pb->tile, alpha = pb->alpha;
    for (int a = 0; a < alpha; a++)
        for (int b = 0; b < alpha; b++) {
            int64_t yy = m * ty - 1 + a, xx = m * tx - 1 + b;
            d[a * alpha + b] = (yy < 0 || yy >= pb->h || xx < 0 || xx >= pb->w)
                                   ? pb->zero
                                   : pb->x + ((img * pb->h + yy) * pb->w + xx) * pb->cin;
        }
    for (int i = 0; i < m; i++)
        for (int j = 0; j < m; j++) {
            int64_t yy = m * ty + i, xx = m * tx + j;
            g[i * m + j] = (yy >= pb->h || xx >= pb->w) ? pb->zero : pb->dy + ((img * pb->h + yy) * pb->w + xx) * pb->cout;
        }
}

/* Transforms tiles [t0, t0 + kc) for rows u0 .. u0 + nu - 1 (positions q = (u - u0) * 4 + v)
 * into apack + q * a_pos (Y, slivers of mr at stride kc_max * mr) and bpack + q * b_pos (V,
 * slivers of nr at stride kc_max * nr), zero past the channels. Plain C, one channel at a time;
 * the AVX-512 version below does the same 16 channels at a time. */
static void transform_chunk_plain(const wino_weight_problem *pb, int mr, int nr, int u0, int nu, int64_t t0,
                                  int64_t kc, float *apack, int64_t a_pos, float *bpack, int64_t b_pos) {
    for (int64_t p = 0; p < kc; p++) {
        const float *d[36], *g[16];
        tile_pointers(pb, t0 + p, d, g);
        for (int64_t c = 0; c < pb->cols_pad; c++) {
            float *out = bpack + (c / nr) * pb->kc_max * nr + p * nr + c % nr;
            for (int q = 0; q < nu; q++) {
                int u = u0 + q;
                float e[4];
                for (int b = 0; b < 4; b++) {
                    float d0 = 0, d1 = 0, d2 = 0, d3 = 0;
                    if (c < pb->cin) d0 = d[b][c], d1 = d[4 + b][c], d2 = d[8 + b][c], d3 = d[12 + b][c];
                    e[b] = u == 0 ? d0 - d2 : u == 1 ? d1 + d2 : u == 2 ? d2 - d1 : d1 - d3;
                }
                out[(q * 4 + 0) * b_pos] = e[0] - e[2];
                out[(q * 4 + 1) * b_pos] = e[1] + e[2];
                out[(q * 4 + 2) * b_pos] = e[2] - e[1];
                out[(q * 4 + 3) * b_pos] = e[1] - e[3];
            }
        }
        for (int64_t c = 0; c < pb->rows_pad; c++) {
            float *out = apack + (c / mr) * pb->kc_max * mr + p * mr + c % mr;
            float g00 = 0, g01 = 0, g10 = 0, g11 = 0;
            if (c < pb->cout) g00 = g[0][c], g01 = g[1][c], g10 = g[2][c], g11 = g[3][c];
            for (int q = 0; q < nu; q++) {
                int u = u0 + q;
                float r0 = u == 0 ? g00 : u == 1 ? g00 + g10 : u == 2 ? g00 - g10 : g10;
                float r1 = u == 0 ? g01 : u == 1 ? g01 + g11 : u == 2 ? g01 - g11 : g11;
                out[(q * 4 + 0) * a_pos] = r0;
                out[(q * 4 + 1) * a_pos] = r0 + r1;
                out[(q * 4 + 2) * a_pos] = r0 - r1;
                out[(q * 4 + 3) * a_pos] = r1;
            }
        }
    }
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_TRANSFORM_AVX512 1

static inline __attribute__((target("avx512f"))) __mmask16 lanes_mask(int64_t lanes) {
    return lanes <= 0 ? 0 : lanes >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << lanes) - 1);
}

/* The same with AVX-512: V 16 channels at a time (a sliver of nr is nr / 16 aligned vectors),
 * Y one mr sliver at a time with masked loads and stores. Slivers are walked, not found by
 * division: a 64-bit division per vector took a fifth of the time. */
__attribute__((target("avx512f"))) static void transform_chunk_avx512(const wino_weight_problem *pb, int mr, int nr,
                                                                      int u0, int nu, int64_t t0, int64_t kc,
                                                                      float *apack, int64_t a_pos, float *bpack,
                                                                      int64_t b_pos) {
    const __mmask16 store_y = lanes_mask(mr);
    for (int64_t p = 0; p < kc; p++) {
        const float *d[36], *g[16];
        tile_pointers(pb, t0 + p, d, g);
        float *sliver = bpack + p * nr;
        for (int64_t c0 = 0; c0 < pb->cols_pad; c0 += nr, sliver += pb->kc_max * nr)
            for (int half = 0; half < nr; half += 16) {
                int64_t c = c0 + half;
                __mmask16 m = lanes_mask(pb->cin - c);
                float *out = sliver + half;
                __m512 e[2][4];
                for (int b = 0; b < 4; b++) {
                    /* rows u of B^T d: source rows 1 and 2 serve every u, 0 and 3 one each */
                    __m512 d1 = _mm512_maskz_loadu_ps(m, d[4 + b] + c), d2 = _mm512_maskz_loadu_ps(m, d[8 + b] + c);
                    for (int q = 0; q < nu; q++) {
                        int u = u0 + q;
                        if (u == 0) e[q][b] = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, d[b] + c), d2);
                        else if (u == 1) e[q][b] = _mm512_add_ps(d1, d2);
                        else if (u == 2) e[q][b] = _mm512_sub_ps(d2, d1);
                        else e[q][b] = _mm512_sub_ps(d1, _mm512_maskz_loadu_ps(m, d[12 + b] + c));
                    }
                }
                for (int q = 0; q < nu; q++) {
                    _mm512_store_ps(out + (q * 4 + 0) * b_pos, _mm512_sub_ps(e[q][0], e[q][2]));
                    _mm512_store_ps(out + (q * 4 + 1) * b_pos, _mm512_add_ps(e[q][1], e[q][2]));
                    _mm512_store_ps(out + (q * 4 + 2) * b_pos, _mm512_sub_ps(e[q][2], e[q][1]));
                    _mm512_store_ps(out + (q * 4 + 3) * b_pos, _mm512_sub_ps(e[q][1], e[q][3]));
                }
            }
        float *out = apack + p * mr;
        for (int64_t c = 0; c < pb->rows_pad; c += mr, out += pb->kc_max * mr) {
            __mmask16 m = lanes_mask(pb->cout - c);
            __m512 g00 = _mm512_maskz_loadu_ps(m, g[0] + c), g01 = _mm512_maskz_loadu_ps(m, g[1] + c);
            __m512 g10 = _mm512_maskz_loadu_ps(m, g[2] + c), g11 = _mm512_maskz_loadu_ps(m, g[3] + c);
            for (int q = 0; q < nu; q++) {
                int u = u0 + q;
                __m512 r0 = u == 0 ? g00 : u == 1 ? _mm512_add_ps(g00, g10) : u == 2 ? _mm512_sub_ps(g00, g10) : g10;
                __m512 r1 = u == 0 ? g01 : u == 1 ? _mm512_add_ps(g01, g11) : u == 2 ? _mm512_sub_ps(g01, g11) : g11;
                _mm512_mask_storeu_ps(out + (q * 4 + 0) * a_pos, store_y, r0);
                _mm512_mask_storeu_ps(out + (q * 4 + 1) * a_pos, store_y, _mm512_add_ps(r0, r1));
                _mm512_mask_storeu_ps(out + (q * 4 + 2) * a_pos, store_y, _mm512_sub_ps(r0, r1));
                _mm512_mask_storeu_ps(out + (q * 4 + 3) * a_pos, store_y, r1);
            }
        }
    }
}
#endif

/* ---- The weight gradient by F(4x4): dW = G^T [ sum over tiles (A dy_t A^T) o (B^T d_t B) ] G with
 * the 6x6 patches, 4x4 gradient tiles and the matrices of "F(4x4, 3x3)" above (A = (A^T)^T,
 * 6 x 4): 36 products of K = tiles, 2.25 multiply-adds per pixel and channel pair against F(2x2)'s 4. */

/* Row u of A (6 x 4) applied to four values (the "* 1.0f" gives every branch the type of an
 * arithmetic result, which for vectors differs from __m512's; it folds away). */
#define AMBIENT_WINO6_A_ROW(u, g0, g1, g2, g3)                                  \
    ((u) == 0 ? (g0) * 1.0f : (u) == 1 ? ((g0) + (g2)) + ((g1) + (g3))                 \
     : (u) == 2 ? ((g0) + (g2)) - ((g1) + (g3))                                 \
     : (u) == 3 ? ((g0) + 4.0f * (g2)) + 2.0f * ((g1) + 4.0f * (g3))            \
     : (u) == 4 ? ((g0) + 4.0f * (g2)) - 2.0f * ((g1) + 4.0f * (g3)) : (g3) * 1.0f)
/* Row u of B^T applied to six values. */
#define AMBIENT_WINO6_BT_ROW(u, d0, d1, d2, d3, d4, d5)                         \
    ((u) == 0 ? 4.0f * (d0) - 5.0f * (d2) + (d4)                                \
     : (u) == 1 ? ((d3) + (d4)) - 4.0f * ((d1) + (d2))                          \
     : (u) == 2 ? ((d4) - (d3)) + 4.0f * ((d1) - (d2))                          \
     : (u) == 3 ? ((d4) - (d2)) + 2.0f * ((d3) - (d1))                          \
     : (u) == 4 ? ((d4) - (d2)) - 2.0f * ((d3) - (d1)) : 4.0f * (d1) - 5.0f * (d3) + (d5))

/* As transform_chunk_plain, for F(4x4): rows u0 .. u0 + nu - 1, six positions each. */
static void transform_chunk6_plain(const wino_weight_problem *pb, int mr, int nr, int u0, int nu, int64_t t0,
                                   int64_t kc, float *apack, int64_t a_pos, float *bpack, int64_t b_pos) {
    for (int64_t p = 0; p < kc; p++) {
        const float *d[36], *g[16];
        tile_pointers(pb, t0 + p, d, g);
        for (int64_t c = 0; c < pb->cols_pad; c++) {
            float *out = bpack + (c / nr) * pb->kc_max * nr + p * nr + c % nr;
            float col[6][6]; /* col[a][b] = d[a][b][c] */
            for (int k = 0; k < 36; k++) col[k / 6][k % 6] = c < pb->cin ? d[k][c] : 0.0f;
            for (int q = 0; q < nu; q++) {
                int u = u0 + q;
                float e[6];
                for (int b = 0; b < 6; b++)
                    e[b] = AMBIENT_WINO6_BT_ROW(u, col[0][b], col[1][b], col[2][b], col[3][b], col[4][b], col[5][b]);
                for (int v = 0; v < 6; v++)
                    out[(q * 6 + v) * b_pos] = AMBIENT_WINO6_BT_ROW(v, e[0], e[1], e[2], e[3], e[4], e[5]);
            }
        }
        for (int64_t c = 0; c < pb->rows_pad; c++) {
            float *out = apack + (c / mr) * pb->kc_max * mr + p * mr + c % mr;
            float gv[4][4];
            for (int k = 0; k < 16; k++) gv[k / 4][k % 4] = c < pb->cout ? g[k][c] : 0.0f;
            for (int q = 0; q < nu; q++) {
                int u = u0 + q;
                float r[4];
                for (int j = 0; j < 4; j++) r[j] = AMBIENT_WINO6_A_ROW(u, gv[0][j], gv[1][j], gv[2][j], gv[3][j]);
                for (int v = 0; v < 6; v++) out[(q * 6 + v) * a_pos] = AMBIENT_WINO6_A_ROW(v, r[0], r[1], r[2], r[3]);
            }
        }
    }
}

#ifdef HAVE_TRANSFORM_AVX512
/* The same with AVX-512, 16 channels at a time (V) and one mr sliver at a time (Y); the rows
 * u are compile-time constants in each instance, so the row formulas fold. */
static inline __attribute__((always_inline, target("avx512f"))) void
transform_chunk6_body(const wino_weight_problem *pb, int mr, int nr, int u0, int nu, int64_t t0, int64_t kc,
                      float *apack, int64_t a_pos, float *bpack, int64_t b_pos) {
    const __mmask16 store_y = lanes_mask(mr);
    for (int64_t p = 0; p < kc; p++) {
        const float *d[36], *g[16];
        tile_pointers(pb, t0 + p, d, g);
        float *sliver = bpack + p * nr;
        for (int64_t c0 = 0; c0 < pb->cols_pad; c0 += nr, sliver += pb->kc_max * nr)
            for (int half = 0; half < nr; half += 16) {
                int64_t c = c0 + half;
                __mmask16 m = lanes_mask(pb->cin - c);
                float *out = sliver + half;
                __m512 e[3][6];
                for (int b = 0; b < 6; b++) {
                    __m512 x0 = _mm512_maskz_loadu_ps(m, d[b] + c), x1 = _mm512_maskz_loadu_ps(m, d[6 + b] + c);
                    __m512 x2 = _mm512_maskz_loadu_ps(m, d[12 + b] + c), x3 = _mm512_maskz_loadu_ps(m, d[18 + b] + c);
                    __m512 x4 = _mm512_maskz_loadu_ps(m, d[24 + b] + c), x5 = _mm512_maskz_loadu_ps(m, d[30 + b] + c);
                    for (int q = 0; q < nu; q++) e[q][b] = AMBIENT_WINO6_BT_ROW(u0 + q, x0, x1, x2, x3, x4, x5);
                }
                for (int q = 0; q < nu; q++)
                    for (int v = 0; v < 6; v++)
                        _mm512_store_ps(out + (q * 6 + v) * b_pos,
                                        AMBIENT_WINO6_BT_ROW(v, e[q][0], e[q][1], e[q][2], e[q][3], e[q][4], e[q][5]));
            }
        float *out = apack + p * mr;
        for (int64_t c = 0; c < pb->rows_pad; c += mr, out += pb->kc_max * mr) {
            __mmask16 m = lanes_mask(pb->cout - c);
            __m512 gv[16];
            for (int k = 0; k < 16; k++) gv[k] = _mm512_maskz_loadu_ps(m, g[k] + c);
            for (int q = 0; q < nu; q++) {
                int u = u0 + q;
                __m512 r0 = AMBIENT_WINO6_A_ROW(u, gv[0], gv[4], gv[8], gv[12]);
                __m512 r1 = AMBIENT_WINO6_A_ROW(u, gv[1], gv[5], gv[9], gv[13]);
                __m512 r2 = AMBIENT_WINO6_A_ROW(u, gv[2], gv[6], gv[10], gv[14]);
                __m512 r3 = AMBIENT_WINO6_A_ROW(u, gv[3], gv[7], gv[11], gv[15]);
                for (int v = 0; v < 6; v++)
                    _mm512_mask_storeu_ps(out + (q * 6 + v) * a_pos, store_y, AMBIENT_WINO6_A_ROW(v, r0, r1, r2, r3));
            }
        }
    }
}

__attribute__((target("avx512f"))) static void transform_chunk6_avx512(const wino_weight_problem *pb, int mr, int nr,
                                                                       int u0, int nu, int64_t t0, int64_t kc,
                                                                       float *apack, int64_t a_pos, float *bpack,
                                                                       int64_t b_pos) {
    /* the passes two threads (rows 0-2, 3-5) or one (0-2, 3-5) take, then the rest */
    if (u0 == 0 && nu == 3) transform_chunk6_body(pb, mr, nr, 0, 3, t0, kc, apack, a_pos, bpack, b_pos);
    else if (u0 == 3 && nu == 3) transform_chunk6_body(pb, mr, nr, 3, 3, t0, kc, apack, a_pos, bpack, b_pos);
    else transform_chunk6_body(pb, mr, nr, u0, nu, t0, kc, apack, a_pos, bpack, b_pos);
}
#endif

/* dU of rows u0 .. u0 + nu - 1 over the tiles of one range, into the range's blocks. */
static void weight_item(const wino_weight_problem *pb, const ambient_cpu_kernels *kern, int u0, int nu, int64_t range,
                        float *apack, float *bpack) {
    const int mr = kern->mr, nr = kern->nr;
    const int64_t t0 = pb->tiles * range / pb->ranges, t1 = pb->tiles * (range + 1) / pb->ranges;
    const int64_t ldc = pb->cols_pad, block = pb->rows_pad * ldc;
    const int64_t a_pos = pb->rows_pad * pb->kc_max, b_pos = pb->cols_pad * pb->kc_max;
    const int alpha = pb->alpha, pass_rows = pb->tile == 4 ? 3 : 2;
    for (int ub = u0; ub < u0 + nu; ub += pass_rows) {
        int rows = (int)min64(pass_rows, u0 + nu - ub);
        float *du0 = pb->du + (range * alpha * alpha + ub * alpha) * block;
        if (t1 == t0) memset(du0, 0, (size_t)(rows * alpha * block) * sizeof(float));
        for (int64_t tc = t0; tc < t1; tc += pb->kc_max) {
            int64_t kc = min64(pb->kc_max, t1 - tc);
            float beta = tc == t0 ? 0.0f : 1.0f;
#ifdef HAVE_TRANSFORM_AVX512
            if (kern == &ambient_cpu_kernels_avx512 && pb->tile == 4)
                transform_chunk6_avx512(pb, mr, nr, ub, rows, tc, kc, apack, a_pos, bpack, b_pos);
            else if (kern == &ambient_cpu_kernels_avx512)
                transform_chunk_avx512(pb, mr, nr, ub, rows, tc, kc, apack, a_pos, bpack, b_pos);
            else
#endif
            if (pb->tile == 4)
                transform_chunk6_plain(pb, mr, nr, ub, rows, tc, kc, apack, a_pos, bpack, b_pos);
            else
                transform_chunk_plain(pb, mr, nr, ub, rows, tc, kc, apack, a_pos, bpack, b_pos);
            for (int q = 0; q < rows * alpha; q++) {
                const float *a = apack + q * a_pos, *b = bpack + q * b_pos;
                float *du = du0 + q * block;
                for (int64_t j = 0; j < ldc; j += nr)
                    for (int64_t i = 0; i < pb->rows_pad; i += mr)
                        kern->gemm_tile(kc, a + i * pb->kc_max, b + j * pb->kc_max, 1.0f, beta, du + i * ldc + j, ldc,
                                        mr, nr);
            }
        }
    }
}

/* Row o of every position's dU: the ranges' partial sums into the first range (row o is the
 * calling thread's alone). */
SIMD_CLONES static void sum_ranges(const wino_weight_problem *pb, int64_t o) {
    const int64_t block = pb->rows_pad * pb->cols_pad, cin = pb->cin;
    const int positions = pb->alpha * pb->alpha;
    float *base = pb->du + o * pb->cols_pad;
    for (int64_t r = 1; r < pb->ranges; r++)
        for (int pos = 0; pos < positions; pos++) {
            float *restrict into = base + pos * block;
            const float *restrict from = base + (r * positions + pos) * block;
#pragma omp simd
            for (int64_t i = 0; i < cin; i++) into[i] += from[i];
        }
}

/* dW[o, a, b, i] = sum_uv G'[u, a] G'[v, b] dU_uv[o, i] (+ beta dW) for one output channel o,
 * after sum_ranges. */
SIMD_CLONES static void weight_output(const wino_weight_problem *pb, int64_t o, float beta, float *dweight) {
    const int64_t block = pb->rows_pad * pb->cols_pad, cin = pb->cin;
    float *base = pb->du + o * pb->cols_pad;
    /* input channels are the vector lanes: one pointer per position, one per tap */
    const float *restrict m00 = base, *restrict m01 = base + block, *restrict m02 = base + 2 * block,
                          *restrict m03 = base + 3 * block, *restrict m10 = base + 4 * block,
                          *restrict m11 = base + 5 * block, *restrict m12 = base + 6 * block,
                          *restrict m13 = base + 7 * block, *restrict m20 = base + 8 * block,
                          *restrict m21 = base + 9 * block, *restrict m22 = base + 10 * block,
                          *restrict m23 = base + 11 * block, *restrict m30 = base + 12 * block,
                          *restrict m31 = base + 13 * block, *restrict m32 = base + 14 * block,
                          *restrict m33 = base + 15 * block;
    float *restrict out = dweight + o * 9 * cin;
#pragma omp simd
    for (int64_t i = 0; i < cin; i++) {
        /* columns: t[a][v] = sum_u G'[u, a] m[u][v], written out (GCC leaves loops over
         * small local arrays scalar) */
#define AMBIENT_WINO_COLUMN(v, c0, c1, c2, c3)  \
        float t0##v = c0 + 0.5f * (c1 + c2);    \
        float t1##v = 0.5f * (c1 - c2);         \
        float t2##v = 0.5f * (c1 + c2) - c3;
        AMBIENT_WINO_COLUMN(0, m00[i], m10[i], m20[i], m30[i])
        AMBIENT_WINO_COLUMN(1, m01[i], m11[i], m21[i], m31[i])
        AMBIENT_WINO_COLUMN(2, m02[i], m12[i], m22[i], m32[i])
        AMBIENT_WINO_COLUMN(3, m03[i], m13[i], m23[i], m33[i])
#undef AMBIENT_WINO_COLUMN
        /* rows: w[a][b] = sum_v t[a][v] G'[v, b], stored at tap a * 3 + b */
#define AMBIENT_WINO_ROW(a, t0, t1, t2, t3)                                         \
        {                                                                           \
            float w0 = t0 + 0.5f * (t1 + t2), w1 = 0.5f * (t1 - t2), w2 = 0.5f * (t1 + t2) - t3; \
            float *d = out + a * 3 * cin + i;                                       \
            if (beta == 0.0f) {                                                     \
                d[0] = w0;                                                          \
                d[cin] = w1;                                                        \
                d[2 * cin] = w2;                                                    \
            } else {                                                                \
                d[0] = w0 + beta * d[0];                                            \
                d[cin] = w1 + beta * d[cin];                                        \
                d[2 * cin] = w2 + beta * d[2 * cin];                                \
            }                                                                       \
        }
        AMBIENT_WINO_ROW(0, t00, t01, t02, t03)
        AMBIENT_WINO_ROW(1, t10, t11, t12, t13)
        AMBIENT_WINO_ROW(2, t20, t21, t22, t23)
#undef AMBIENT_WINO_ROW
    }
}

/* As weight_output, for F(4x4): dW[o, a, b, i] = sum_uv G[u, a] G[v, b] dU_uv[o, i], after
 * sum_ranges. */
SIMD_CLONES static void weight_output6(const wino_weight_problem *pb, int64_t o, float beta, float *dweight) {
    const int64_t block = pb->rows_pad * pb->cols_pad, cin = pb->cin;
    float *base = pb->du + o * pb->cols_pad;
    float *restrict out = dweight + o * 9 * cin;
    for (int64_t i0 = 0; i0 < cin; i0 += WINO6_CHUNK) {
        const int len = (int)min64(WINO6_CHUNK, cin - i0);
        float t[3][6][WINO6_CHUNK]; /* t[a][v] = sum_u G[u, a] dU_uv */
        for (int v = 0; v < 6; v++) {
            const float *restrict m = base + v * block + i0;
#pragma omp simd
            for (int c = 0; c < len; c++) {
                float m0 = m[c], m1 = m[6 * block + c], m2 = m[12 * block + c], m3 = m[18 * block + c];
                float m4 = m[24 * block + c], m5 = m[30 * block + c];
                t[0][v][c] = 0.25f * m0 - (1.0f / 6.0f) * (m1 + m2) + (1.0f / 24.0f) * (m3 + m4);
                t[1][v][c] = (1.0f / 6.0f) * (m2 - m1) + (1.0f / 12.0f) * (m3 - m4);
                t[2][v][c] = (1.0f / 6.0f) * ((m3 + m4) - (m1 + m2)) + m5;
            }
        }
        for (int a = 0; a < 3; a++) {
            float *restrict w0 = out + a * 3 * cin + i0;
#pragma omp simd
            for (int c = 0; c < len; c++) {
                float m0 = t[a][0][c], m1 = t[a][1][c], m2 = t[a][2][c], m3 = t[a][3][c], m4 = t[a][4][c], m5 = t[a][5][c];
                float b0 = 0.25f * m0 - (1.0f / 6.0f) * (m1 + m2) + (1.0f / 24.0f) * (m3 + m4);
                float b1 = (1.0f / 6.0f) * (m2 - m1) + (1.0f / 12.0f) * (m3 - m4);
                float b2 = (1.0f / 6.0f) * ((m3 + m4) - (m1 + m2)) + m5;
                if (beta == 0.0f) {
                    w0[c] = b0;
                    w0[cin + c] = b1;
                    w0[2 * cin + c] = b2;
                } else {
                    w0[c] = b0 + beta * w0[c];
                    w0[cin + c] = b1 + beta * w0[cin + c];
                    w0[2 * cin + c] = b2 + beta * w0[2 * cin + c];
                }
            }
        }
    }
}

static int64_t gcd64(int64_t a, int64_t b) { return b == 0 ? a : gcd64(b, a % b); }

int ambient_conv2d_winograd_weight_applies(int64_t h, int64_t w, int64_t cin, int64_t cout) {
    if (!ambient_conv2d_winograd_applies(h, w)) return 0;
    /* The products pad c_out to mr rows and c_in to nr columns: with few input channels the
     * padding costs more than Winograd saves. Multiply-adds per 2x2 pixels, against the implicit
     * GEMM's (which pads 9 c_in to mr and c_out to nr); measured break-even near 0.9 (c_in = 16,
     * c_out = 64 or 128: 0.91 here, 0.93-0.99 in time), 0.75 leaves a margin for the transforms. */
    const ambient_cpu_kernels *kern = ambient_cpu_kernels_get();
    double wino = 16.0 * (double)round_up(cout, kern->mr) * (double)round_up(cin, kern->nr);
    double gemm = 4.0 * (double)round_up(9 * cin, kern->mr) * (double)round_up(cout, kern->nr);
    return wino < 0.75 * gemm;
}

int ambient_conv2d_winograd_weight(int64_t n, int64_t h, int64_t w, int64_t cin, int64_t cout, const float *x,
                                   const float *dy, float beta, float *dweight, int threads) {
    const ambient_cpu_kernels *kern = ambient_cpu_kernels_get();
    const int tile = winograd_weight_tile(h, w), alpha = tile + 2;
    wino_weight_problem pb = {.n = n, .h = h, .w = w, .cin = cin, .cout = cout, .th = ceil_div(h, tile),
                              .tw = ceil_div(w, tile), .tile = tile, .alpha = alpha};
    pb.tiles = n * pb.th * pb.tw;
    /* one item per thread: `groups` groups of rows u times `ranges` ranges of tiles */
    const int groups = (int)gcd64(alpha, threads), rows_per_group = alpha / groups;
    pb.ranges = threads / groups;
    pb.rows_pad = round_up(cout, kern->mr);
    pb.cols_pad = round_up(cin, kern->nr);
    /* positions per pass (weight_item: rows u two (F(2x2)) or three (F(4x4)) at a time); kc:
     * their packed panels in about 512 KiB of L2 */
    const int positions = (int)min64(tile == 4 ? 3 : 2, rows_per_group) * alpha;
    int64_t kc = (INT64_C(512) << 10) / (positions * 4 * (pb.rows_pad + pb.cols_pad)) / 16 * 16;
    if (kc < 32) kc = 32;
    pb.kc_max = min64(kc, round_up(ceil_div(pb.tiles, pb.ranges), 16));
    pb.x = x;
    pb.dy = dy;

    /* sizes near the header's limits would overflow the products below: refuse them first */
    double floats = alpha * alpha * (double)pb.ranges * (double)pb.rows_pad * (double)pb.cols_pad +
                    (double)threads * positions * (double)pb.kc_max * (double)(pb.rows_pad + pb.cols_pad);
    if (floats > 0x1p56)
        return ambient_fail(AMBIENT_STATUS_OUT_OF_MEMORY, "ambient_conv2d_backward_weight: %g floats of Winograd buffers are too many",
                            floats);
    const int64_t a_floats = positions * pb.rows_pad * pb.kc_max, b_floats = positions * pb.cols_pad * pb.kc_max;
    const int64_t z_floats = round_up((cin > cout ? cin : cout) + 32, 16);
    const int64_t du_floats = pb.ranges * alpha * alpha * pb.rows_pad * pb.cols_pad;
    float *scratch = ambient_scratch_take(&winograd_scratch_slot, z_floats + du_floats + threads * (a_floats + b_floats));
    if (scratch == NULL)
        return ambient_fail(AMBIENT_STATUS_OUT_OF_MEMORY, "ambient_conv2d_backward_weight: cannot allocate Winograd buffers");
    memset(scratch, 0, (size_t)z_floats * sizeof(float));
    pb.zero = scratch;
    pb.du = scratch + z_floats;

#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        float *apack = pb.du + du_floats + omp_get_thread_num() * (a_floats + b_floats), *bpack = apack + a_floats;
#pragma omp for schedule(static)
        for (int item = 0; item < threads; item++)
            weight_item(&pb, kern, (item % groups) * rows_per_group, rows_per_group, item / groups, apack, bpack);
#pragma omp for schedule(static)
        for (int64_t o = 0; o < cout; o++) {
            sum_ranges(&pb, o);
            if (tile == 4) weight_output6(&pb, o, beta, dweight);
            else weight_output(&pb, o, beta, dweight);
        }
    }
    ambient_scratch_give(&winograd_scratch_slot, scratch);
    return AMBIENT_STATUS_OK;
}
