/*
 * Tensor-core matrix products for the CUDA backend (gemm.cu, conv2d.cu, attention_mma.cuh):
 * warp-level mma.sync in inline PTX, sm_80 and newer.
 *
 *   bf16: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 (the default precision)
 *   tf32: mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32
 * Both accumulate in float32; tensors stay float32 at the interface: the operands are
 * converted (bf16 round-to-nearest-even, tf32 round-to-nearest with ties away) while they
 * are staged from global memory into shared memory, so the precision is that of one rounding
 * of each operand, not of the accumulation.
 *
 * A block computes a BM x BN tile of C = op(A) op(B) (each operand given by a "source": a
 * functor that reads element (mn, k) of the float32 operand, zero outside it, so the same block
 * serves GEMM and the implicit-GEMM convolutions) walking the reduction in slices of 64 bytes
 * per row: 32 bf16 or 16 tf32 values. Both operands are stored k-contiguous in shared memory,
 * tile[mn][k] with a row pitch of 80 bytes (20 words: the 16 bytes of padding make the 8 rows
 * that one ldmatrix phase reads fall on 8 different 4-bank groups), double buffered: the next
 * slice is read from global memory into registers (already converted) while the warps multiply
 * the current one. A 32-bit "word" of a tile holds two bf16 (k even in the low half) or one
 * tf32, so that in bytes both precisions are the same kernel: one mma step consumes 8 words
 * (32 bytes) of every row, the ldmatrix addresses are identical, and only the conversion and
 * the mma instruction differ.
 *
 * Warps: WARPS_M x WARPS_N, each owning a (BM / WARPS_M) x (BN / WARPS_N) sub-tile as MT x NT
 * mma tiles of 16 x 8; per step a warp loads its A fragments with one ldmatrix.x4 per 16 rows
 * and its B fragments with one ldmatrix.x4 per 16 columns (two n-tiles).
 *
 * Everything that decides which thread or lane touches which element is a small
 * __host__ __device__ function or template here (fragment layouts from the PTX ISA's "Matrix
 * Fragments for mma.m16n8k16 / m16n8k8", ldmatrix's lane-to-row rule, the staging map, the
 * shared-memory layout, the conversions, the epilogue), so that native/tests/test_cuda_mma.cu
 * can emulate a whole block on the host (ldmatrix and mma.sync from their documented layouts)
 * and compare it with a float64 product. The warp instructions and barriers are __host__
 * __device__ functions too, which a test build routes to native/tests/cuda_emulation/block.h, so that
 * kernel bodies written over them (attention_mma.cuh) run unchanged on the host. That emulation is all the testing this code has had
 * on the machine where it was written: the kernels were compiled for sm_80 and sm_90 but have
 * never run on a GPU.
 */
#ifndef AMBIENT_CUDA_MMA_CUH
#define AMBIENT_CUDA_MMA_CUH

#include <stdint.h>
#include <string.h>

#if defined(__CUDACC__)
#define AMBIENT_HD __host__ __device__ __forceinline__
#else
#define AMBIENT_HD inline
#endif
/* Unrolling matters on the device; the host compiler (the emulation test) would warn. */
#if defined(__CUDA_ARCH__)
#define AMBIENT_UNROLL _Pragma("unroll")
#else
#define AMBIENT_UNROLL
#endif

/* The precisions of matrix products (AMBIENT_CUDA_MATMUL); fp32 runs the SIMT kernels. The values
 * are ambient.h's AMBIENT_PRECISION_* (internal.cuh checks), which ambient_matmul_precision
 * answers; this header does not include ambient.h, whose functions must be declared under the
 * library's visibility rule first. */
enum ambient_cuda_precision { AMBIENT_MATMUL_FP32 = 0, AMBIENT_MATMUL_TF32 = 1, AMBIENT_MATMUL_BF16 = 2 };

/* ---- Fragment layouts (PTX ISA, mma.sync fragments; groupID = lane / 4, tig = lane % 4) ---- */

struct mma_coord {
    int row, col;
};

/* m16n8k16 .bf16, A (16 x 16, row-major): element i in 0..7 of the lane's four registers
 * (register i / 2, low half when i is even). Rows groupID (i in 0, 1, 4, 5) or groupID + 8;
 * columns 2 tig + (i & 1), plus 8 for i >= 4. */
AMBIENT_HD mma_coord mma_bf16_a_coord(int lane, int i) {
    int group = lane >> 2, tig = lane & 3;
    return {group + ((i & 2) ? 8 : 0), tig * 2 + (i & 1) + (i >= 4 ? 8 : 0)};
}

/* m16n8k16 .bf16, B (16 x 8, "col": k runs along a register): element i in 0..3 of the lane's
 * two registers. row (k) = 2 tig + (i & 1), plus 8 for i >= 2; column (n) = groupID. */
AMBIENT_HD mma_coord mma_bf16_b_coord(int lane, int i) {
    int group = lane >> 2, tig = lane & 3;
    return {tig * 2 + (i & 1) + (i >= 2 ? 8 : 0), group};
}

/* m16n8k8 .tf32, A (16 x 8): element (= register) i in 0..3. Rows groupID (a0, a2) or
 * groupID + 8 (a1, a3); columns tig (a0, a1) or tig + 4 (a2, a3). */
AMBIENT_HD mma_coord mma_tf32_a_coord(int lane, int i) {
    int group = lane >> 2, tig = lane & 3;
    return {group + ((i & 1) ? 8 : 0), tig + (i >= 2 ? 4 : 0)};
}

/* m16n8k8 .tf32, B (8 x 8): element (= register) i in 0..1. row (k) = tig (+ 4 for b1),
 * column = groupID. */
AMBIENT_HD mma_coord mma_tf32_b_coord(int lane, int i) {
    int group = lane >> 2, tig = lane & 3;
    return {tig + (i ? 4 : 0), group};
}

/* Accumulators C / D (16 x 8, float32) of both shapes: element i in 0..3. Rows groupID (c0, c1)
 * or groupID + 8 (c2, c3); columns 2 tig + (i & 1). */
AMBIENT_HD mma_coord mma_c_coord(int lane, int i) {
    int group = lane >> 2, tig = lane & 3;
    return {group + (i >= 2 ? 8 : 0), tig * 2 + (i & 1)};
}

/* ---- Shared-memory tiles ------------------------------------------------------------------ */

/* One slice of the reduction: 16 words (64 bytes) per tile row; rows 20 words apart. */
#define MMA_SLICE_WORDS 16
#define MMA_PITCH_WORDS 20
/* Words of one mma step (k16 of bf16, k8 of tf32) in a row. */
#define MMA_STEP_WORDS 8

AMBIENT_HD int mma_tile_word(int row, int word) { return row * MMA_PITCH_WORDS + word; }

/* Values per word, and per slice, of a precision. */
template <int P>
struct mma_precision {
    static_assert(P == AMBIENT_MATMUL_BF16 || P == AMBIENT_MATMUL_TF32, "bf16 or tf32");
    static constexpr int PER_WORD = P == AMBIENT_MATMUL_BF16 ? 2 : 1;
    static constexpr int SLICE_K = MMA_SLICE_WORDS * PER_WORD; /* 32 or 16 */
};

/* ldmatrix.m8n8.x4.b16 reads four 8 x 8 matrices of 16-bit values (8 rows of 16 bytes each):
 * lanes 8q .. 8q + 7 give the addresses of rows 0..7 of matrix q, and lane L receives, in its
 * register q, the 32-bit word at (row L / 4 of matrix q) + 4 (L % 4) bytes: two b16 values
 * (the lower address in the low half), or one float32.
 *
 * A fragments (16 rows x one mma step): matrix q = rows 8 (q & 1) .., words 4 (q >> 1) ..,
 * so registers 0..3 are a0..a3 of the bf16 and the tf32 layouts alike. The word that `lane`
 * points at, for a fragment whose rows start at row0, in mma step `step` of the slice: */
AMBIENT_HD int mma_a_ldmatrix_word(int lane, int row0, int step) {
    return mma_tile_word(row0 + (lane & 15), step * MMA_STEP_WORDS + (lane >> 4) * 4);
}

/* B fragments of two n-tiles (16 tile rows = columns of C): matrix q = rows 8 (q >> 1) ..,
 * words 4 (q & 1) .., so registers 0, 1 are b0, b1 of the n-tile at row0 and registers 2, 3
 * those of the n-tile at row0 + 8. */
AMBIENT_HD int mma_b_ldmatrix_word(int lane, int row0, int step) {
    return mma_tile_word(row0 + (lane & 7) + ((lane >> 4) << 3), step * MMA_STEP_WORDS + ((lane >> 3) & 1) * 4);
}

/* ---- Conversions (the host versions are what the emulation test uses) -------------------- */

AMBIENT_HD uint32_t mma_float_bits(float v) {
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

AMBIENT_HD float mma_bits_float(uint32_t u) {
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* Two floats as bf16 (round to nearest even, NaN kept NaN) in one word, lo in the low half. */
AMBIENT_HD uint32_t mma_pack_bf16x2(float lo, float hi) {
#if defined(__CUDA_ARCH__)
    uint32_t packed;
    /* cvt packs its first source into the upper half. */
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(packed) : "f"(hi), "f"(lo));
    return packed;
#else
    uint32_t half[2];
    const float v[2] = {lo, hi};
    for (int i = 0; i < 2; i++) {
        uint32_t u = mma_float_bits(v[i]);
        if ((u & 0x7fffffffu) > 0x7f800000u) half[i] = (u >> 16) | 0x40u; /* quiet NaN */
        else half[i] = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    }
    return half[0] | (half[1] << 16);
#endif
}

/* A float rounded to tf32 (10 mantissa bits, round to nearest, ties away from zero), as the
 * 32-bit pattern mma .tf32 reads. */
AMBIENT_HD uint32_t mma_tf32_bits(float v) {
#if defined(__CUDA_ARCH__)
    uint32_t t;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(t) : "f"(v));
    return t;
#else
    uint32_t u = mma_float_bits(v);
    if ((u & 0x7f800000u) == 0x7f800000u) return u; /* Inf and NaN unchanged */
    return (u + 0x1000u) & 0xffffe000u;
#endif
}

template <int P>
AMBIENT_HD uint32_t mma_word(float lo, float hi) {
    if (P == AMBIENT_MATMUL_BF16) return mma_pack_bf16x2(lo, hi);
    (void)hi;
    return mma_tf32_bits(lo);
}

/* ---- Division by a run-time constant (pixel coordinates in the loaders) -------------------- */

/* n / d for 32-bit n by multiplication (Granlund and Montgomery's round-up method):
 * shift = ceil(log2 d), mul = floor(2^32 (2^shift - d) / d) + 1, q = (mulhi(n, mul) + n) >> shift
 * with the sum in 64 bits. Exact for every n < 2^32 and 1 <= d < 2^31. */
struct fast_divisor {
    uint32_t d, mul, shift;
};

static inline fast_divisor fast_divisor_make(uint32_t d) {
    uint32_t shift = 0;
    while (shift < 32 && (UINT64_C(1) << shift) < d) shift++;
    uint64_t mul = ((UINT64_C(1) << 32) * ((UINT64_C(1) << shift) - d)) / d + 1;
    return {d, (uint32_t)mul, shift};
}

AMBIENT_HD uint32_t fast_div(const fast_divisor &f, uint32_t n) {
#if defined(__CUDA_ARCH__)
    uint32_t hi = __umulhi(n, f.mul);
#else
    uint32_t hi = (uint32_t)(((uint64_t)n * f.mul) >> 32);
#endif
    return (uint32_t)(((uint64_t)hi + n) >> f.shift);
}

/* ---- Staging: which thread reads which words of a slice ----------------------------------- */

/* A tile of ROWS rows x MMA_SLICE_WORDS words, staged by THREADS threads. Thread `tid` owns
 * the words (row(tid, i), word(tid, j)) for i < NMN, j < NK. K_CONTIG (k runs along memory,
 * as for op(A) of a GEMM without transpose): 8 consecutive threads cover one row's 16 words,
 * two each, so a warp reads 4 rows x 64 or 128 contiguous bytes. Otherwise (mn runs along
 * memory) consecutive threads take consecutive rows of the same word. */
template <int ROWS, int THREADS, bool K_CONTIG>
struct mma_stage_map;

template <int ROWS, int THREADS>
struct mma_stage_map<ROWS, THREADS, true> {
    static constexpr int THREADS_PER_ROW = MMA_SLICE_WORDS / 2;
    static constexpr int ROW_STEP = THREADS / THREADS_PER_ROW;
    static constexpr int NMN = ROWS / ROW_STEP, NK = 2;
    static_assert(ROWS % ROW_STEP == 0, "whole rows per thread");
    AMBIENT_HD static int row(int tid, int i) { return tid / THREADS_PER_ROW + i * ROW_STEP; }
    AMBIENT_HD static int word(int tid, int j) { return (tid % THREADS_PER_ROW) * 2 + j; }
};

template <int ROWS, int THREADS>
struct mma_stage_map<ROWS, THREADS, false> {
    static constexpr int TM = ROWS < THREADS ? ROWS : THREADS;
    static constexpr int NMN = ROWS / TM;
    static constexpr int WORD_STEP = THREADS / TM;
    static constexpr int NK = MMA_SLICE_WORDS / WORD_STEP;
    static_assert(ROWS % TM == 0 && MMA_SLICE_WORDS % WORD_STEP == 0, "whole words per thread");
    AMBIENT_HD static int row(int tid, int i) { return tid % TM + i * TM; }
    AMBIENT_HD static int word(int tid, int j) { return tid / TM + j * WORD_STEP; }
};

/* One thread's part of staging an operand. SRC is a source (see conv2d_operands.cuh and
 * gemm_operand below): SRC::K_CONTIG picks the map, at_mn(mn) decodes a tile row once per
 * block, at_k(k, k_end) decodes a reduction index once per slice (invalid past k_end), and
 * load(mn_state, k_state) reads the float32 element or returns 0 outside the operand. */
template <int P, int ROWS, int THREADS, class SRC>
struct mma_stager {
    using map = mma_stage_map<ROWS, THREADS, SRC::K_CONTIG>;
    static constexpr int PER_WORD = mma_precision<P>::PER_WORD;
    typename SRC::mn_state rows[map::NMN];
    uint32_t words[map::NMN][map::NK];

    /* Tile rows mn0 .. mn0 + ROWS - 1. */
    AMBIENT_HD void init(const SRC &src, int tid, int64_t mn0) {
AMBIENT_UNROLL
        for (int i = 0; i < map::NMN; i++) rows[i] = src.at_mn(mn0 + map::row(tid, i));
    }

    /* words <- the slice that starts at k0, converted; zero at k >= k_end. */
    AMBIENT_HD void fetch(const SRC &src, int tid, int64_t k0, int64_t k_end) {
AMBIENT_UNROLL
        for (int j = 0; j < map::NK; j++) {
            const int64_t k = k0 + (int64_t)map::word(tid, j) * PER_WORD;
            typename SRC::k_state k_lo = src.at_k(k, k_end);
            typename SRC::k_state k_hi = src.at_k(PER_WORD == 2 ? k + 1 : k, k_end);
AMBIENT_UNROLL
            for (int i = 0; i < map::NMN; i++)
                words[i][j] = mma_word<P>(src.load(rows[i], k_lo), PER_WORD == 2 ? src.load(rows[i], k_hi) : 0.0f);
        }
    }

    AMBIENT_HD void store(uint32_t *tile, int tid) const {
AMBIENT_UNROLL
        for (int i = 0; i < map::NMN; i++) {
AMBIENT_UNROLL
            for (int j = 0; j < map::NK; j++) tile[mma_tile_word(map::row(tid, i), map::word(tid, j))] = words[i][j];
        }
    }
};

/* ---- The operand of a GEMM, and the output ------------------------------------------------- */

/* Element (mn, k) of a row-major float32 matrix: x[mn * ld + k] when K_CONTIG_ (op(A) not
 * transposed, op(B) transposed), x[k * ld + mn] otherwise; extent rows of mn. */
template <bool K_CONTIG_>
struct gemm_operand {
    static constexpr bool K_CONTIG = K_CONTIG_;
    const float *x;
    int64_t ld, extent;
    struct mn_state {
        const float *p;
        bool valid;
    };
    struct k_state {
        int64_t offset;
        bool valid;
    };
    AMBIENT_HD mn_state at_mn(int64_t mn) const {
        bool valid = mn < extent;
        return {x + (valid ? (K_CONTIG ? mn * ld : mn) : 0), valid};
    }
    AMBIENT_HD k_state at_k(int64_t k, int64_t k_end) const {
        bool valid = k < k_end;
        return {valid ? (K_CONTIG ? k : k * ld) : 0, valid};
    }
    AMBIENT_HD float load(const mn_state &r, const k_state &c) const {
        return r.valid && c.valid ? r.p[c.offset] : 0.0f;
    }
};

/* out[row, col] = alpha v + beta out[row, col] inside rows x cols (beta == 0 does not read);
 * raw: out = v (split partial products). */
struct mma_output {
    float *out;
    int64_t ld, rows, cols;
    float alpha, beta;
    bool raw;
    AMBIENT_HD void store(int64_t row, int64_t col, float v) const {
        if (row >= rows || col >= cols) return;
        float *p = out + row * ld + col;
        if (raw) *p = v;
        else *p = beta == 0.0f ? alpha * v : alpha * v + beta * *p;
    }
};

/* Writes a warp's accumulators (its sub-tile starts at row0, col0 of the output). */
template <int MT, int NT, class OUT>
AMBIENT_HD void mma_store_accumulators(const OUT &out, int64_t row0, int64_t col0, int lane,
                                       const float (&acc)[MT][NT][4]) {
AMBIENT_UNROLL
    for (int mt = 0; mt < MT; mt++)
AMBIENT_UNROLL
        for (int nt = 0; nt < NT; nt++)
AMBIENT_UNROLL
            for (int i = 0; i < 4; i++) {
                mma_coord c = mma_c_coord(lane, i);
                out.store(row0 + mt * 16 + c.row, col0 + nt * 8 + c.col, acc[mt][nt][i]);
            }
}

/* ---- Block shapes ---------------------------------------------------------------------------- */

template <int BM_, int BN_, int WARPS_M_, int WARPS_N_>
struct mma_config {
    static constexpr int BM = BM_, BN = BN_, WARPS_M = WARPS_M_, WARPS_N = WARPS_N_;
    static constexpr int THREADS = 32 * WARPS_M * WARPS_N;
    static constexpr int WM = BM / WARPS_M, WN = BN / WARPS_N; /* a warp's sub-tile */
    static constexpr int MT = WM / 16, NT = WN / 8;
    static_assert(WM % 16 == 0 && WN % 16 == 0, "whole pairs of n-tiles per warp");
};
/* 128 x 128 tiles, 8 warps of 64 x 32 (64 accumulators per thread), and 64 x 64 tiles,
 * 4 warps of 32 x 32, for problems with too few large tiles to fill the GPU. */
using mma_config_large = mma_config<128, 128, 2, 4>;
using mma_config_small = mma_config<64, 64, 2, 2>;

/* ---- Warp instructions and barriers --------------------------------------------------------- */

/* On the device these are the instructions. A host build that defines AMBIENT_MMA_EMULATION
 * (native/tests/cuda_emulation/block.h) supplies them, so that whole kernels written over them
 * (attention_mma.cuh) run on the host, thread by thread, with the same code; in the library's
 * host pass they are never called. */
#if !defined(__CUDA_ARCH__) && defined(AMBIENT_MMA_EMULATION)
void mma_emulated_ldmatrix_x4(uint32_t (&r)[4], const uint32_t *p);
void mma_emulated_step(int precision, float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]);
float mma_emulated_shfl_xor(float v, int lane_mask);
void mma_emulated_sync_warp(void);
void mma_emulated_sync_block(void);
#define AMBIENT_EMULATED(call) call
#else
#define AMBIENT_EMULATED(call) __builtin_trap()
#endif

AMBIENT_HD void mma_ldmatrix_x4(uint32_t (&r)[4], const uint32_t *p) {
#if defined(__CUDA_ARCH__)
    unsigned address = (unsigned)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(address));
#else
    (void)r, (void)p;
    AMBIENT_EMULATED(mma_emulated_ldmatrix_x4(r, p));
#endif
}

/* d += a b for one 16 x 8 tile and one mma step. */
template <int P>
AMBIENT_HD void mma_step(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__)
    if (P == AMBIENT_MATMUL_BF16)
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                     "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    else
        asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
                     "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    (void)d, (void)a, (void)b;
    AMBIENT_EMULATED(mma_emulated_step(P, d, a, b));
#endif
}

/* v of the lane whose index differs from this one's by lane_mask (bits of 1, 2, 4, 8, 16). */
AMBIENT_HD float mma_shfl_xor(float v, int lane_mask) {
#if defined(__CUDA_ARCH__)
    return __shfl_xor_sync(0xffffffffu, v, lane_mask);
#else
    (void)lane_mask;
    AMBIENT_EMULATED(return mma_emulated_shfl_xor(v, lane_mask));
    return v;
#endif
}

AMBIENT_HD void mma_sync_warp(void) {
#if defined(__CUDA_ARCH__)
    __syncwarp();
#else
    AMBIENT_EMULATED(mma_emulated_sync_warp());
#endif
}

AMBIENT_HD void mma_sync_block(void) {
#if defined(__CUDA_ARCH__)
    __syncthreads();
#else
    AMBIENT_EMULATED(mma_emulated_sync_block());
#endif
}

/* acc += (the warp's rows of the A tile) (its columns of the B tile)^T over one slice. */
template <int P, int MT, int NT>
AMBIENT_HD void mma_warp_slice(const uint32_t *a_tile, const uint32_t *b_tile, int a_row0, int b_row0, int lane,
                               float (&acc)[MT][NT][4]) {
AMBIENT_UNROLL
    for (int step = 0; step < MMA_SLICE_WORDS / MMA_STEP_WORDS; step++) {
        uint32_t a[MT][4], b[NT][2];
AMBIENT_UNROLL
        for (int mt = 0; mt < MT; mt++) mma_ldmatrix_x4(a[mt], a_tile + mma_a_ldmatrix_word(lane, a_row0 + mt * 16, step));
AMBIENT_UNROLL
        for (int np = 0; np < NT / 2; np++) {
            uint32_t r[4];
            mma_ldmatrix_x4(r, b_tile + mma_b_ldmatrix_word(lane, b_row0 + np * 16, step));
            b[2 * np][0] = r[0];
            b[2 * np][1] = r[1];
            b[2 * np + 1][0] = r[2];
            b[2 * np + 1][1] = r[3];
        }
AMBIENT_UNROLL
        for (int mt = 0; mt < MT; mt++)
AMBIENT_UNROLL
            for (int nt = 0; nt < NT; nt++) mma_step<P>(acc[mt][nt], a[mt], b[nt]);
    }
}

/* ---- The block's main loop (GEMM and the convolutions) ---------------------------------------- */

/* Shared memory of mma_block_tile: two A tiles, then two B tiles (double buffering). */
template <class CFG>
struct mma_block_shared {
    static constexpr int A_WORDS = CFG::BM * MMA_PITCH_WORDS, B_WORDS = CFG::BN * MMA_PITCH_WORDS;
    static constexpr int WORDS = 2 * (A_WORDS + B_WORDS);
};

/* The block's tile: out[m0 .., n0 ..] <- sum over k in [k_begin, k_end) of A(m, k) B(n, k),
 * A and B given by their sources (B's rows are the columns of the output). Every thread of
 * the block calls it with its index tid and the block's shared memory (16-byte aligned,
 * mma_block_shared<CFG>::WORDS words). */
template <int P, class CFG, class SRC_A, class SRC_B, class OUT>
AMBIENT_HD void mma_block_tile(const SRC_A &src_a, const SRC_B &src_b, const OUT &out, int64_t m0, int64_t n0,
                               int64_t k_begin, int64_t k_end, int tid, uint32_t *smem) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#error "mma.sync with bf16 / tf32 needs sm_80 or newer"
#endif
    using shared = mma_block_shared<CFG>;
    constexpr int SLICE_K = mma_precision<P>::SLICE_K;
    uint32_t *const a_tiles = smem, *const b_tiles = smem + 2 * shared::A_WORDS;

    const int lane = tid & 31, warp = tid >> 5;
    const int a_row0 = (warp / CFG::WARPS_N) * CFG::WM, b_row0 = (warp % CFG::WARPS_N) * CFG::WN;
    mma_stager<P, CFG::BM, CFG::THREADS, SRC_A> stage_a;
    mma_stager<P, CFG::BN, CFG::THREADS, SRC_B> stage_b;
    stage_a.init(src_a, tid, m0);
    stage_b.init(src_b, tid, n0);

    float acc[CFG::MT][CFG::NT][4];
AMBIENT_UNROLL
    for (int mt = 0; mt < CFG::MT; mt++)
AMBIENT_UNROLL
        for (int nt = 0; nt < CFG::NT; nt++)
AMBIENT_UNROLL
            for (int i = 0; i < 4; i++) acc[mt][nt][i] = 0.0f;

    const int64_t slices = k_end > k_begin ? (k_end - k_begin + SLICE_K - 1) / SLICE_K : 0;
    if (slices > 0) {
        stage_a.fetch(src_a, tid, k_begin, k_end);
        stage_b.fetch(src_b, tid, k_begin, k_end);
        stage_a.store(a_tiles, tid);
        stage_b.store(b_tiles, tid);
        mma_sync_block();
        for (int64_t s = 0; s < slices; s++) {
            const int cur = (int)(s & 1);
            const bool more = s + 1 < slices;
            if (more) { /* global loads in flight while the tensor cores work */
                stage_a.fetch(src_a, tid, k_begin + (s + 1) * SLICE_K, k_end);
                stage_b.fetch(src_b, tid, k_begin + (s + 1) * SLICE_K, k_end);
            }
            mma_warp_slice<P, CFG::MT, CFG::NT>(a_tiles + cur * shared::A_WORDS, b_tiles + cur * shared::B_WORDS,
                                                a_row0, b_row0, lane, acc);
            if (more) {
                stage_a.store(a_tiles + (cur ^ 1) * shared::A_WORDS, tid);
                stage_b.store(b_tiles + (cur ^ 1) * shared::B_WORDS, tid);
            }
            /* The next slice is visible, and nobody still reads the one it replaces. */
            mma_sync_block();
        }
    }
    mma_store_accumulators<CFG::MT, CFG::NT>(out, m0 + a_row0, n0 + b_row0, lane, acc);
}

#endif
