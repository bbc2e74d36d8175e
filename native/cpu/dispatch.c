/*
 * Run-time choice of the micro-kernel table: the widest instruction set the processor (and
 * the OS, which must save the wider registers) supports, AVX-512 > AVX2 + FMA > scalar.
 * AMBIENT_CPU_ISA=avx512|avx2|scalar asks for a narrower one (for tests and comparisons);
 * asking for one the processor lacks gives the best available instead, never SIGILL.
 */
#include "internal.h"
#include "kernels.h"

#include <stdlib.h>
#include <strings.h>

static int has_avx512(void) {
#if defined(__x86_64__) || defined(__i386__)
    /* kernels_avx512.c is compiled with F, VL, DQ, BW, FMA and AVX2: the compiler may use any. */
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("fma") && __builtin_cpu_supports("avx2");
#else
    return 0;
#endif
}

static int has_avx2(void) {
#if defined(__x86_64__) || defined(__i386__)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

static const ambient_cpu_kernels *select_kernels(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
#endif
    int avx512 = has_avx512(), avx2 = has_avx2();
    const ambient_cpu_kernels *best = avx512 ? &ambient_cpu_kernels_avx512
                                      : avx2 ? &ambient_cpu_kernels_avx2
                                             : &ambient_cpu_kernels_scalar;
    const char *request = getenv("AMBIENT_CPU_ISA");
    if (request == NULL) return best;
    if (strcasecmp(request, "scalar") == 0) return &ambient_cpu_kernels_scalar;
    if (strcasecmp(request, "avx2") == 0) return avx2 ? &ambient_cpu_kernels_avx2 : best;
    /* "avx512", "auto", "" or anything unknown: the best there is. */
    return best;
}

const ambient_cpu_kernels *ambient_cpu_kernels_get(void) {
    static const ambient_cpu_kernels *chosen;
    const ambient_cpu_kernels *k = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);
    if (k == NULL) {
        /* Threads that race here compute the same answer; whichever stores last wins. */
        k = select_kernels();
        __atomic_store_n(&chosen, k, __ATOMIC_RELEASE);
    }
    return k;
}
