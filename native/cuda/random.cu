/*
 * Random numbers from Philox 4x32-10 on the GPU: the CPU's generator (cpu/philox.h through
 * philox.cuh), so element e of (seed, stream) starting at `offset` is lane (offset + e) % 4 of
 * group (offset + e) / 4 on both backends. Uniforms are bit-identical to the CPU's; normals
 * (Box-Muller with CUDA's logf, sqrtf, cosf and sinf) agree to about 1e-6 (1 + |z|).
 * One thread per Philox group (grid-stride); the first and last groups of a call that starts
 * or ends inside a group keep only the lanes the call owns.
 */
#include "internal.cuh"
#include "philox.cuh"

template <bool NORMAL>
struct stream_op {
    int64_t count;
    uint64_t seed, stream, offset, first_group;
    float *y;
    __device__ void operator()(int64_t g) const {
        float v[4];
        uint64_t group = first_group + (uint64_t)g;
        if (NORMAL) ambient_philox_normal4(seed, stream, group, v);
        else ambient_philox_uniform4(seed, stream, group, v);
#pragma unroll
        for (int q = 0; q < 4; q++) {
            uint64_t index = 4 * group + (uint64_t)q;
            if (index < offset || (int64_t)(index - offset) >= count) continue;
            y[index - offset] = v[q];
        }
    }
};

template <bool NORMAL>
static int random_stream(const char *function, int64_t count, int64_t seed, int64_t stream, int64_t offset,
                         float *y) {
    AMBIENT_REQUIRE(count >= 0 && count <= AMBIENT_MAX_COUNT, "%s: count = %lld is %s", function,
                    (long long)count, count < 0 ? "negative" : "too large");
    AMBIENT_REQUIRE(offset >= 0, "%s: offset = %lld is negative", function, (long long)offset);
    AMBIENT_REQUIRE(offset <= INT64_MAX - count, "%s: offset + count = %lld + %lld overflows", function,
                    (long long)offset, (long long)count);
    if (count == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE(y != NULL, "%s: y is NULL", function);
    ambient_cuda_context ctx;
    int status = ambient_cuda_begin(function, &ctx);
    if (status) return status;
    uint64_t first = (uint64_t)offset / 4, last = ((uint64_t)offset + (uint64_t)count - 1) / 4;
    stream_op<NORMAL> op{count, (uint64_t)seed, (uint64_t)stream, (uint64_t)offset, first, y};
    AMBIENT_CUDA_CHECK_AS(function, ambient_for_each(ctx, (int64_t)(last - first + 1), op));
    return AMBIENT_STATUS_OK;
}

int ambient_random_uniform(int64_t count, int64_t seed, int64_t stream, int64_t offset, float *y) {
    ambient_cuda_clear_error();
    return random_stream<false>(__func__, count, seed, stream, offset, y);
}

int ambient_random_normal(int64_t count, int64_t seed, int64_t stream, int64_t offset, float *y) {
    ambient_cuda_clear_error();
    return random_stream<true>(__func__, count, seed, stream, offset, y);
}
