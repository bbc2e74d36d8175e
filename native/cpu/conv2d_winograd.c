/*
 * 3x3 "same" convolution (NHWC, stride 1, pad 1) by Winograd F(2x2, 3x3), used by
 * ambient_conv2d_forward and ambient_conv2d_backward_input (cpu/conv2d.c decides when).
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
 * transforms only add, subtract and halve); F(4x4) would save more but amplifies it.
 *
 * The input gradient is the same convolution of dy with W'[i, t, o] = W[o, 8 - t, i] (the
 * kernel flipped and its channels transposed), so only the weight transform differs.
 *
 * Work: U is transformed and packed once per call (all threads); then threads take blocks of
 * `block` tiles (a multiple of the micro-kernel's mr): input transform (channels vectorised,
 * NHWC keeps them contiguous) into a small row-major buffer, packed per position into the
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
static int64_t block_tiles(const ambient_cpu_kernels *kern, int64_t cin, int64_t cout, int64_t tiles) {
    int64_t budget = (INT64_C(400) << 10) / (16 * 4 * (cin + cout));
    int64_t slivers = budget / kern->mr;
    if (slivers < 1) slivers = 1;
    if (slivers > 8) slivers = 8;
    return min64(slivers * kern->mr, round_up(tiles, kern->mr));
}

/* ---- Weight transform: U_uv[k, j] = (G g_jk G^T)[u, v], packed per position as the GEMM's B
 * (slivers of nr columns, k-major: bpack + pos * cin * ncols_pad + jt * nr * cin + k * nr). */
static void transform_weight_column(const wino_problem *pb, int nr, int64_t j, float *bpack) {
    const int64_t cin = pb->cin, cout = pb->cout, jt = j / nr, jr = j % nr;
    for (int64_t k = 0; k < cin; k++) {
        float g[9];
        for (int t = 0; t < 9; t++)
            g[t] = pb->flipped ? pb->weight[(k * 9 + (8 - t)) * cout + j] : pb->weight[(j * 9 + t) * cin + k];
        /* rows: G g (4 x 3) */
        float r[4][3];
        for (int c = 0; c < 3; c++) {
            float g0 = g[c], g1 = g[3 + c], g2 = g[6 + c];
            r[0][c] = g0;
            r[1][c] = 0.5f * (g0 + g1 + g2);
            r[2][c] = 0.5f * (g0 - g1 + g2);
            r[3][c] = g2;
        }
        for (int u = 0; u < 4; u++) {
            float g0 = r[u][0], g1 = r[u][1], g2 = r[u][2];
            float v[4] = {g0, 0.5f * (g0 + g1 + g2), 0.5f * (g0 - g1 + g2), g2};
            for (int q = 0; q < 4; q++)
                bpack[(u * 4 + q) * cin * pb->ncols_pad + jt * nr * cin + k * nr + jr] = v[q];
        }
    }
}

/* ---- Input transform of rows tiles starting at tile t0 into v[pos][r][cin] (row stride cin). */
SIMD_CLONES static void transform_input(const wino_problem *pb, int64_t t0, int rows, const float *zero,
                                        float *restrict v) {
    const int64_t cin = pb->cin, per_image = pb->th * pb->tw, pos_stride = (int64_t)rows * cin;
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
        float *out = v + r * cin;
        for (int64_t c = 0; c < cin; c++) {
            float e[4][4];
            /* columns: B^T d */
            for (int b = 0; b < 4; b++) {
                float d0 = d[b][c], d1 = d[4 + b][c], d2 = d[8 + b][c], d3 = d[12 + b][c];
                e[0][b] = d0 - d2;
                e[1][b] = d1 + d2;
                e[2][b] = d2 - d1;
                e[3][b] = d1 - d3;
            }
            /* rows: (B^T d) B */
            for (int a = 0; a < 4; a++) {
                float d0 = e[a][0], d1 = e[a][1], d2 = e[a][2], d3 = e[a][3];
                out[(a * 4 + 0) * pos_stride + c] = d0 - d2;
                out[(a * 4 + 1) * pos_stride + c] = d1 + d2;
                out[(a * 4 + 2) * pos_stride + c] = d2 - d1;
                out[(a * 4 + 3) * pos_stride + c] = d1 - d3;
            }
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
    wino_problem pb = {n, h, w, cin, cout, ceil_div(h, 2), ceil_div(w, 2), 0, 0, 0, 0, src, weight, flipped, beta, dst};
    pb.tiles = n * pb.th * pb.tw;
    pb.block = block_tiles(kern, cin, cout, pb.tiles);
    int64_t steps = ceil_div(cin, kern->kc * 5 / 4);
    pb.kc_step = round_up(ceil_div(cin, steps), 16);
    pb.ncols_pad = round_up(cout, nr);
    const int64_t col_tiles = pb.ncols_pad / nr, blocks = ceil_div(pb.tiles, pb.block);
    if (threads > blocks) threads = (int)blocks;

    const int64_t b_floats = round_up(16 * cin * pb.ncols_pad, 16), z_floats = round_up(cin, 16);
    const int64_t a_floats = round_up(16 * pb.block * cin, 16), v_floats = round_up(16 * mr * cin, 16);
    const int64_t m_floats = round_up(16 * pb.block * cout, 16);
    const int64_t thread_floats = a_floats + v_floats + m_floats;
    float *scratch = ambient_scratch_take(&winograd_scratch_slot, b_floats + z_floats + threads * thread_floats);
    if (scratch == NULL)
        return ambient_fail(AMBIENT_STATUS_OUT_OF_MEMORY, "ambient_conv2d: cannot allocate Winograd buffers");
    float *bpack = scratch, *zero = scratch + b_floats;
    memset(zero, 0, (size_t)z_floats * sizeof(float));

#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        /* pad columns of the last sliver stay zero */
#pragma omp for schedule(static)
        for (int64_t jt = 0; jt < col_tiles; jt++) {
            if ((jt + 1) * nr > cout)
                for (int pos = 0; pos < 16; pos++)
                    memset(bpack + pos * cin * pb.ncols_pad + jt * nr * cin, 0, (size_t)(nr * cin) * sizeof(float));
        }
#pragma omp for schedule(static)
        for (int64_t j = 0; j < cout; j++) transform_weight_column(&pb, nr, j, bpack);

        float *apack = scratch + b_floats + z_floats + omp_get_thread_num() * thread_floats;
        float *vbuf = apack + a_floats, *mbuf = vbuf + v_floats;
#pragma omp for schedule(dynamic, 1)
        for (int64_t blk = 0; blk < blocks; blk++) {
            int64_t t0 = blk * pb.block, rows = min64(pb.block, pb.tiles - t0);
            /* V for the block, packed: apack + pos * block * cin + sliver * mr * cin + k * mr */
            for (int64_t ir = 0; ir < rows; ir += mr) {
                int r = (int)min64(mr, rows - ir);
                transform_input(&pb, t0 + ir, r, zero, vbuf);
                for (int pos = 0; pos < 16; pos++)
                    kern->pack_transposed(cin, r, mr, vbuf + pos * r * cin, cin,
                                          apack + pos * pb.block * cin + ir * cin);
            }
            for (int pos = 0; pos < 16; pos++) {
                const float *a = apack + pos * pb.block * cin, *b = bpack + pos * cin * pb.ncols_pad;
                float *mpos = mbuf + pos * pb.block * cout;
                for (int64_t pc = 0; pc < cin; pc += pb.kc_step) {
                    int64_t kc = min64(pb.kc_step, cin - pc);
                    float bt = pc == 0 ? 0.0f : 1.0f;
                    for (int64_t jt = 0; jt < col_tiles; jt++) {
                        int64_t j = jt * nr;
                        int cols = (int)min64(nr, cout - j);
                        for (int64_t ir = 0; ir < rows; ir += mr)
                            kern->gemm_tile(kc, a + ir * cin + pc * mr, b + j * cin + pc * nr, 1.0f, bt,
                                            mpos + ir * cout + j, cout, (int)min64(mr, rows - ir), cols);
                    }
                }
            }
            transform_output(&pb, t0, rows, mbuf);
        }
    }
    ambient_scratch_give(&winograd_scratch_slot, scratch);
    return AMBIENT_STATUS_OK;
}
