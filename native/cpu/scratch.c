/*
 * Scratch memory of the ops that pack or tile (GEMM, convolution, attention): each op family
 * keeps one 64-byte aligned block between calls in a cache slot of its own, so that the hot
 * path neither allocates nor faults in fresh pages; a call that finds the slot empty (another
 * thread holds the block) allocates its own. The first 64 bytes of a block hold its capacity
 * in floats. Blocks above AMBIENT_SCRATCH_KEEP_BYTES are freed after use rather than kept.
 */
#include "internal.h"

#include <stdlib.h>

#define HEADER_FLOATS 16
#define AMBIENT_SCRATCH_KEEP_BYTES (INT64_C(256) << 20)

float *ambient_scratch_take(void **slot, int64_t floats) {
    void *p = __atomic_exchange_n(slot, NULL, __ATOMIC_ACQ_REL);
    if (p != NULL && *(int64_t *)p >= floats) return (float *)p + HEADER_FLOATS;
    free(p);
    int64_t bytes;
    if (floats < 0 || __builtin_add_overflow(floats, HEADER_FLOATS, &bytes) ||
        __builtin_mul_overflow(bytes, (int64_t)sizeof(float), &bytes) || bytes > (INT64_C(1) << 60))
        return NULL;
    p = aligned_alloc(64, (size_t)((bytes + 63) / 64 * 64));
    if (p == NULL) return NULL;
    *(int64_t *)p = floats;
    return (float *)p + HEADER_FLOATS;
}

void ambient_scratch_give(void **slot, float *scratch) {
    if (scratch == NULL) return;
    void *p = scratch - HEADER_FLOATS;
    if (*(int64_t *)p * (int64_t)sizeof(float) > AMBIENT_SCRATCH_KEEP_BYTES) {
        free(p);
        return;
    }
    free(__atomic_exchange_n(slot, p, __ATOMIC_ACQ_REL));
}
