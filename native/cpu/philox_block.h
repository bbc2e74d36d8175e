/*
 * Philox 4x32-10 (philox.h) in blocks of consecutive groups, for random.c, regularize.c
 * (dropout) and ambient_loss.c (noising). Group g of (seed, stream) gives stream elements
 * 4g .. 4g + 3; every block function writes group first_group + j to out[4 j .. 4 j + 3]:
 *   bits:    the raw words, bit-identical to ambient_philox4x32
 *   uniform: (w >> 8) * 2^-24, bit-identical to ambient_philox_uniform4
 *   normal:  Box-Muller as ambient_philox_normal4, with fast_math.h's log and sincos instead
 *            of libm's (within ~1e-6 of it, not bit-identical)
 * Any number of groups, nothing allocated. Three implementations: AVX-512 and AVX2
 * (philox_avx512.c, philox_avx2.c: the Philox rounds on 64-bit lanes, whose vpmuludq is the
 * 32 x 32 -> 64-bit multiply) and portable C (random.c, on ambient_philox4x32), picked once
 * with the GEMM's instruction set (ambient_cpu_kernels_get()->name), so AMBIENT_CPU_ISA forces
 * them too. Each implementation fills AMBIENT_PHILOX_CHUNK groups at a time with its `words`
 * kernel; the inline drivers below turn that into the three block functions, and the
 * conversions to float are plain C, vectorised at the width each file is compiled for.
 */
#ifndef AMBIENT_PHILOX_BLOCK_H
#define AMBIENT_PHILOX_BLOCK_H

#include "fast_math.h"

#include <stdint.h>
#include <string.h>

void ambient_philox_bits_block(uint64_t seed, uint64_t stream, uint64_t first_group, int64_t groups,
                               uint32_t *out);
void ambient_philox_uniform_block(uint64_t seed, uint64_t stream, uint64_t first_group, int64_t groups,
                                  float *out);
void ambient_philox_normal_block(uint64_t seed, uint64_t stream, uint64_t first_group, int64_t groups,
                                 float *out);

/* ---- For the implementations ------------------------------------------------------------ */

/* Groups per call of a words kernel. */
#define AMBIENT_PHILOX_CHUNK 32

/* The words of groups group0 .. group0 + AMBIENT_PHILOX_CHUNK - 1, group after group. */
typedef void ambient_philox_words_fn(uint64_t seed, uint64_t stream, uint64_t group0, uint32_t *out);

typedef void ambient_philox_bits_fn(uint64_t seed, uint64_t stream, uint64_t first_group, int64_t groups,
                                    uint32_t *out);
typedef void ambient_philox_floats_fn(uint64_t seed, uint64_t stream, uint64_t first_group, int64_t groups,
                                      float *out);

void ambient_philox_bits_avx2(uint64_t, uint64_t, uint64_t, int64_t, uint32_t *);
void ambient_philox_uniform_avx2(uint64_t, uint64_t, uint64_t, int64_t, float *);
void ambient_philox_normal_avx2(uint64_t, uint64_t, uint64_t, int64_t, float *);
void ambient_philox_bits_avx512(uint64_t, uint64_t, uint64_t, int64_t, uint32_t *);
void ambient_philox_uniform_avx512(uint64_t, uint64_t, uint64_t, int64_t, float *);
void ambient_philox_normal_avx512(uint64_t, uint64_t, uint64_t, int64_t, float *);

/* out[i] = (w[i] >> 8) * 2^-24: exact (24-bit integers), so identical on every ISA. */
AMBIENT_FAST_INLINE void ambient_philox_to_uniform(const uint32_t *restrict w, int64_t count,
                                                   float *restrict out) {
#pragma omp simd
    for (int64_t i = 0; i < count; i++) out[i] = (float)(int32_t)(w[i] >> 8) * (1.0f / 16777216.0f);
}

/* Box-Muller on word pairs (w[2p], w[2p + 1]), as ambient_philox_normal4:
 *   u0 = ((w0 >> 8) + 1) 2^-24 in (0, 1],  u1 = (w1 >> 8) 2^-24,  r = sqrt(-2 ln u0),
 *   out[2p] = r cos(2 pi u1),  out[2p + 1] = r sin(2 pi u1), the angle rounded to float.
 * The angle is a product of its own (it feeds two multiplies, so it is never contracted
 * into an FMA) and u0 >= 2^-24 is a normal float, as the log needs. */
AMBIENT_FAST_INLINE void ambient_philox_to_normal(const uint32_t *restrict w, int64_t pairs,
                                                  float *restrict out) {
#pragma omp simd
    for (int64_t p = 0; p < pairs; p++) {
        float u0 = (float)(int32_t)((w[2 * p] >> 8) + 1) * (1.0f / 16777216.0f);
        /* 2 pi u1 = (2 pi 2^-24) (w1 >> 8): the same float, one multiply fewer */
        float angle = (float)(int32_t)(w[2 * p + 1] >> 8) * (6.283185307179586f / 16777216.0f);
        float r = __builtin_sqrtf(-2.0f * ambient_fast_logf(u0));
        float s, c;
        ambient_fast_sincosf(angle, &s, &c);
        out[2 * p] = r * c;
        out[2 * p + 1] = r * s;
    }
}

AMBIENT_FAST_INLINE void ambient_philox_bits_with(ambient_philox_words_fn *words, uint64_t seed, uint64_t stream,
                                                  uint64_t first_group, int64_t groups, uint32_t *out) {
    int64_t j = 0;
    for (; j + AMBIENT_PHILOX_CHUNK <= groups; j += AMBIENT_PHILOX_CHUNK)
        words(seed, stream, first_group + (uint64_t)j, out + 4 * j);
    if (j < groups) {
        uint32_t w[4 * AMBIENT_PHILOX_CHUNK] __attribute__((aligned(64)));
        words(seed, stream, first_group + (uint64_t)j, w);
        memcpy(out + 4 * j, w, (size_t)(groups - j) * 4 * sizeof(uint32_t));
    }
}

/* normal != 0: Box-Muller, else uniforms. A constant after inlining. The words of up to
 * AMBIENT_PHILOX_FLOAT_GROUPS groups are made first and converted in one long loop, whose
 * iterations the processor overlaps (one iteration of Box-Muller is a long dependency chain). */
#define AMBIENT_PHILOX_FLOAT_GROUPS 256
AMBIENT_FAST_INLINE void ambient_philox_floats_with(ambient_philox_words_fn *words, int normal, uint64_t seed,
                                                    uint64_t stream, uint64_t first_group, int64_t groups,
                                                    float *out) {
    uint32_t w[4 * AMBIENT_PHILOX_FLOAT_GROUPS] __attribute__((aligned(64)));
    for (int64_t j = 0; j < groups; j += AMBIENT_PHILOX_FLOAT_GROUPS) {
        int64_t m = groups - j < AMBIENT_PHILOX_FLOAT_GROUPS ? groups - j : AMBIENT_PHILOX_FLOAT_GROUPS;
        for (int64_t k = 0; k < m; k += AMBIENT_PHILOX_CHUNK)
            words(seed, stream, first_group + (uint64_t)(j + k), w + 4 * k);
        if (normal) ambient_philox_to_normal(w, 2 * m, out + 4 * j);
        else ambient_philox_to_uniform(w, 4 * m, out + 4 * j);
    }
}

#endif
