/*
 * The CPU backend's micro-kernels, one table per instruction set (scalar baseline x86-64,
 * AVX2 + FMA, AVX-512). cpu/dispatch.c picks one table at run time; the ops (gemm.c,
 * benchmark.c) call through it, so only the kernels_*.c files are compiled for wider ISAs
 * and nothing outside them can execute an instruction the processor lacks.
 */
#ifndef AMBIENT_CPU_KERNELS_H
#define AMBIENT_CPU_KERNELS_H

#include <stdint.h>

typedef struct ambient_cpu_kernels {
    /* "avx512", "avx2" or "scalar": what AMBIENT_CPU_ISA names. */
    const char *name;

    /* GEMM register tile (mr x nr of C) and cache blocking, in elements, tuned per ISA by
     * measurement: an mc x kc block of packed A stays in L2 and a kc x nc panel of packed B
     * in L3, while the micro-kernel streams kc x nr slivers of B (from L1 or L2). A long kc
     * makes the read-modify-write of C rare. mc is a multiple of mr, nc a multiple of nr. */
    int mr, nr;
    int64_t mc, kc, nc;

    /* One register tile: C[0:rows, 0:cols] = alpha * A * B + beta * C, where
     *   A is kc x mr packed k-major (mr floats per k step, rows >= `rows` zero-padded),
     *   B is kc x nr packed k-major (nr floats per k step, cols >= `cols` zero-padded),
     * both 64-byte aligned; C is row-major with row stride ldc, rows <= mr, cols <= nr.
     * beta == 0: C is only written, never read. */
    void (*gemm_tile)(int64_t kc, const float *a, const float *b, float alpha, float beta,
                      float *c, int64_t ldc, int rows, int cols);

    /* gemm_tile with A unpacked: row r of A is a + r * lda (kc floats, any alignment), so a
     * caller that produces A row by row need not transpose it into slivers. All mr rows are
     * read, those past `rows` included (their results are discarded): they must be readable
     * floats. NULL in a table without it; callers then pack and use gemm_tile. */
    void (*gemm_tile_rows)(int64_t kc, const float *a, int64_t lda, const float *b, float alpha, float beta,
                           float *c, int64_t ldc, int rows, int cols);

    /* Packs `rows` strided vectors into one k-major sliver of `width` floats per k step:
     *   dst[p * width + r] = src[r * ld + p]   for r < rows, p < kc,  and 0 for rows <= r < width
     * (rows <= width <= 32). That is a transpose: packing A (width mr) when A is not
     * transposed, or B (width nr) when it is. The other two layouts are plain copies. */
    void (*pack_transposed)(int64_t kc, int rows, int width, const float *src, int64_t ld,
                            float *dst);

    /* Runs `iterations` rounds of fma_flops_per_iteration / 2 independent fused
     * multiply-adds (mul + add on the scalar table) and returns a value that depends on all
     * of them, so that the caller can keep the work alive. */
    float (*fma_loop)(int64_t iterations);
    int64_t fma_flops_per_iteration;

    /* dst[0:count] = src[0:count] with stores that bypass the caches where the ISA has
     * them; dst and src are 64-byte aligned and count is a multiple of 16. */
    void (*stream_copy)(float *dst, const float *src, int64_t count);
} ambient_cpu_kernels;

extern const ambient_cpu_kernels ambient_cpu_kernels_scalar;
extern const ambient_cpu_kernels ambient_cpu_kernels_avx2;
extern const ambient_cpu_kernels ambient_cpu_kernels_avx512;

/* The table for this process: the widest ISA the processor supports, or a narrower one
 * that the environment variable AMBIENT_CPU_ISA=avx512|avx2|scalar asks for. Chosen once;
 * safe to call from any thread. */
__attribute__((visibility("hidden"))) const ambient_cpu_kernels *ambient_cpu_kernels_get(void);

#endif
