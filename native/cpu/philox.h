/*
 * Philox 4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011):
 * a counter-based generator, so that random number e of a stream is a pure function of
 * (seed, stream, e). Both backends include this file (CUDA with AMBIENT_PHILOX_QUALIFIER set
 * to __host__ __device__), so they draw bit-identical integers; the float transforms below use
 * logf/cosf/sinf/sqrtf, which agree across backends to an ulp or two.
 *
 * Layout: counter = (group low, group high, stream low, stream high), key = (seed low, seed high);
 * one call gives the 4 numbers of group g, i.e. elements 4g .. 4g + 3 of the stream.
 *   uniform: (bits >> 8) * 2^-24 in [0, 1)
 *   normal:  Box-Muller on lanes (0, 1) and (2, 3): u in (0, 1] from (bits >> 8) + 1,
 *            r = sqrt(-2 ln u0), z0 = r cos(2 pi u1), z1 = r sin(2 pi u1)
 */
#ifndef AMBIENT_PHILOX_H
#define AMBIENT_PHILOX_H

#include <math.h>
#include <stdint.h>

#ifndef AMBIENT_PHILOX_QUALIFIER
#define AMBIENT_PHILOX_QUALIFIER static inline
#endif

#define AMBIENT_PHILOX_M0 0xD2511F53u
#define AMBIENT_PHILOX_M1 0xCD9E8D57u
#define AMBIENT_PHILOX_W0 0x9E3779B9u
#define AMBIENT_PHILOX_W1 0xBB67AE85u

AMBIENT_PHILOX_QUALIFIER void ambient_philox4x32(uint64_t seed, uint64_t stream, uint64_t group,
                                                 uint32_t out[4]) {
    uint32_t c0 = (uint32_t)group, c1 = (uint32_t)(group >> 32);
    uint32_t c2 = (uint32_t)stream, c3 = (uint32_t)(stream >> 32);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)AMBIENT_PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)AMBIENT_PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += AMBIENT_PHILOX_W0;
        k1 += AMBIENT_PHILOX_W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

/* Elements 4 group .. 4 group + 3 of a uniform [0, 1) stream. */
AMBIENT_PHILOX_QUALIFIER void ambient_philox_uniform4(uint64_t seed, uint64_t stream, uint64_t group,
                                                      float out[4]) {
    uint32_t bits[4];
    ambient_philox4x32(seed, stream, group, bits);
    for (int i = 0; i < 4; i++) out[i] = (float)(bits[i] >> 8) * (1.0f / 16777216.0f);
}

/* Elements 4 group .. 4 group + 3 of a standard normal stream. */
AMBIENT_PHILOX_QUALIFIER void ambient_philox_normal4(uint64_t seed, uint64_t stream, uint64_t group,
                                                     float out[4]) {
    uint32_t bits[4];
    ambient_philox4x32(seed, stream, group, bits);
    for (int pair = 0; pair < 2; pair++) {
        float u0 = (float)((bits[2 * pair] >> 8) + 1) * (1.0f / 16777216.0f);
        float u1 = (float)(bits[2 * pair + 1] >> 8) * (1.0f / 16777216.0f);
        float r = sqrtf(-2.0f * logf(u0));
        float angle = 6.283185307179586f * u1;
        out[2 * pair] = r * cosf(angle);
        out[2 * pair + 1] = r * sinf(angle);
    }
}

#endif
