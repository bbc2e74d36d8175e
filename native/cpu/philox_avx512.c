/*
 * Philox 4x32-10 with AVX-512 (this file alone is compiled with -mavx512f/vl/dq/bw; random.c
 * calls it only when the kernel table is the AVX-512 one). See philox_block.h.
 *
 * 32 groups at once: each counter word of 8 groups sits in the low halves of 8 64-bit lanes,
 * four registers per word, so that each round has four independent chains to overlap.
 * vpmuludq multiplies the low halves into full 64-bit products (hi = product >> 32, lo = the
 * product itself, whose high half is then ignored), which is the whole point: compilers widen
 * the 32 x 32 -> 64-bit multiply of plain C to a 64 x 64 one, three times slower.
 */
#include "philox.h"
#include "philox_block.h"

#include <immintrin.h>

#define V (AMBIENT_PHILOX_CHUNK / 8)

static void words(uint64_t seed, uint64_t stream, uint64_t group0, uint32_t *out) {
    __m512i c0[V], c1[V], c2[V], c3[V];
    const __m512i m0 = _mm512_set1_epi64(AMBIENT_PHILOX_M0), m1 = _mm512_set1_epi64(AMBIENT_PHILOX_M1);
    const __m512i lane = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    for (int v = 0; v < V; v++) {
        __m512i g = _mm512_add_epi64(_mm512_set1_epi64((int64_t)(group0 + 8 * (uint64_t)v)), lane);
        c0[v] = g; /* the high half is ignored */
        c1[v] = _mm512_srli_epi64(g, 32);
        c2[v] = _mm512_set1_epi64((int64_t)(uint32_t)stream);
        c3[v] = _mm512_set1_epi64((int64_t)(stream >> 32));
    }
    uint32_t ka = (uint32_t)seed, kb = (uint32_t)(seed >> 32);
    for (int round = 0; round < 10; round++) {
        const __m512i a = _mm512_set1_epi64(ka), b = _mm512_set1_epi64(kb);
        for (int v = 0; v < V; v++) {
            __m512i p0 = _mm512_mul_epu32(c0[v], m0), p1 = _mm512_mul_epu32(c2[v], m1);
            c0[v] = _mm512_ternarylogic_epi64(_mm512_srli_epi64(p1, 32), c1[v], a, 0x96); /* three-way xor */
            c2[v] = _mm512_ternarylogic_epi64(_mm512_srli_epi64(p0, 32), c3[v], b, 0x96);
            c1[v] = p1;
            c3[v] = p0;
        }
        ka += AMBIENT_PHILOX_W0;
        kb += AMBIENT_PHILOX_W1;
    }
    /* Low halves to group order: (c0, c1) and (c2, c3) of a group into one 64-bit lane each,
     * then those pairs interleaved: four permutes per 8 groups. */
    const __m512i pick01 = _mm512_setr_epi32(0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30);
    const __m512i first = _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11);
    const __m512i second = _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15);
    for (int v = 0; v < V; v++) {
        __m512i c01 = _mm512_permutex2var_epi32(c0[v], pick01, c1[v]);
        __m512i c23 = _mm512_permutex2var_epi32(c2[v], pick01, c3[v]);
        _mm512_storeu_si512(out + 32 * v, _mm512_permutex2var_epi64(c01, first, c23));
        _mm512_storeu_si512(out + 32 * v + 16, _mm512_permutex2var_epi64(c01, second, c23));
    }
}

void ambient_philox_bits_avx512(uint64_t seed, uint64_t stream, uint64_t first_group, int64_t groups, uint32_t *out) {
    ambient_philox_bits_with(words, seed, stream, first_group, groups, out);
}

void ambient_philox_uniform_avx512(uint64_t seed, uint64_t stream, uint64_t first_group, int64_t groups, float *out) {
    ambient_philox_floats_with(words, 0, seed, stream, first_group, groups, out);
}

void ambient_philox_normal_avx512(uint64_t seed, uint64_t stream, uint64_t first_group, int64_t groups, float *out) {
    ambient_philox_floats_with(words, 1, seed, stream, first_group, groups, out);
}
