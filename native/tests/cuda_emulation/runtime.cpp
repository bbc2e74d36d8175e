/*
 * The other half of the emulated CUDA library (device.h is the first): the part of the CUDA
 * runtime API that native/cuda calls, implemented on the host, and the launch of a grid on
 * block.h's scheduler. One emulated device:
 *   - device memory is host memory from malloc, filled with 0xff bytes (NaN as floats) when
 *     allocated, and every copy and fill checks that its device side lies inside an allocation
 *     (a host pointer passed as a device one is reported, as the GPU would fault);
 *   - a launch runs to its end before AMBIENT_LAUNCH returns, one block at a time, under a lock
 *     (static __shared__ variables exist once); streams and events only order and time that;
 *   - dynamic shared memory is poisoned before each block;
 *   - a kernel's pointer arguments must be NULL or device memory (illegal address otherwise);
 *   - the device claims sm_90 with 4 multiprocessors, so that grid-stride loops take several
 *     turns; dynamic shared memory above 48 KiB needs cudaFuncSetAttribute, up to H100's
 *     227 KiB, as on the GPU;
 *   - a problem inside a block (block.h) is a sticky launch failure, as a fault on the GPU is.
 * The names and messages are the runtime's, so that the library reports them as it would.
 */
#include "cuda_emulation/device.h"
#include "cuda_emulation/block.h"

#include <chrono>
#include <map>
#include <mutex>
#include <stdio.h>
#include <stdlib.h>

namespace {

constexpr int SM_COUNT = 4;
constexpr size_t DEFAULT_SHARED = 48 * 1024, OPTIN_SHARED = 227 * 1024;
constexpr size_t NOMINAL_MEMORY = (size_t)16 << 30;

std::mutex state_mutex;                       /* allocations, attributes, the sticky error */
std::map<uintptr_t, size_t> allocations;      /* base -> bytes */
size_t allocated_bytes;
std::map<const void *, size_t> shared_optin;  /* kernel -> its dynamic shared memory limit */
cudaError_t sticky = cudaSuccess;
thread_local cudaError_t last = cudaSuccess;
thread_local int current_device = 0;

std::mutex launch_mutex;
dim3 launch_grid, launch_block;
uint3 running_block;
void *running_shared;

cudaError_t fail(cudaError_t error, const char *format, ...) __attribute__((format(printf, 2, 3)));
cudaError_t fail(cudaError_t error, const char *format, ...) {
    va_list args;
    va_start(args, format);
    cuda_emulation::print_message(format, args);
    va_end(args);
    last = error;
    return error;
}

/* True when [p, p + bytes) lies inside one device allocation (bytes 0: p may be its end). */
bool on_device(const void *p, size_t bytes) {
    std::lock_guard<std::mutex> lock(state_mutex);
    auto it = allocations.upper_bound((uintptr_t)p);
    if (it == allocations.begin()) return false;
    --it;
    return (uintptr_t)p >= it->first && (uintptr_t)p + bytes <= it->first + it->second;
}

cudaError_t check_sticky(void) {
    std::lock_guard<std::mutex> lock(state_mutex);
    return sticky;
}

struct event {
    std::chrono::steady_clock::time_point time;
    bool recorded = false;
};

} /* namespace */

/* ---- What device code calls (device.h) --------------------------------------------------------------- */

namespace cuda_emulation {

bool device_pointer(const void *p) { return on_device(p, 0); }

void host_pointer_argument(int index, const void *p) {
    fail(cudaErrorIllegalAddress, "a kernel's argument %d, %p, is neither NULL nor device memory", index, p);
    std::lock_guard<std::mutex> lock(state_mutex);
    sticky = cudaErrorIllegalAddress;
}

uint3 thread_index(void) {
    const unsigned tid = (unsigned)current_thread();
    return uint3{tid % launch_block.x, tid / launch_block.x % launch_block.y, tid / (launch_block.x * launch_block.y)};
}
uint3 block_index(void) { return running_block; }
dim3 block_shape(void) { return launch_block; }
dim3 grid_shape(void) { return launch_grid; }
void *dynamic_shared_memory(void) { return running_shared; }
void block_barrier(void) { sync_block(); }
void warp_barrier(unsigned mask) { sync_warp(mask); }
int lane(void) { return current_thread() % 32; }
uint64_t warp_shuffle(uint64_t value, int source_lane, unsigned mask) { return shuffle(value, source_lane, mask); }

void run_grid(const void *kernel, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
              const std::function<void(void)> &thread_body) {
    (void)stream;
    if (check_sticky() != cudaSuccess) {
        last = sticky;
        return;
    }
    const uint64_t threads = (uint64_t)block.x * block.y * block.z;
    if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
        grid.y > 65535 || grid.z > 65535) {
        fail(cudaErrorInvalidConfiguration, "launch of grid (%u, %u, %u) of blocks (%u, %u, %u) refused", grid.x,
             grid.y, grid.z, block.x, block.y, block.z);
        return;
    }
    size_t limit = DEFAULT_SHARED;
    {
        std::lock_guard<std::mutex> lock(state_mutex);
        auto it = shared_optin.find(kernel);
        if (it != shared_optin.end() && it->second > limit) limit = it->second;
    }
    if (shared_bytes > limit) {
        fail(cudaErrorInvalidValue, "launch with %zu bytes of dynamic shared memory, the kernel may use %zu",
             shared_bytes, limit);
        return;
    }
    std::lock_guard<std::mutex> lock(launch_mutex);
    launch_grid = grid;
    launch_block = block;
    std::vector<uint32_t> shared((shared_bytes + 3) / 4);
    const std::function<void(int)> body = [&](int) { thread_body(); };
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                running_block = uint3{x, y, z};
                /* NaN in every float, bf16 half and tf32 word, for each block afresh */
                std::fill(shared.begin(), shared.end(), 0x7fc07fc0u);
                running_shared = shared.empty() ? nullptr : shared.data();
                if (emulate_thread_block((int)threads, shared.empty() ? nullptr : shared.data(), shared.size(),
                                         body) != 0) {
                    fail(cudaErrorLaunchFailure, "block (%u, %u, %u) of a grid (%u, %u, %u) of %llu threads each "
                                                 "failed (above)",
                         x, y, z, grid.x, grid.y, grid.z, (unsigned long long)threads);
                    std::lock_guard<std::mutex> state(state_mutex);
                    sticky = cudaErrorLaunchFailure;
                    return;
                }
            }
}

} /* namespace cuda_emulation */

/* ---- The runtime API ----------------------------------------------------------------------------------- */

cudaError_t cudaGetLastError(void) {
    cudaError_t error = last;
    last = check_sticky();
    return error != cudaSuccess ? error : last;
}

cudaError_t cudaPeekAtLastError(void) { return last != cudaSuccess ? last : check_sticky(); }

const char *cudaGetErrorName(cudaError_t error) {
    switch (error) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    default: return "cudaErrorUnknown";
    }
}

const char *cudaGetErrorString(cudaError_t error) {
    switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorLaunchFailure: return "unspecified launch failure (emulated)";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered (emulated)";
    default: return "unknown error";
    }
}

cudaError_t cudaGetDeviceCount(int *count) {
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device) {
    if (device != 0) return fail(cudaErrorInvalidDevice, "cudaGetDeviceProperties(%d)", device);
    memset(prop, 0, sizeof *prop);
    snprintf(prop->name, sizeof prop->name, "CUDA emulation on the host");
    prop->major = 9;
    prop->minor = 0;
    prop->multiProcessorCount = SM_COUNT;
    prop->totalGlobalMem = NOMINAL_MEMORY;
    prop->sharedMemPerBlock = DEFAULT_SHARED;
    prop->sharedMemPerBlockOptin = OPTIN_SHARED;
    prop->maxThreadsPerBlock = 1024;
    prop->warpSize = 32;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
    if (device != 0) return fail(cudaErrorInvalidDevice, "cudaSetDevice(%d)", device);
    current_device = device;
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int *device) {
    *device = current_device;
    return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned int flags) {
    (void)flags;
    *stream = (cudaStream_t) new char[1];
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
    (void)stream;
    return check_sticky();
}

cudaError_t cudaDeviceSynchronize(void) { return check_sticky(); }

cudaError_t cudaMalloc(void **ptr, size_t bytes) {
    *ptr = nullptr;
    if (check_sticky() != cudaSuccess) return sticky;
    std::lock_guard<std::mutex> lock(state_mutex);
    if (allocated_bytes + bytes > NOMINAL_MEMORY)
        return last = cudaErrorMemoryAllocation;
    /* 256-byte aligned as cudaMalloc's, and exactly `bytes` long, so that AddressSanitizer sees
     * a kernel step past the end */
    void *p = nullptr;
    if (posix_memalign(&p, 256, bytes > 0 ? bytes : 1) != 0) return last = cudaErrorMemoryAllocation;
    memset(p, 0xff, bytes); /* NaN: memory the library reads before writing shows */
    allocations[(uintptr_t)p] = bytes;
    allocated_bytes += bytes;
    *ptr = p;
    return cudaSuccess;
}

cudaError_t cudaFree(void *ptr) {
    if (!ptr) return cudaSuccess;
    std::lock_guard<std::mutex> lock(state_mutex);
    auto it = allocations.find((uintptr_t)ptr);
    if (it == allocations.end()) {
        fprintf(stderr, "cuda emulation: cudaFree(%p): not an allocation\n", ptr);
        return last = cudaErrorInvalidValue;
    }
    allocated_bytes -= it->second;
    allocations.erase(it);
    free(ptr);
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    std::lock_guard<std::mutex> lock(state_mutex);
    *free_bytes = NOMINAL_MEMORY - allocated_bytes;
    *total_bytes = NOMINAL_MEMORY;
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
    (void)stream;
    if (check_sticky() != cudaSuccess) return sticky;
    if (bytes == 0) return cudaSuccess;
    const bool dst_device = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    const bool src_device = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if ((dst_device && !on_device(dst, bytes)) || (src_device && !on_device(src, bytes)) ||
        (!dst_device && kind != cudaMemcpyDefault && on_device(dst, 1)) ||
        (!src_device && kind != cudaMemcpyDefault && on_device(src, 1)))
        return fail(cudaErrorInvalidValue, "cudaMemcpyAsync(%p, %p, %zu bytes, kind %d): a side is not where the kind "
                                           "says",
                    dst, src, bytes, (int)kind);
    memmove(dst, src, bytes);
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *ptr, int value, size_t bytes, cudaStream_t stream) {
    (void)stream;
    if (check_sticky() != cudaSuccess) return sticky;
    if (bytes == 0) return cudaSuccess;
    if (!on_device(ptr, bytes))
        return fail(cudaErrorInvalidValue, "cudaMemsetAsync(%p, %zu bytes): not device memory", ptr, bytes);
    memset(ptr, value, bytes);
    return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void *func, cudaFuncAttribute attribute, int value) {
    if (attribute != cudaFuncAttributeMaxDynamicSharedMemorySize) return cudaSuccess;
    if (value < 0 || (size_t)value > OPTIN_SHARED)
        return fail(cudaErrorInvalidValue, "cudaFuncSetAttribute: %d bytes of dynamic shared memory, at most %zu",
                    value, OPTIN_SHARED);
    std::lock_guard<std::mutex> lock(state_mutex);
    shared_optin[func] = (size_t)value;
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *e) {
    *e = (cudaEvent_t) new event;
    return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t e) {
    delete (event *)e;
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t stream) {
    (void)stream;
    ((event *)e)->time = std::chrono::steady_clock::now();
    ((event *)e)->recorded = true;
    return check_sticky();
}

cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    (void)e;
    return check_sticky();
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end) {
    const event *a = (const event *)start, *b = (const event *)end;
    if (!a->recorded || !b->recorded) return last = cudaErrorInvalidResourceHandle;
    *ms = std::chrono::duration<float, std::milli>(b->time - a->time).count();
    return cudaSuccess;
}
