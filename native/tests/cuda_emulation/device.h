/*
 * What a file of native/cuda needs to compile with the host C++ compiler into the emulated CUDA
 * library (libambient_cuda_emulated.so, a test tool; runtime.cpp has the other half). The
 * build includes this header before each .cu file. It keeps the CUDA toolkit's own host headers
 * (types, the runtime API's declarations, which runtime.cpp implements) and then turns the
 * device dialect into plain C++:
 *   - __global__, __device__, __host__ and __launch_bounds__ vanish; a kernel is a function
 *     that every emulated thread calls;
 *   - __shared__ variables become static ones: the emulation runs one block at a time (and one
 *     launch at a time), so one copy serves the block that is running;
 *   - threadIdx, blockIdx, blockDim and gridDim read the running thread's and block's indices;
 *   - barriers, warp shuffles and mma.cuh's warp instructions go to block.h's scheduler;
 *   - AMBIENT_LAUNCH runs the whole grid before it returns (internal.cuh has the CUDA form);
 *   - AMBIENT_DYNAMIC_SHARED is the launch's dynamic shared memory, poisoned for each block.
 */
#ifndef AMBIENT_TEST_CUDA_EMULATION_DEVICE_H
#define AMBIENT_TEST_CUDA_EMULATION_DEVICE_H

#ifndef AMBIENT_MMA_EMULATION
#define AMBIENT_MMA_EMULATION 1
#endif

#include <cuda_runtime.h>

#include <cmath>
#include <functional>
#include <stdint.h>
#include <string.h>
#include <tuple>
#include <type_traits>
#include <utility>

#undef __global__
#define __global__
#undef __device__
#define __device__
#undef __host__
#define __host__
#undef __forceinline__
#define __forceinline__ inline
#undef __shared__
#define __shared__ static
#undef __launch_bounds__
#define __launch_bounds__(...)

namespace cuda_emulation {

/* runtime.cpp: the running thread's index in its block, the running block's index, the
 * launch's shapes and dynamic shared memory, and the block's barrier and warp shuffle. */
uint3 thread_index(void);
uint3 block_index(void);
dim3 block_shape(void);
dim3 grid_shape(void);
void *dynamic_shared_memory(void);
void block_barrier(void);
void warp_barrier(unsigned mask);
int lane(void);
uint64_t warp_shuffle(uint64_t value, int source_lane, unsigned mask);

/* Whether p points into (or just past) a device allocation. */
bool device_pointer(const void *p);

/* Records an illegal-address launch failure (a sticky error, as a fault on the GPU) naming the
 * kernel's argument `index`, a pointer that is neither NULL nor device memory. */
void host_pointer_argument(int index, const void *p);

/* Runs thread_body on every thread of every block of the grid, one block at a time, and
 * records what cudaGetLastError() then answers: an invalid configuration (too many threads,
 * more dynamic shared memory than the kernel may use) is refused without running, and a
 * problem inside a block is a launch failure. */
void run_grid(const void *kernel, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
              const std::function<void(void)> &thread_body);

/* Pointer arguments must be NULL or device memory: a kernel that dereferences a host pointer
 * faults on the GPU. (Pointers inside a struct argument are not looked at.) */
template <typename T>
bool check_argument(const T &, int) {
    return true;
}
template <typename T>
bool check_argument(T *const &p, int index) {
    if (p == nullptr || device_pointer(p)) return true;
    host_pointer_argument(index, p);
    return false;
}

/* AMBIENT_LAUNCH(...)(arguments): the arguments are converted to the kernel's parameter types
 * once, as a launch copies them, their pointers checked, and every thread calls the kernel with
 * those copies. */
template <typename... P>
struct launcher {
    void (*kernel)(P...);
    dim3 grid, block;
    size_t shared_bytes;
    cudaStream_t stream;

    template <typename... A>
    void operator()(A &&...arguments) const {
        std::tuple<std::decay_t<P>...> copies(std::forward<A>(arguments)...);
        const bool pointers_ok = std::apply(
            [](const auto &...copy) {
                bool ok = true;
                int index = 0;
                ((ok = check_argument(copy, index++) && ok), ...);
                return ok;
            },
            copies);
        if (!pointers_ok) return;
        run_grid((const void *)kernel, grid, block, shared_bytes, stream, [&] { std::apply(kernel, copies); });
    }
};

template <typename... P>
launcher<P...> launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream) {
    return launcher<P...>{kernel, grid, block, shared_bytes, stream};
}

template <typename T>
T shuffle_from(T value, int source_lane, unsigned mask) {
    static_assert(sizeof(T) == 4 || sizeof(T) == 8, "shuffles move 32 or 64 bits");
    uint64_t bits = 0;
    memcpy(&bits, &value, sizeof value);
    bits = warp_shuffle(bits, source_lane, mask);
    memcpy(&value, &bits, sizeof value);
    return value;
}

} /* namespace cuda_emulation */

#define threadIdx (cuda_emulation::thread_index())
#define blockIdx (cuda_emulation::block_index())
#define blockDim (cuda_emulation::block_shape())
#define gridDim (cuda_emulation::grid_shape())

#define AMBIENT_LAUNCH(grid, block, shared_bytes, stream, ...)                                      \
    cuda_emulation::launch(__VA_ARGS__, grid, block, shared_bytes, stream)
#define AMBIENT_DYNAMIC_SHARED(type, name) type *const name = (type *)cuda_emulation::dynamic_shared_memory()

/* The runtime's C++ overload for kernels, which the header declares only for nvcc. */
template <typename T>
static inline cudaError_t cudaFuncSetAttribute(T *kernel, cudaFuncAttribute attribute, int value) {
    return cudaFuncSetAttribute((const void *)kernel, attribute, value);
}

/* ---- Device functions ------------------------------------------------------------------------------ */

static inline void __syncthreads(void) { cuda_emulation::block_barrier(); }
static inline void __syncwarp(unsigned mask = 0xffffffffu) { cuda_emulation::warp_barrier(mask); }

/* Within segments of `width` lanes: a source outside the caller's segment gives the caller's own
 * value, as on the GPU. (Only what native/cuda uses is here; a kernel that needs another device
 * function fails to compile into this library, naming it.) */
template <typename T>
static inline T __shfl_xor_sync(unsigned mask, T value, int lane_mask, int width = 32) {
    const int lane = cuda_emulation::lane(), from = lane ^ lane_mask;
    return cuda_emulation::shuffle_from(value, from / width == lane / width ? from : lane, mask);
}

/* One emulated thread runs at a time: plain read-modify-writes are atomic. */
template <typename T>
static inline T atomicAdd(T *address, T value) {
    T old = *address;
    *address = old + value;
    return old;
}

using std::isfinite;
using std::isinf;
using std::isnan;

static inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((uint64_t)a * b) >> 32); }

#endif
