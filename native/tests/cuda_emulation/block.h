/*
 * A CUDA thread block on the host: every CUDA thread is a coroutine on one host thread, and the
 * warp instructions and barriers are performed by a scheduler. Two users:
 *   - test_cuda_mma and test_cuda_attention run the tensor-core kernels' block bodies with it
 *     (mma.cuh's warp functions call the hooks at the end of this file);
 *   - the emulated CUDA library (device.h, runtime.cpp) runs whole launches of native/cuda's
 *     kernels with it, one block at a time.
 *
 * Warp instructions emulated (PTX ISA):
 *   ldmatrix.m8n8.x4.b16: lanes 8q .. 8q + 7 give the row addresses of matrix q; lane L gets,
 *     in register q, the 32-bit word at row L / 4 of matrix q, word L % 4
 *   mma.sync m16n8k16 bf16 / m16n8k8 tf32: A, B and C gathered from the 32 lanes' registers
 *     through the fragment layouts of mma.cuh ("Matrix Fragments for mma.m16n8k16 with floating
 *     point type" and "for mma.m16n8k8"), D = A B + C in float64 per step
 *   shfl.sync (xor, down, idx) of 32- and 64-bit values, and bar.warp.sync
 *
 * Each of those, and the block barrier, is a point where the thread waits; when all lanes of a
 * warp wait at the same instruction, it is performed once for the warp from the operands they
 * brought. A barrier that not every thread of its warp or block reaches is reported (the GPU
 * would hang or be undefined there), as are ldmatrix rows that are not 16-byte aligned, leave
 * the block's shared memory or read a tile row's padding, and shuffles from lanes that do not
 * exist. Warps run one at a time as far as they can, so a missing block barrier shows as poison
 * or a wrong tile (removing any one block barrier of mma_block_tile or of attention_mma.cuh
 * makes test_cuda_mma or test_cuda_attention fail). Within a warp, lanes run one at a time too,
 * in the block's warp order, and ldmatrix reads each row when the lane that gives its address
 * arrives, not when the whole warp has: so a missing __syncwarp between lanes' stores and the
 * ldmatrix or the loads that read them shows as poison or a stale tile. Other warp
 * instructions (shuffles, mma) order the lanes as the GPU does not promise to order their
 * memory, so a __syncwarp missing next to one of them does not show.
 *
 * Build with AMBIENT_MMA_EMULATION defined (it declares the hooks in mma.cuh); include in one
 * source file per program.
 */
#ifndef AMBIENT_TEST_CUDA_EMULATION_BLOCK_H
#define AMBIENT_TEST_CUDA_EMULATION_BLOCK_H

#ifndef AMBIENT_MMA_EMULATION
#error "compile with AMBIENT_MMA_EMULATION defined, so that mma.cuh calls the emulation"
#endif

#include "mma.cuh"

#include <functional>
#include <sanitizer/asan_interface.h>
#include <stdarg.h>
#include <stdio.h>
#include <ucontext.h>
#include <vector>

namespace cuda_emulation {

/* Problems found in emulated blocks (each also printed to stderr). */
static int errors;

/* "cuda emulation: " and the message, on a line of stderr. */
static void print_message(const char *format, va_list args) {
    fprintf(stderr, "cuda emulation: ");
    vfprintf(stderr, format, args);
    fprintf(stderr, "\n");
}

static void report(const char *format, ...) __attribute__((format(printf, 1, 2)));
static void report(const char *format, ...) {
    va_list args;
    va_start(args, format);
    print_message(format, args);
    va_end(args);
    errors++;
}

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
        for (int k = 0; k < K; k++)
            if (seen_a[r][k] != 1) report("mma: A[%d][%d] held %d times", r, k, seen_a[r][k]);
    for (int k = 0; k < K; k++)
        for (int n = 0; n < 8; n++)
            if (seen_b[k][n] != 1) report("mma: B[%d][%d] held %d times", k, n, seen_b[k][n]);
}

/* ---- Coroutines ------------------------------------------------------------------------------------ */

/* A stack and a saved stack pointer. On x86-64 the switch saves the callee-saved registers on
 * the old stack and pops them from the new one (ucontext's swapcontext makes a system call per
 * switch for the signal mask, which made the emulation ten times slower); elsewhere ucontext.
 * A coroutine's entry never returns: it switches away for good. */
#if defined(__x86_64__)
extern "C" void cuda_emulation_switch(void **save_sp, void *load_sp);
asm(".text\n"
    ".globl cuda_emulation_switch\n"
    ".hidden cuda_emulation_switch\n"
    ".type cuda_emulation_switch, @function\n"
    "cuda_emulation_switch:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
    "  ret\n"
    ".size cuda_emulation_switch, .-cuda_emulation_switch\n");

struct coroutine {
    void *sp;
};

/* The first switch to c "returns" into entry with the stack aligned as after a call. A stack is
 * reused, and its last coroutine never returned from its entry, so AddressSanitizer's marks of
 * that frame are cleared first (a no-op in other builds). */
static void coroutine_make(coroutine &c, std::vector<char> &stack, void (*entry)(void)) {
    ASAN_UNPOISON_MEMORY_REGION(stack.data(), stack.size());
    uintptr_t top = (uintptr_t)(stack.data() + stack.size()) & ~(uintptr_t)15;
    void **sp = (void **)top;
    *--sp = nullptr;        /* entry's return address: never used */
    *--sp = (void *)entry;  /* where the switch's ret goes */
    for (int r = 0; r < 6; r++) *--sp = nullptr; /* rbp, rbx, r12 .. r15 */
    c.sp = sp;
}

static void coroutine_switch(coroutine &from, coroutine &to) { cuda_emulation_switch(&from.sp, to.sp); }
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

/* ---- Threads, warps and the block ------------------------------------------------------------------- */

enum thread_state { RUNNING, AT_WARP_BARRIER, AT_BLOCK_BARRIER, FINISHED };

/* The warp instruction a thread waits at; the scheduler performs it once for the whole warp
 * when all its lanes are there (mixing instructions is an error, as on the GPU). */
enum warp_op { OP_SYNC, OP_SHFL, OP_LDMATRIX, OP_MMA_BF16, OP_MMA_TF32 };
static const char *const op_names[] = {"__syncwarp", "shfl", "ldmatrix", "mma bf16", "mma tf32"};

struct thread {
    coroutine context;
    thread_state state;
    warp_op op;
    unsigned mask; /* the lanes taking part in the warp instruction */
    /* the operands it brings, and where its results go */
    uint64_t value, result;
    int source_lane;
    const uint32_t *address;
    uint32_t row[4]; /* ldmatrix: the row at `address`, read when this lane arrived */
    bool row_ok;     /* ... and whether the address was a valid row */
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

/* The index of the thread running now in its block (0 .. threads - 1). */
static inline int current_thread(void) { return running->current; }

static void wait_at(thread_state state, warp_op op, unsigned mask = 0xffffffffu) {
    thread &t = self();
    t.state = state;
    t.op = op;
    t.mask = mask;
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

/* The instruction that the lanes `taking_part` (a bit mask) of warp w wait at, performed for
 * them; false after reporting a shuffle from a lane that does not take part (exited, or outside
 * the mask: the value is undefined on the GPU) or a tensor-core instruction without all 32. */
static bool perform(int w, unsigned taking_part) {
    thread *lanes = &running->threads[32 * w];
    const int first = __builtin_ctz(taking_part);
    const warp_op op = lanes[first].op;
    if (op >= OP_LDMATRIX && taking_part != 0xffffffffu) {
        report("warp %d: %s with lanes 0x%08x, not all 32", w, op_names[op], taking_part);
        return false;
    }
    switch (op) {
    case OP_SYNC:
        break;
    case OP_SHFL:
        for (int l = 0; l < 32; l++) {
            if (!(taking_part >> l & 1)) continue;
            const int from = lanes[l].source_lane;
            if (from < 0 || from >= 32 || !(taking_part >> from & 1)) {
                report("warp %d: lane %d shuffles from lane %d, which does not take part (lanes 0x%08x)", w, l, from,
                       taking_part);
                return false;
            }
            lanes[l].result = lanes[from].value;
        }
        break;
    case OP_LDMATRIX:
        for (int l = 0; l < 32; l++)
            for (int q = 0; q < 4; q++) {
                const int from = 8 * q + l / 4;
                const bool ok = lanes[from].row_ok;
                if (!ok && l % 4 == 0)
                    report("ldmatrix: row %d of matrix %d (lane %d) at %p is misaligned, outside the block's "
                           "%zu words of shared memory, or in a row's padding",
                           l / 4, q, from, (const void *)lanes[from].address, running->shared_words);
                lanes[l].regs[q] = ok ? lanes[from].row[l % 4] : 0x7fc07fc0u;
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

/* Performs every warp instruction of warp w (with `count` lanes) whose lanes are all there:
 * the lanes of its mask that have not exited, waiting at the same instruction with the same
 * mask (anything else is reported, as undefined on the GPU). Returns the number performed, or
 * -1 after a report. A group whose lanes wait elsewhere (at the block barrier) stays. */
static int perform_ready(int w, int count) {
    thread *lanes = &running->threads[32 * w];
    const unsigned present = count == 32 ? 0xffffffffu : (1u << count) - 1u;
    unsigned handled = 0;
    int performed = 0;
    for (int l = 0; l < count; l++) {
        if (lanes[l].state != AT_WARP_BARRIER || (handled >> l & 1)) continue;
        const unsigned mask = lanes[l].mask & present;
        if (!(mask >> l & 1)) {
            report("warp %d: lane %d waits at %s with mask 0x%08x, which leaves it out", w, l, op_names[lanes[l].op],
                   lanes[l].mask);
            return -1;
        }
        unsigned taking_part = 0;
        bool ready = true;
        for (int j = 0; j < count; j++) {
            if (!(mask >> j & 1) || lanes[j].state == FINISHED) continue;
            if (lanes[j].state != AT_WARP_BARRIER) {
                ready = false;
                continue;
            }
            if (lanes[j].op != lanes[l].op || lanes[j].mask != lanes[l].mask) {
                report("warp %d: lane %d at %s (mask 0x%08x), lane %d at %s (mask 0x%08x)", w, l,
                       op_names[lanes[l].op], lanes[l].mask, j, op_names[lanes[j].op], lanes[j].mask);
                return -1;
            }
            taking_part |= 1u << j;
        }
        handled |= taking_part;
        if (!ready) continue;
        if (!perform(w, taking_part)) return -1;
        for (int j = 0; j < count; j++)
            if (taking_part >> j & 1) lanes[j].state = RUNNING;
        performed++;
    }
    return performed;
}

/* ---- What device code calls ------------------------------------------------------------------------ */

static inline void sync_block(void) { wait_at(AT_BLOCK_BARRIER, OP_SYNC); }

static inline void sync_warp(unsigned mask = 0xffffffffu) { wait_at(AT_WARP_BARRIER, OP_SYNC, mask); }

/* The 32 or 64 bits `value` of lane `source_lane` of this thread's warp, among the lanes of
 * `mask`. */
static inline uint64_t shuffle(uint64_t value, int source_lane, unsigned mask = 0xffffffffu) {
    thread &t = self();
    t.value = value;
    t.source_lane = source_lane;
    wait_at(AT_WARP_BARRIER, OP_SHFL, mask);
    return t.result;
}

} /* namespace cuda_emulation */

/* Runs body(tid) for tid in 0 .. threads - 1 as one block (warps of 32 consecutive threads, the
 * last one possibly partial) whose shared memory is shared[0 .. shared_words) (or unknown:
 * NULL, which skips the check of ldmatrix's rows against it). Each warp in turn runs as far as
 * it can (through its warp instructions, up to the block barrier or its end) before the next
 * one starts, in ascending warp order in one block and descending in the next: a warp that
 * reads shared memory another has not yet written, or overwrites what another still has to
 * read, because a block barrier is missing, then reads poison or the wrong tile. The lanes of a
 * warp take turns in the same order, each as far as its next warp instruction. Returns 0, or
 * -1 after reporting a problem (threads waiting at different barriers or instructions, a bad
 * ldmatrix row or shuffle, a mis-held mma operand). */
static inline int emulate_thread_block(int threads, const uint32_t *shared, size_t shared_words,
                                       const std::function<void(int)> &body) {
    using namespace cuda_emulation;
    /* Stacks are kept from block to block: allocating and touching them anew costs more than the
     * emulation itself. */
    static std::vector<std::vector<char>> stacks;
    if (stacks.size() < (size_t)threads) stacks.resize((size_t)threads, std::vector<char>(256 * 1024));
    static int descending = 0;
    descending ^= 1;
    const int errors_before = errors;
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
    const int warps = (threads + 31) / 32;
    bool failed = false;
    while (!failed) {
        for (int i = 0; i < warps && !failed; i++) {
            const int w = descending ? warps - 1 - i : i;
            const int lanes = threads - 32 * w < 32 ? threads - 32 * w : 32;
            for (;;) {
                for (int turn = 0; turn < lanes; turn++) {
                    const int l = descending ? lanes - 1 - turn : turn;
                    if (b.threads[32 * w + l].state == RUNNING) {
                        b.current = 32 * w + l;
                        coroutine_switch(b.scheduler, b.threads[32 * w + l].context);
                    }
                }
                const int performed = perform_ready(w, lanes);
                if (performed < 0) failed = true;
                if (performed <= 0) break;
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
        report("block stuck: of %d threads %d finished, %d wait at the block barrier and the rest at warp "
               "instructions some of their lanes do not reach",
               threads, finished, at_block);
        failed = true;
    }
    running = nullptr;
    return failed || errors != errors_before ? -1 : 0;
}

/* ---- The hooks mma.cuh calls on the host ------------------------------------------------------------ */

void mma_emulated_sync_warp(void) { cuda_emulation::sync_warp(); }

void mma_emulated_sync_block(void) { cuda_emulation::sync_block(); }

float mma_emulated_shfl_xor(float v, int lane_mask) {
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    bits = (uint32_t)cuda_emulation::shuffle(bits, (cuda_emulation::current_thread() % 32) ^ lane_mask);
    memcpy(&v, &bits, sizeof v);
    return v;
}

void mma_emulated_ldmatrix_x4(uint32_t (&r)[4], const uint32_t *p) {
    cuda_emulation::thread &t = cuda_emulation::self();
    t.address = p;
    t.row_ok = ((uintptr_t)p & 15) == 0;
    if (cuda_emulation::running->shared) {
        /* the block's shared memory is known (dynamic shared memory, or a test's buffer): the
         * row must lie in it, outside a tile row's padding */
        const ptrdiff_t word = p - cuda_emulation::running->shared;
        t.row_ok = t.row_ok && word >= 0 && (size_t)word + 4 <= cuda_emulation::running->shared_words &&
                   word % MMA_PITCH_WORDS + 3 < MMA_SLICE_WORDS;
    }
    /* read now, before the other lanes arrive: ldmatrix does not order their stores */
    if (t.row_ok) memcpy(t.row, p, sizeof t.row);
    t.regs = r;
    cuda_emulation::wait_at(cuda_emulation::AT_WARP_BARRIER, cuda_emulation::OP_LDMATRIX);
}

void mma_emulated_step(int precision, float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    cuda_emulation::thread &t = cuda_emulation::self();
    t.a = a;
    t.b = b;
    t.d = d;
    cuda_emulation::wait_at(cuda_emulation::AT_WARP_BARRIER, precision == AMBIENT_MATMUL_BF16
                                                                  ? cuda_emulation::OP_MMA_BF16
                                                                  : cuda_emulation::OP_MMA_TF32);
}

#endif
