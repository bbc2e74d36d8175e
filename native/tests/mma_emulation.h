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
 * emulate_thread_block runs a whole thread block of a kernel body written over mma.cuh's warp
 * functions (mma_ldmatrix_x4, mma_step, mma_shfl_xor, mma_sync_warp, mma_sync_block): every
 * CUDA thread is a coroutine on one host thread, and each of those functions is a barrier of its
 * warp or block; when all 32 lanes of a warp wait at the same instruction, it is performed once
 * for the warp from the operands they brought. A barrier that not every thread of its warp or
 * block reaches is reported (the GPU would hang or be undefined there), as are ldmatrix rows
 * that are not 16-byte aligned, leave the block's shared memory or read a tile row's padding.
 * Warps run one at a time as far as they can, so a missing block barrier shows as poison or a
 * wrong tile (removing any one block barrier of mma_block_tile or of attention_mma.cuh makes
 * test_cuda_mma or test_cuda_attention fail). A missing __syncwarp before a warp reads what its
 * own lanes stored does not show: here every emulated ldmatrix is itself a barrier of the warp.
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

/* ---- One mma's operands from the lanes' registers ---------------------------------------------- */

/* The value of half `half` (0 low, 1 high) of a word: bf16 -> float, or the tf32 word itself. */
template <int P>
static double word_value(uint32_t word, int half) {
    if (P == AMBIENT_MATMUL_BF16) return (double)mma_bits_float(half ? word & 0xffff0000u : word << 16);
    return (double)mma_bits_float(word);
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

/* ---- A block of threads as coroutines ------------------------------------------------------------ */

namespace mma_emulation {

/* Coroutines: a stack and a saved stack pointer. On x86-64 the switch saves the callee-saved
 * registers on the old stack and pops them from the new one (ucontext's swapcontext makes a
 * system call per switch for the signal mask, which made these tests ten times slower);
 * elsewhere ucontext. A coroutine's entry never returns: it switches away for good. */
#if defined(__x86_64__)
extern "C" void mma_emulation_switch(void **save_sp, void *load_sp);
asm(".text\n"
    ".globl mma_emulation_switch\n"
    ".type mma_emulation_switch, @function\n"
    "mma_emulation_switch:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
    "  ret\n"
    ".size mma_emulation_switch, .-mma_emulation_switch\n");

struct coroutine {
    void *sp;
};

/* The first switch to c "returns" into entry with the stack aligned as after a call. */
static void coroutine_make(coroutine &c, std::vector<char> &stack, void (*entry)(void)) {
    uintptr_t top = (uintptr_t)(stack.data() + stack.size()) & ~(uintptr_t)15;
    void **sp = (void **)top;
    *--sp = nullptr;        /* entry's return address: never used */
    *--sp = (void *)entry;  /* where the switch's ret goes */
    for (int r = 0; r < 6; r++) *--sp = nullptr; /* rbp, rbx, r12 .. r15 */
    c.sp = sp;
}

static void coroutine_switch(coroutine &from, coroutine &to) { mma_emulation_switch(&from.sp, to.sp); }
#else
struct coroutine {
    ucontext_t context;
};

static void coroutine_make(coroutine &c, std::vector<char> &stack, void (*entry)(void)) {
    getcontext(&c.context);
    c.context.uc_stack.ss_sp = stack.data();
    c.context.uc_stack.ss_size = stack.size();
    c.context.uc_link = nullptr;
    makecontext(&c.context, entry, 0);
}

static void coroutine_switch(coroutine &from, coroutine &to) { swapcontext(&from.context, &to.context); }
#endif


enum thread_state { RUNNING, AT_WARP_BARRIER, AT_BLOCK_BARRIER, FINISHED };

/* The warp instruction a thread waits at; the scheduler performs it once for the whole warp
 * when all 32 lanes are there (mixing instructions is an error, as on the GPU). */
enum warp_op { OP_SYNC, OP_SHFL, OP_LDMATRIX, OP_MMA_BF16, OP_MMA_TF32 };
static const char *const op_names[] = {"__syncwarp", "shfl.xor", "ldmatrix", "mma bf16", "mma tf32"};

struct thread {
    coroutine context;
    thread_state state;
    warp_op op;
    /* the operands it brings, and where its results go */
    float value, result;
    int lane_mask;
    const uint32_t *address;
    uint32_t *regs;
    const uint32_t *a, *b;
    float *d;
};

struct block {
    coroutine scheduler;
    std::vector<thread> threads;
    const std::function<void(int)> *body;
    const uint32_t *shared;
    size_t shared_words;
    int current;
};

static block *running;

static thread &self(void) { return running->threads[running->current]; }

static void wait_at(thread_state state, warp_op op) {
    thread &t = self();
    t.state = state;
    t.op = op;
    coroutine_switch(t.context, running->scheduler);
}

static void thread_entry(void) {
    (*running->body)(running->current);
    self().state = FINISHED;
    coroutine_switch(self().context, running->scheduler); /* for good */
}

template <int P>
static void warp_mma(thread *lanes) {
    const int K = P == AMBIENT_MATMUL_BF16 ? 16 : 8;
    uint32_t a[32][4], b[32][2];
    for (int l = 0; l < 32; l++) {
        for (int i = 0; i < 4; i++) a[l][i] = lanes[l].a[i];
        for (int i = 0; i < 2; i++) b[l][i] = lanes[l].b[i];
    }
    double A[16][16], B[16][8];
    gather_mma_operands<P>(a, b, A, B);
    for (int l = 0; l < 32; l++)
        for (int i = 0; i < 4; i++) {
            mma_coord c = mma_c_coord(l, i);
            double sum = 0;
            for (int k = 0; k < K; k++) sum += A[c.row][k] * B[k][c.col];
            lanes[l].d[i] = (float)((double)lanes[l].d[i] + sum);
        }
}

/* The instruction the 32 lanes of warp w wait at, performed; false when they disagree. */
static bool perform(int w) {
    thread *lanes = &running->threads[32 * w];
    for (int l = 1; l < 32; l++)
        if (lanes[l].op != lanes[0].op) {
            fprintf(stderr, "emulated warp %d: lane 0 at %s, lane %d at %s\n", w, op_names[lanes[0].op], l,
                    op_names[lanes[l].op]);
            return false;
        }
    switch (lanes[0].op) {
    case OP_SYNC:
        break;
    case OP_SHFL:
        for (int l = 0; l < 32; l++) lanes[l].result = lanes[l ^ lanes[l].lane_mask].value;
        break;
    case OP_LDMATRIX:
        for (int l = 0; l < 32; l++)
            for (int q = 0; q < 4; q++) {
                const int from = 8 * q + l / 4;
                const ptrdiff_t word = lanes[from].address - running->shared;
                const bool ok = word >= 0 && (size_t)word + 4 <= running->shared_words && word % 4 == 0 &&
                                word % MMA_PITCH_WORDS + 3 < MMA_SLICE_WORDS;
                if (!ok && l % 4 == 0) {
                    fprintf(stderr, "emulated ldmatrix: row %d of matrix %d (lane %d) at shared word %lld is "
                                    "misaligned, outside the %zu words, or in a row's padding\n",
                            l / 4, q, from, (long long)word, running->shared_words);
                    test_failures++;
                }
                lanes[l].regs[q] = ok ? lanes[from].address[l % 4] : 0x7fc07fc0u;
            }
        break;
    case OP_MMA_BF16:
        warp_mma<AMBIENT_MATMUL_BF16>(lanes);
        break;
    case OP_MMA_TF32:
        warp_mma<AMBIENT_MATMUL_TF32>(lanes);
        break;
    }
    return true;
}

} /* namespace mma_emulation */

/* Runs body(tid) for tid in 0 .. threads - 1 (a multiple of 32) as one block whose shared
 * memory is shared[0 .. shared_words). Each warp in turn runs as far as it can (through its
 * warp instructions, up to the block barrier or its end) before the next one starts, in
 * ascending warp order in one block and descending in the next: a warp that reads shared
 * memory another has not yet written, or overwrites what another still has to read, because a
 * block barrier is missing, then reads poison or the wrong tile. Returns 0, or -1 after
 * reporting threads that wait at different barriers or instructions. */
static inline int emulate_thread_block(int threads, const uint32_t *shared, size_t shared_words,
                                       const std::function<void(int)> &body) {
    using namespace mma_emulation;
    /* Stacks are kept from block to block: allocating and touching them anew costs more than the
     * emulation itself. */
    static std::vector<std::vector<char>> stacks;
    if (stacks.size() < (size_t)threads) stacks.resize((size_t)threads, std::vector<char>(256 * 1024));
    static int descending = 0;
    descending ^= 1;
    block b;
    b.threads.resize((size_t)threads);
    b.body = &body;
    b.shared = shared;
    b.shared_words = shared_words;
    running = &b;
    for (int tid = 0; tid < threads; tid++) {
        b.threads[tid].state = RUNNING;
        coroutine_make(b.threads[tid].context, stacks[tid], thread_entry);
    }
    const int warps = threads / 32;
    bool failed = false;
    while (!failed) {
        for (int i = 0; i < warps && !failed; i++) {
            const int w = descending ? warps - 1 - i : i;
            for (;;) {
                for (int l = 0; l < 32; l++)
                    if (b.threads[32 * w + l].state == RUNNING) {
                        b.current = 32 * w + l;
                        coroutine_switch(b.scheduler, b.threads[32 * w + l].context);
                    }
                int at_warp = 0;
                for (int l = 0; l < 32; l++) at_warp += b.threads[32 * w + l].state == AT_WARP_BARRIER;
                if (at_warp < 32) break;
                if (!perform(w)) {
                    failed = true;
                    break;
                }
                for (int l = 0; l < 32; l++) b.threads[32 * w + l].state = RUNNING;
            }
        }
        if (failed) break;
        int finished = 0, at_block = 0;
        for (const thread &t : b.threads) {
            finished += t.state == FINISHED;
            at_block += t.state == AT_BLOCK_BARRIER;
        }
        if (finished == threads) break;
        if (at_block == threads) {
            for (thread &t : b.threads) t.state = RUNNING;
            continue;
        }
        fprintf(stderr, "emulate_thread_block: stuck: %d threads finished, %d at the block barrier, the rest at "
                        "partial warp barriers\n", finished, at_block);
        failed = true;
    }
    running = nullptr;
    if (failed) test_failures++;
    return failed ? -1 : 0;
}

/* ---- The hooks mma.cuh calls on the host ------------------------------------------------------------ */

void mma_emulated_sync_warp(void) { mma_emulation::wait_at(mma_emulation::AT_WARP_BARRIER, mma_emulation::OP_SYNC); }

void mma_emulated_sync_block(void) { mma_emulation::wait_at(mma_emulation::AT_BLOCK_BARRIER, mma_emulation::OP_SYNC); }

float mma_emulated_shfl_xor(float v, int lane_mask) {
    mma_emulation::thread &t = mma_emulation::self();
    t.value = v;
    t.lane_mask = lane_mask;
    mma_emulation::wait_at(mma_emulation::AT_WARP_BARRIER, mma_emulation::OP_SHFL);
    return t.result;
}

void mma_emulated_ldmatrix_x4(uint32_t (&r)[4], const uint32_t *p) {
    mma_emulation::thread &t = mma_emulation::self();
    t.address = p;
    t.regs = r;
    mma_emulation::wait_at(mma_emulation::AT_WARP_BARRIER, mma_emulation::OP_LDMATRIX);
}

void mma_emulated_step(int precision, float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    mma_emulation::thread &t = mma_emulation::self();
    t.a = a;
    t.b = b;
    t.d = d;
    mma_emulation::wait_at(mma_emulation::AT_WARP_BARRIER,
                           precision == AMBIENT_MATMUL_BF16 ? mma_emulation::OP_MMA_BF16 : mma_emulation::OP_MMA_TF32);
}

#endif
