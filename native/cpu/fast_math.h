/*
 * Vectorisable float32 exp, log and sincos for the CPU backend's elementwise loops (silu,
 * softmax, Box-Muller). libm's expf/logf/sinf/cosf are scalar calls that stop the compiler
 * from vectorising a loop, so these are plain C that GCC vectorises at whatever width the
 * loop is compiled for (target_clones, or the -m flags of the philox_*.c files), given
 * -fno-math-errno -fno-trapping-math. Hence no fminf/fmaxf/roundf/fmaf (library calls without
 * -ffast-math on baseline x86-64): clamps are plain compares and rounding to an integer adds
 * 1.5 * 2^23. Where FMA is available the compiler contracts a * b + c, so results can differ
 * in the last bit between instruction sets; the errors below hold either way.
 *
 * Errors against double-precision libm, measured (with and without FMA):
 *   ambient_fast_expf    relative 2.4e-7 on [-87, 88]; x is clamped to that (result finite, > 0)
 *   ambient_fast_logf    x positive and normal; on [2^-24, 1]: absolute 2.5e-8 where
 *                        |ln x| < 0.5, relative 8.1e-8 elsewhere
 *   ambient_fast_sincosf absolute 7.8e-8 on [0, 2 pi); the reduction is accurate for |a| <= 8192
 */
#ifndef AMBIENT_FAST_MATH_H
#define AMBIENT_FAST_MATH_H

#include <stdint.h>

#define AMBIENT_FAST_INLINE static inline __attribute__((always_inline))

AMBIENT_FAST_INLINE float ambient_float_of_bits(uint32_t i) {
    union { uint32_t i; float f; } u = {.i = i};
    return u.f;
}

AMBIENT_FAST_INLINE uint32_t ambient_bits_of_float(float f) {
    union { float f; uint32_t i; } u = {.f = f};
    return u.i;
}

/* e^x: x = n ln2 + r with |r| <= ln2 / 2, a degree-6 polynomial for e^r, 2^n built in the
 * exponent bits. */
AMBIENT_FAST_INLINE float ambient_fast_expf(float x) {
    const float shifter = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    float shifted = x * 1.44269504088896341f + shifter;
    float n = shifted - shifter;
    /* ln2 in two parts (Cody-Waite); n * 0.693359375 is exact for |n| <= 128 */
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r;
    p += 1.0f;
    /* the low bits of `shifted` hold n */
    uint32_t scale = (ambient_bits_of_float(shifted) - 0x4B400000u + 127u) << 23;
    return p * ambient_float_of_bits(scale);
}

/* ln x for positive normal x: x = 2^e m with m in [sqrt(1/2), sqrt(2)), ln(1 + f) with
 * f = m - 1 (exact) by a degree-9 polynomial (Cephes' coefficients), ln 2 in two parts. */
AMBIENT_FAST_INLINE float ambient_fast_logf(float x) {
    uint32_t bits = ambient_bits_of_float(x);
    int32_t e = (int32_t)(bits >> 23) - 127;
    float m = ambient_float_of_bits((bits & 0x007FFFFFu) | 0x3F800000u); /* [1, 2) */
    int32_t big = m > 1.41421356f;
    m = big ? 0.5f * m : m;
    e += big;
    float f = m - 1.0f;
    float z = f * f;
    float p = 7.0376836292e-2f;
    p = p * f - 1.1514610310e-1f;
    p = p * f + 1.1676998740e-1f;
    p = p * f - 1.2420140846e-1f;
    p = p * f + 1.4249322787e-1f;
    p = p * f - 1.6668057665e-1f;
    p = p * f + 2.0000714765e-1f;
    p = p * f - 2.4999993993e-1f;
    p = p * f + 3.3333331174e-1f;
    float fe = (float)e;
    float y = p * f * z + fe * -2.12194440e-4f - 0.5f * z;
    return (f + y) + fe * 0.693359375f;
}

/* sin a and cos a: a = q pi/2 + t with |t| <= pi/4 (pi/2 in three parts, so t stays accurate
 * next to a zero of sin or cos), Cephes' polynomials on t, then the quadrant q mod 4 swaps
 * them and flips signs. */
AMBIENT_FAST_INLINE void ambient_fast_sincosf(float a, float *s_out, float *c_out) {
    const float shifter = 12582912.0f;
    float shifted = a * 0.636619772f + shifter;
    uint32_t q = ambient_bits_of_float(shifted) - 0x4B400000u; /* two's complement: q mod 4 holds */
    float qf = shifted - shifter;
    float t = a - qf * 1.5703125f;
    t = t - qf * 4.837512969970703125e-4f;
    t = t - qf * 7.54978995489188216e-8f;
    float z = t * t;
    float s = ((-1.9515295891e-4f * z + 8.3321608736e-3f) * z - 1.6666654611e-1f) * z * t + t;
    float c = ((2.443315711809948e-5f * z - 1.388731625493765e-3f) * z + 4.166664568298827e-2f) * z * z -
              0.5f * z + 1.0f;
    uint32_t swap = q & 1u;
    float sv = swap ? c : s, cv = swap ? s : c;
    *s_out = ambient_float_of_bits(ambient_bits_of_float(sv) ^ ((q & 2u) << 30));
    *c_out = ambient_float_of_bits(ambient_bits_of_float(cv) ^ (((q + 1u) & 2u) << 30));
}

#endif
