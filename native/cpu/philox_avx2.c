/*
 * Philox 4x32-10 with AVX2 (this file alone is compiled with -mavx2 -mfma; random.c calls it
 * only when the kernel table is the AVX2 one). See philox_block.h and philox_avx512.c: the
 * same scheme, counter words of 4 groups in the low halves of 64-bit lanes, multiplied with
 * vpmuludq. V registers per word: with 16 ymm registers, 4 x V counters plus 4 constants.
 */
#include "philox.h"
#include "philox_block.h"

#include <immintrin.h>

#define V 2

/* Groups group0 .. group0 + 4 V - 1 into out[0 .. 16 V). */
static inline __attribute__((always_inline)) void rounds(uint64_t seed, uint64_t stream, uint64_t group0,
                                                         uint32_t *out) {
    __m256i c0[V], c1[V], c2[V], c3[V];
    const __m256i m0 = _mm256_set1_epi64x(AMBIENT_PHILOX_M0), m1 = _mm256_set1_epi64x(AMBIENT_PHILOX_M1);
    const __m256i lane = _mm256_setr_epi64x(0, 1, 2, 3);
    for (int v = 0; v < V; v++) {
        __m256i g = _mm256_add_epi64(_mm256_set1_epi64x((int64_t)(group0 + 4 * (uint64_t)v)), lane);
        c0[v] = g; /* the high half is ignored */
        c1[v] = _mm256_srli_epi64(g, 32);
        c2[v] = _mm256_set1_epi64x((int64_t)(uint32_t)stream);
        c3[v] = _mm256_set1_epi64x((int64_t)(stream >> 32));
    }
    uint32_t ka = (uint32_t)seed, kb = (uint32_t)(seed >> 32);
    for (int round = 0; round < 10; round++) {
        const __m256i a = _mm256_set1_epi64x(ka), b = _mm256_set1_epi64x(kb);
        for (int v = 0; v < V; v++) {
            __m256i p0 = _mm256_mul_epu32(c0[v], m0), p1 = _mm256_mul_epu32(c2[v], m1);
            c0[v] = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p1, 32), c1[v]), a);
            c2[v] = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p0, 32), c3[v]), b);
            c1[v] = p1;
            c3[v] = p0;
        }
        ka += AMBIENT_PHILOX_W0;
        kb += AMBIENT_PHILOX_W1;
    }
    /* Low halves to group order: (c0, c1) and (c2, c3) of a group into one 64-bit lane each,
     * then the pairs interleaved and the 128-bit halves put in order. */
    for (int v = 0; v < V; v++) {
        __m256i c01 = _mm256_blend_epi32(c0[v], _mm256_slli_epi64(c1[v], 32), 0xAA);
        __m256i c23 = _mm256_blend_epi32(c2[v], _mm256_slli_epi64(c3[v], 32), 0xAA);
        __m256i lo = _mm256_unpacklo_epi64(c01, c23), hi = _mm256_unpackhi_epi64(c01, c23);
        _mm256_storeu_si256((__m256i *)(out + 16 * v), _mm256_permute2x128_si256(lo, hi, 0x20));
        _mm256_storeu_si256((__m256i *)(out + 16 * v + 8), _mm256_permute2x128_si256(lo, hi, 0x31));
    }
}

static void words(uint64_t seed, uint64_t stream, uint64_t group0, uint32_t *out) {
    int g = 0;
    for (; g + 4 * V <= AMBIENT_PHILOX_CHUNK; g += 4 * V) rounds(seed, stream, group0 + (uint64_t)g, out + 4 * g);
    if (g < AMBIENT_PHILOX_CHUNK) {
        uint32_t w[16 * V];
        rounds(seed, stream, group0 + (uint64_t)g, w);
        memcpy(out + 4 * g, w, (size_t)(AMBIENT_PHILOX_CHUNK - g) * 4 * sizeof(uint32_t));
    }
}

void ambient_philox_bits_avx2(uint64_t seed, uint64_t stream, uint64_t first_group, int64_t groups, uint32_t *out) {
    ambient_philox_bits_with(words, seed, stream, first_group, groups, out);
}

void ambient_philox_uniform_avx2(uint64_t seed, uint64_t stream, uint64_t first_group, int64_t groups, float *out) {
    ambient_philox_floats_with(words, 0, seed, stream, first_group, groups, out);
}

void ambient_philox_normal_avx2(uint64_t seed, uint64_t stream, uint64_t first_group, int64_t groups, float *out) {
    ambient_philox_floats_with(words, 1, seed, stream, first_group, groups, out);
}
