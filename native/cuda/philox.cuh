/*
 * The CPU backend's Philox 4x32-10 (cpu/philox.h), compiled for the device, so that both
 * backends draw bit-identical integers for (seed, stream, element): uniforms are then
 * identical too, and normals agree to about an ulp (CUDA's logf, sinf and cosf against libm's
 * or the CPU's polynomial ones).
 */
#ifndef AMBIENT_CUDA_PHILOX_CUH
#define AMBIENT_CUDA_PHILOX_CUH

#define AMBIENT_PHILOX_QUALIFIER static __host__ __device__ __forceinline__
#include "../cpu/philox.h"

#endif
