/*
 * The warp instructions of native/cuda/mma.cuh emulated on the host, for the tests that check
 * the tensor-core kernels on a machine without a GPU (test_cuda_mma, test_cuda_attention).
 *
 *   ldmatrix.m8n8.x4.b16: lanes 8q .. 8q + 7 give the row addresses of matrix q; lane L gets,
 *     in register q, the 32-bit word at row L / 4 of matrix q, word L % 4 (PTX ISA, ldmatrix)
 *   mma.sync m16n8k16 bf16 / m16n8k8 tf32: A, B and C gathered from the 32 lanes' registers
 *     through the fragment layouts of mma.cuh (PTX ISA, "Matrix Fragments for mma.m16n8k16
 *     with floating point type" and "for mma.m16n8k8"), D = A B + C in float64 per step
 *
 * Two ways to use them. test_cuda_mma calls emulate_ldmatrix_x4 and emulate_mma on all 32
 * lanes' registers at once. emulate_thread_block runs a whole thread block of a kernel body written
 * over mma.cuh's warp functions (mma_ldmatrix_x4, mma_step, mma_shfl_xor, mma_sync_warp,
 * mma_sync_block): every CUDA thread is a coroutine (ucontext) on one host thread, and each of
 * those functions is a barrier of its warp or block where the lanes exchange what the
 * instruction exchanges. A barrier that not every thread of its warp or block reaches is
 * reported (the GPU would hang or be undefined there), as are ldmatrix rows that are not
 * 16-byte aligned, leave the block's shared memory or read a tile row's padding. Warps run one
 * at a time as far as they can, so a missing block barrier shows as poison or a wrong tile
 * (removing any one of attention_mma.cuh's block barriers makes test_cuda_attention fail). A
 * missing __syncwarp before a warp reads what its own lanes stored does not show: here every
 * emulated ldmatrix is itself a barrier of the warp.
 *
 * Build with AMBIENT_MMA_EMULATION defined (it declares the hooks in mma.cuh); include once
 * per program, after test_util.h.
 */
#ifndef AMBIENT_TEST_MMA_EMULATION_H
#define AMBIENT_TEST_MMA_EMULATION_H

#ifndef AMBIENT_MMA_EMULATION
#error "compile with AMBIENT_MMA_EMULATION defined, so that mma.cuh calls the emulation"
#endif

#include "mma.cuh"

#include <functional>
#include <ucontext.h>
#include <vector>

/* ---- All lanes at once ------------------------------------------------------------------------ */

/* The value of half `half` (0 low, 1 high) of a word: bf16 -> float, or the tf32 word itself. */
template <int P>
static double word_value(uint32_t word, int half) {
    if (P == AMBIENT_MATMUL_BF16) return (double)mma_bits_float(half ? word & 0xffff0000u : word << 16);
    return (double)mma_bits_float(word);
}

/* ldmatrix.x4: word_of_lane[l] is the tile word lane l points at; regs[L][q] what lane L gets. */
static inline void emulate_ldmatrix_x4(const std::vector<uint32_t> &tile, const int (&word_of_lane)[32], uint32_t (&regs)[32][4]) {
    for (int l = 0; l < 32; l++) {
        int w = word_of_lane[l];
        CHECK(w % 4 == 0, "lane %d: ldmatrix row address not 16-byte aligned (word %d)", l, w);
        CHECK(w >= 0 && w + 3 < (int)tile.size(), "lane %d: word %d outside the tile", l, w);
        CHECK(w % MMA_PITCH_WORDS + 3 < MMA_SLICE_WORDS, "lane %d: word %d reads the row padding", l, w);
    }
    for (int lane = 0; lane < 32; lane++)
        for (int q = 0; q < 4; q++) regs[lane][q] = tile[word_of_lane[8 * q + lane / 4] + lane % 4];
}

/* The A (16 x K) and B (K x 8) operands of one mma from the lanes' registers, each element
 * checked to be held by exactly one lane's register. */
template <int P>
static void gather_mma_operands(const uint32_t (&a)[32][4], const uint32_t (&b)[32][2], double (&A)[16][16],
                                double (&B)[16][8]) {
    const int K = P == AMBIENT_MATMUL_BF16 ? 16 : 8;
    int seen_a[16][16] = {{0}}, seen_b[16][8] = {{0}};
    for (int lane = 0; lane < 32; lane++) {
        if (P == AMBIENT_MATMUL_BF16) {
            for (int i = 0; i < 8; i++) {
                mma_coord c = mma_bf16_a_coord(lane, i);
                A[c.row][c.col] = word_value<P>(a[lane][i / 2], i & 1);
                seen_a[c.row][c.col]++;
            }
            for (int i = 0; i < 4; i++) {
                mma_coord c = mma_bf16_b_coord(lane, i);
                B[c.row][c.col] = word_value<P>(b[lane][i / 2], i & 1);
                seen_b[c.row][c.col]++;
            }
        } else {
            for (int i = 0; i < 4; i++) {
                mma_coord c = mma_tf32_a_coord(lane, i);
                A[c.row][c.col] = word_value<P>(a[lane][i], 0);
                seen_a[c.row][c.col]++;
            }
            for (int i = 0; i < 2; i++) {
                mma_coord c = mma_tf32_b_coord(lane, i);
                B[c.row][c.col] = word_value<P>(b[lane][i], 0);
                seen_b[c.row][c.col]++;
            }
        }
    }
    for (int r = 0; r < 16; r++)
        for (int k = 0; k < K; k++) CHECK(seen_a[r][k] == 1, "A[%d][%d] held %d times", r, k, seen_a[r][k]);
    for (int k = 0; k < K; k++)
        for (int n = 0; n < 8; n++) CHECK(seen_b[k][n] == 1, "B[%d][%d] held %d times", k, n, seen_b[k][n]);
}

/* d[lane][i] += (A B)[c_coord(lane, i)] for one 16 x 8 tile, A and B from the lanes' registers. */
template <int P>
static void emulate_mma(const uint32_t (&a)[32][4], const uint32_t (&b)[32][2], float (&d)[32][4]) {
    const int K = P == AMBIENT_MATMUL_BF16 ? 16 : 8;
    double A[16][16], B[16][8];
    gather_mma_operands<P>(a, b, A, B);
    for (int lane = 0; lane < 32; lane++)
        for (int i = 0; i < 4; i++) {
            mma_coord c = mma_c_coord(lane, i);
            double s = 0;
            for (int k = 0; k < K; k++) s += A[c.row][k] * B[k][c.col];
            d[lane][i] = (float)((double)d[lane][i] + s);
        }
}

/* ---- A block of threads as coroutines ------------------------------------------------------------ */

namespace mma_emulation {

enum thread_state { RUNNING, AT_WARP_BARRIER, AT_BLOCK_BARRIER, FINISHED };

struct thread {
    ucontext_t context;
    std::vector<char> stack;
    thread_state state;
    /* what the thread brings to its warp's exchange */
    float value;
    const uint32_t *address;
    uint32_t a[4], b[2];
};

struct block {
    ucontext_t scheduler;
    std::vector<thread> threads;
    const std::function<void(int)> *body;
    const uint32_t *shared;
    size_t shared_words;
    int current;
    int64_t warp_barriers, block_barriers;
};

static block *running;

static void yield(thread_state state) {
    thread &t = running->threads[running->current];
    t.state = state;
    swapcontext(&t.context, &running->scheduler);
}

static void thread_entry(void) {
    (*running->body)(running->current);
    running->threads[running->current].state = FINISHED; /* uc_link returns to the scheduler */
}

static thread &lane_of_warp(int lane) { return running->threads[(running->current & ~31) + lane]; }

} /* namespace mma_emulation */

/* Runs body(tid) for tid in 0 .. threads - 1 (a multiple of 32) as one block whose shared
 * memory is shared[0 .. shared_words). Returns 0, or -1 after reporting barriers that not
 * every thread reached. */
static inline int emulate_thread_block(int threads, const uint32_t *shared, size_t shared_words, const std::function<void(int)> &body) {
    using namespace mma_emulation;
    const size_t stack_bytes = 256 * 1024;
    block b;
    b.threads.resize((size_t)threads);
    b.body = &body;
    b.shared = shared;
    b.shared_words = shared_words;
    b.warp_barriers = b.block_barriers = 0;
    running = &b;
    for (thread &t : b.threads) {
        t.stack.resize(stack_bytes);
        t.state = RUNNING;
        getcontext(&t.context);
        t.context.uc_stack.ss_sp = t.stack.data();
        t.context.uc_stack.ss_size = stack_bytes;
        t.context.uc_link = &b.scheduler;
        makecontext(&t.context, thread_entry, 0);
    }
    /* Each warp in turn runs as far as it can (through its warp barriers, up to the block
     * barrier or its end) before the next one starts, in ascending warp order in one block and
     * descending in the next: a warp that reads shared memory another warp has not yet
     * written, or overwrites what another still has to read, because a block barrier is
     * missing, then reads poison or the wrong tile. */
    static int descending = 0;
    descending ^= 1;
    const int warps = threads / 32;
    for (;;) {
        for (int i = 0; i < warps; i++) {
            const int w = descending ? warps - 1 - i : i;
            for (;;) {
                for (int l = 0; l < 32; l++)
                    if (b.threads[32 * w + l].state == RUNNING) {
                        b.current = 32 * w + l;
                        swapcontext(&b.scheduler, &b.threads[32 * w + l].context);
                    }
                int at_warp = 0;
                for (int l = 0; l < 32; l++) at_warp += b.threads[32 * w + l].state == AT_WARP_BARRIER;
                if (at_warp < 32) break;
                for (int l = 0; l < 32; l++) b.threads[32 * w + l].state = RUNNING;
                b.warp_barriers++;
            }
        }
        int finished = 0, at_block = 0;
        for (const thread &t : b.threads) {
            finished += t.state == FINISHED;
            at_block += t.state == AT_BLOCK_BARRIER;
        }
        if (finished == threads) break;
        if (at_block == threads) {
            for (thread &t : b.threads) t.state = RUNNING;
            b.block_barriers++;
            continue;
        }
        fprintf(stderr, "emulate_thread_block: stuck: %d threads finished, %d at the block barrier, the rest at "
                        "partial warp barriers\n", finished, at_block);
        test_failures++;
        running = nullptr;
        return -1;
    }
    running = nullptr;
    return 0;
}

/* ---- The hooks mma.cuh calls on the host ------------------------------------------------------------ */

void mma_emulated_sync_warp(void) { mma_emulation::yield(mma_emulation::AT_WARP_BARRIER); }

void mma_emulated_sync_block(void) { mma_emulation::yield(mma_emulation::AT_BLOCK_BARRIER); }

float mma_emulated_shfl_xor(float v, int lane_mask) {
    using namespace mma_emulation;
    const int lane = running->current & 31;
    running->threads[running->current].value = v;
    mma_emulated_sync_warp();
    float r = lane_of_warp(lane ^ lane_mask).value;
    mma_emulated_sync_warp(); /* nobody overwrites a value before every lane has read it */
    return r;
}

void mma_emulated_ldmatrix_x4(uint32_t (&r)[4], const uint32_t *p) {
    using namespace mma_emulation;
    const int lane = running->current & 31;
    running->threads[running->current].address = p;
    mma_emulated_sync_warp();
    for (int q = 0; q < 4; q++) {
        const uint32_t *row = lane_of_warp(8 * q + lane / 4).address;
        ptrdiff_t w = row - running->shared;
        bool ok = w >= 0 && (size_t)w + 4 <= running->shared_words && w % 4 == 0 &&
                  w % MMA_PITCH_WORDS + 3 < MMA_SLICE_WORDS;
        if (!ok && lane == 0) {
            fprintf(stderr, "ldmatrix: matrix %d row of lane %d at shared word %lld: misaligned, outside the %zu "
                            "words, or in a row's padding\n", q, 8 * q + lane / 4, (long long)w, running->shared_words);
            test_failures++;
        }
        r[q] = ok ? row[lane % 4] : 0x7fc07fc0u;
    }
    mma_emulated_sync_warp();
}

void mma_emulated_step(int precision, float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    using namespace mma_emulation;
    const int lane = running->current & 31;
    thread &self = running->threads[running->current];
    for (int i = 0; i < 4; i++) self.a[i] = a[i];
    for (int i = 0; i < 2; i++) self.b[i] = b[i];
    mma_emulated_sync_warp();
    uint32_t regs_a[32][4], regs_b[32][2];
    for (int l = 0; l < 32; l++) {
        const thread &t = lane_of_warp(l);
        for (int i = 0; i < 4; i++) regs_a[l][i] = t.a[i];
        for (int i = 0; i < 2; i++) regs_b[l][i] = t.b[i];
    }
    mma_emulated_sync_warp();
    double A[16][16], B[16][8];
    const int K = precision == AMBIENT_MATMUL_BF16 ? 16 : 8;
    if (precision == AMBIENT_MATMUL_BF16) gather_mma_operands<AMBIENT_MATMUL_BF16>(regs_a, regs_b, A, B);
    else gather_mma_operands<AMBIENT_MATMUL_TF32>(regs_a, regs_b, A, B);
    for (int i = 0; i < 4; i++) {
        mma_coord c = mma_c_coord(lane, i);
        double s = 0;
        for (int k = 0; k < K; k++) s += A[c.row][k] * B[k][c.col];
        d[i] = (float)((double)d[i] + s);
    }
}

#endif
