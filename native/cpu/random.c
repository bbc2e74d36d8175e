/*
 * Random numbers from Philox 4x32-10 (philox.h): element e of (seed, stream) starting at
 * `offset` is lane (offset + e) % 4 of group (offset + e) / 4, so a call's numbers depend only
 * on (seed, stream, offset + e), never on how the work is split over threads, calls or
 * backends. Offsets and counts need not be multiples of 4: a range that starts or ends inside
 * a group computes the whole group and keeps the lanes it owns; whole groups are written
 * straight into y.
 *
 * The generator is philox_block.h's (this file holds its portable version and picks one of
 * the three once). Uniforms are integer work plus an exact conversion, so they are
 * bit-identical to philox.h everywhere; normals use fast_math.h's log and sincos, within
 * ~1e-6 of philox.h's libm-based Box-Muller.
 */
#include "internal.h"
#include "kernels.h"
#include "philox.h"
#include "philox_block.h"

#include <string.h>

#define PARALLEL_THRESHOLD 65536

/* ---- The generator: portable version and the run-time choice ------------------------------ */

static void words_portable(uint64_t seed, uint64_t stream, uint64_t group0, uint32_t *out) {
    for (int j = 0; j < AMBIENT_PHILOX_CHUNK; j++) ambient_philox4x32(seed, stream, group0 + (uint64_t)j, out + 4 * j);
}

static void bits_portable(uint64_t seed, uint64_t stream, uint64_t first_group, int64_t groups, uint32_t *out) {
    ambient_philox_bits_with(words_portable, seed, stream, first_group, groups, out);
}

static void uniform_portable(uint64_t seed, uint64_t stream, uint64_t first_group, int64_t groups, float *out) {
    ambient_philox_floats_with(words_portable, 0, seed, stream, first_group, groups, out);
}

static void normal_portable(uint64_t seed, uint64_t stream, uint64_t first_group, int64_t groups, float *out) {
    ambient_philox_floats_with(words_portable, 1, seed, stream, first_group, groups, out);
}

typedef struct {
    ambient_philox_bits_fn *bits;
    ambient_philox_floats_fn *uniform, *normal;
} philox_impl;

static const philox_impl impl_avx512 = {ambient_philox_bits_avx512, ambient_philox_uniform_avx512,
                                         ambient_philox_normal_avx512};
static const philox_impl impl_avx2 = {ambient_philox_bits_avx2, ambient_philox_uniform_avx2,
                                      ambient_philox_normal_avx2};
static const philox_impl impl_portable = {bits_portable, uniform_portable, normal_portable};

/* Follows the kernel table, which checked the processor and AMBIENT_CPU_ISA. */
static const philox_impl *philox_impl_get(void) {
    static const philox_impl *chosen;
    const philox_impl *p = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);
    if (p == NULL) {
        const char *isa = ambient_cpu_kernels_get()->name;
        p = strcmp(isa, "avx512") == 0 ? &impl_avx512 : strcmp(isa, "avx2") == 0 ? &impl_avx2 : &impl_portable;
        __atomic_store_n(&chosen, p, __ATOMIC_RELEASE);
    }
    return p;
}

void ambient_philox_bits_block(uint64_t seed, uint64_t stream, uint64_t first_group, int64_t groups, uint32_t *out) {
    philox_impl_get()->bits(seed, stream, first_group, groups, out);
}

void ambient_philox_uniform_block(uint64_t seed, uint64_t stream, uint64_t first_group, int64_t groups, float *out) {
    philox_impl_get()->uniform(seed, stream, first_group, groups, out);
}

void ambient_philox_normal_block(uint64_t seed, uint64_t stream, uint64_t first_group, int64_t groups, float *out) {
    philox_impl_get()->normal(seed, stream, first_group, groups, out);
}

/* ---- The entry points --------------------------------------------------------------------- */

/* Elements [begin, end) of a call: y[i] = element offset + i of the stream. */
static void stream_range(ambient_philox_floats_fn *block, int64_t begin, int64_t end, uint64_t seed,
                         uint64_t stream, uint64_t offset, float *y) {
    uint64_t index = offset + (uint64_t)begin, stop = offset + (uint64_t)end;
    float *out = y + begin;
    if (index % 4 != 0) { /* the head, inside a group */
        float z[4];
        block(seed, stream, index / 4, 1, z);
        uint64_t lane = index % 4, take = stop - index < 4 - lane ? stop - index : 4 - lane;
        memcpy(out, z + lane, (size_t)take * sizeof(float));
        out += take;
        index += take;
    }
    int64_t groups = (int64_t)((stop - index) / 4);
    if (groups > 0) block(seed, stream, index / 4, groups, out);
    out += 4 * groups;
    index += 4 * (uint64_t)groups;
    if (index < stop) { /* the tail */
        float z[4];
        block(seed, stream, index / 4, 1, z);
        memcpy(out, z, (size_t)(stop - index) * sizeof(float));
    }
}

static int check_stream(const char *function, int64_t count, int64_t offset) {
    AMBIENT_REQUIRE_COUNT(count);
    AMBIENT_REQUIRE(offset >= 0, "%s: offset = %lld is negative", function, (long long)offset);
    AMBIENT_REQUIRE(offset <= INT64_MAX - count, "%s: offset + count = %lld + %lld overflows",
                    function, (long long)offset, (long long)count);
    return AMBIENT_STATUS_OK;
}

int ambient_random_uniform(int64_t count, int64_t seed, int64_t stream, int64_t offset, float *y) {
    ambient_clear_error();
    int status = check_stream(__func__, count, offset);
    if (status) return status;
    if (count == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(y);
    ambient_philox_floats_fn *block = philox_impl_get()->uniform;
    AMBIENT_PARALLEL_CHUNKS(count, PARALLEL_THRESHOLD,
                            stream_range(block, begin, end, (uint64_t)seed, (uint64_t)stream, (uint64_t)offset, y));
    return AMBIENT_STATUS_OK;
}

int ambient_random_normal(int64_t count, int64_t seed, int64_t stream, int64_t offset, float *y) {
    ambient_clear_error();
    int status = check_stream(__func__, count, offset);
    if (status) return status;
    if (count == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(y);
    ambient_philox_floats_fn *block = philox_impl_get()->normal;
    /* Box-Muller costs a log, a sqrt and a sincos per pair: worth threads at smaller counts. */
    AMBIENT_PARALLEL_CHUNKS(count, PARALLEL_THRESHOLD / 4,
                            stream_range(block, begin, end, (uint64_t)seed, (uint64_t)stream, (uint64_t)offset, y));
    return AMBIENT_STATUS_OK;
}
