/*
 * Library identity, thread-local errors, devices, the per-device stream of the CUDA
 * backend, and the precision of its matrix products (AMBIENT_CUDA_MATMUL).
 *
 * The devices are probed once per process (cudaGetDeviceCount plus each one's properties);
 * a failed probe (no libcuda.so.1, which the static runtime opens lazily, or no GPU) is
 * cached too, and every call that needs a GPU then answers AMBIENT_STATUS_NO_DEVICE. Each
 * thread has its own selected device (0 until ambient_device_select); each device has one
 * non-blocking stream, created on first use, that all of this library's work goes on, and
 * one scratch block (ambient_cuda_scratch) that grows on demand and is kept.
 */
#include "internal.cuh"

#include <atomic>
#include <mutex>
#include <new>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- Errors ---------------------------------------------------------------------------- */

static thread_local char last_error[1024];

int ambient_cuda_fail(int status, const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(last_error, sizeof last_error, format, args);
    va_end(args);
    return status;
}

void ambient_cuda_clear_error(void) { last_error[0] = '\0'; }

const char *ambient_last_error(void) { return last_error; }

int ambient_cuda_status(cudaError_t error) {
    switch (error) {
    case cudaSuccess:
        return AMBIENT_STATUS_OK;
    case cudaErrorMemoryAllocation:
        return AMBIENT_STATUS_OUT_OF_MEMORY;
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorStubLibrary:
    case cudaErrorDevicesUnavailable:
    case cudaErrorSystemDriverMismatch:
    case cudaErrorSystemNotReady:
    case cudaErrorCompatNotSupportedOnDevice:
        return AMBIENT_STATUS_NO_DEVICE;
    default:
        return AMBIENT_STATUS_DEVICE_ERROR;
    }
}

int ambient_cuda_fail_call(const char *function, cudaError_t error, const char *statement,
                           const char *file, int line) {
    /* Reset the runtime's last error (a no-op for sticky errors, which stay). */
    (void)cudaGetLastError();
    const char *base = strrchr(file, '/');
    return ambient_cuda_fail(ambient_cuda_status(error), "%s: %s failed at %s:%d: %s (%s)",
                             function, statement, base ? base + 1 : file, line,
                             cudaGetErrorString(error), cudaGetErrorName(error));
}

/* ---- Identity --------------------------------------------------------------------------- */

int32_t ambient_library_version(void) {
    return AMBIENT_VERSION_MAJOR * 10000 + AMBIENT_VERSION_MINOR * 100 + AMBIENT_VERSION_PATCH;
}

int32_t ambient_library_backend(void) { return AMBIENT_BACKEND_CUDA; }

int ambient_matmul_precision(int32_t *precision) {
    ambient_cuda_clear_error();
    AMBIENT_REQUIRE_POINTER(precision);
    ambient_cuda_context ctx;
    int status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;
    *precision = ctx.precision;
    return AMBIENT_STATUS_OK;
}

/* ---- Devices ----------------------------------------------------------------------------- */

namespace {

struct device_state {
    std::mutex stream_mutex;
    std::atomic<cudaStream_t> stream{nullptr};
    char name[256];
    int sm_count;
    int major, minor;
    int64_t shared_optin;
    /* ambient_cuda_scratch's block: guarded by scratch_mutex, grown and never shrunk. */
    std::mutex scratch_mutex;
    void *scratch = nullptr;
    int64_t scratch_bytes = 0;
};

cudaError_t probe_error = cudaSuccess;
ambient_cuda_precision matmul_precision = AMBIENT_MATMUL_BF16;
char matmul_problem[256]; /* why AMBIENT_CUDA_MATMUL was refused; "" when it was not */

/* AMBIENT_CUDA_MATMUL: bf16 (default), tf32 or fp32; anything else is recorded as a problem
 * that every call needing the device reports (nothing falls back silently). */
void read_matmul_precision(void) {
    const char *value = getenv(AMBIENT_CUDA_MATMUL_VARIABLE);
    if (value == NULL || value[0] == '\0' || strcasecmp(value, "bf16") == 0) matmul_precision = AMBIENT_MATMUL_BF16;
    else if (strcasecmp(value, "tf32") == 0) matmul_precision = AMBIENT_MATMUL_TF32;
    else if (strcasecmp(value, "fp32") == 0) matmul_precision = AMBIENT_MATMUL_FP32;
    else
        snprintf(matmul_problem, sizeof matmul_problem,
                 "%s = \"%.64s\" is not a precision of matrix products: use bf16 (the default, tensor cores), "
                 "tf32 (tensor cores) or fp32 (float32 SIMT kernels)",
                 AMBIENT_CUDA_MATMUL_VARIABLE, value);
}

int device_total = 0;
device_state *devices = nullptr; /* device_total entries, never freed */

void probe(void) {
    int count = 0;
    cudaError_t error = cudaGetDeviceCount(&count);
    if (error == cudaSuccess && count <= 0) error = cudaErrorNoDevice;
    if (error != cudaSuccess) {
        (void)cudaGetLastError();
        probe_error = error;
        return;
    }
    device_state *states = new (std::nothrow) device_state[count];
    if (!states) {
        probe_error = cudaErrorMemoryAllocation;
        return;
    }
    for (int d = 0; d < count; d++) {
        cudaDeviceProp prop;
        error = cudaGetDeviceProperties(&prop, d);
        if (error != cudaSuccess) {
            (void)cudaGetLastError();
            snprintf(states[d].name, sizeof states[d].name, "CUDA device %d", d);
            states[d].sm_count = 1;
            states[d].shared_optin = 48 * 1024;
            states[d].major = states[d].minor = 0;
            continue;
        }
        snprintf(states[d].name, sizeof states[d].name, "%s", prop.name);
        states[d].sm_count = prop.multiProcessorCount > 0 ? prop.multiProcessorCount : 1;
        states[d].shared_optin = (int64_t)prop.sharedMemPerBlockOptin;
        states[d].major = prop.major;
        states[d].minor = prop.minor;
    }
    devices = states;
    device_total = count;
}

/* OK when AMBIENT_CUDA_MATMUL is valid and at least one device answered; INVALID_ARGUMENT or
 * NO_DEVICE with a message naming function otherwise. */
int require_devices(const char *function) {
    /* A function-local static is initialised once, thread-safely (and, unlike std::call_once,
     * leaves no weak symbol in the dynamic symbol table). */
    static const bool probed = (read_matmul_precision(), probe(), true);
    (void)probed;
    if (matmul_problem[0] != '\0')
        return ambient_cuda_fail(AMBIENT_STATUS_INVALID_ARGUMENT, "%s: %s", function, matmul_problem);
    if (probe_error == cudaSuccess) return AMBIENT_STATUS_OK;
    /* Whatever the reason (no driver, no GPU, a driver too old), there is no device to use. */
    return ambient_cuda_fail(AMBIENT_STATUS_NO_DEVICE, "%s: no CUDA device (cudaGetDeviceCount: %s (%s))", function,
                             cudaGetErrorString(probe_error), cudaGetErrorName(probe_error));
}

int require_device_index(const char *function, int32_t device) {
    int status = require_devices(function);
    if (status) return status;
    if (device < 0 || device >= device_total)
        return ambient_cuda_fail(AMBIENT_STATUS_INVALID_ARGUMENT,
                                 "%s: device %d does not exist (%d CUDA device%s)", function,
                                 device, device_total, device_total == 1 ? "" : "s");
    return AMBIENT_STATUS_OK;
}

thread_local int selected_device = 0;

} // namespace

int ambient_cuda_begin(const char *function, ambient_cuda_context *context) {
    int status = require_devices(function);
    if (status) return status;
    int device = selected_device;
    AMBIENT_CUDA_CHECK_AS(function, cudaSetDevice(device));
    device_state &state = devices[device];
    cudaStream_t stream = state.stream.load(std::memory_order_acquire);
    if (!stream) {
        std::lock_guard<std::mutex> lock(state.stream_mutex);
        stream = state.stream.load(std::memory_order_relaxed);
        if (!stream) {
            AMBIENT_CUDA_CHECK_AS(function, cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
            state.stream.store(stream, std::memory_order_release);
        }
    }
    context->device = device;
    context->stream = stream;
    context->sm_count = state.sm_count;
    context->shared_optin = state.shared_optin;
    context->precision = matmul_precision;
    return AMBIENT_STATUS_OK;
}

int ambient_device_count(int32_t *count) {
    ambient_cuda_clear_error();
    AMBIENT_REQUIRE_POINTER(count);
    *count = 0;
    int status = require_devices(__func__);
    if (status) return status;
    *count = device_total;
    return AMBIENT_STATUS_OK;
}

int ambient_device_select(int32_t device) {
    ambient_cuda_clear_error();
    int status = require_device_index(__func__, device);
    if (status) return status;
    AMBIENT_CUDA_CHECK(cudaSetDevice(device));
    selected_device = device;
    return AMBIENT_STATUS_OK;
}

int ambient_device_name(int32_t device, char *name, int64_t capacity) {
    ambient_cuda_clear_error();
    AMBIENT_REQUIRE_POINTER(name);
    AMBIENT_REQUIRE(capacity > 0, "%s: capacity = %lld must be positive", __func__,
                    (long long)capacity);
    name[0] = '\0';
    int status = require_device_index(__func__, device);
    if (status) return status;
    const device_state &state = devices[device];
    snprintf(name, (size_t)capacity, "%s (sm_%d%d, %d SMs)", state.name, state.major, state.minor,
             state.sm_count);
    return AMBIENT_STATUS_OK;
}

int ambient_device_memory(int32_t device, int64_t *free_bytes, int64_t *total_bytes) {
    ambient_cuda_clear_error();
    AMBIENT_REQUIRE_POINTER(free_bytes);
    AMBIENT_REQUIRE_POINTER(total_bytes);
    int status = require_device_index(__func__, device);
    if (status) return status;
    /* cudaMemGetInfo answers for the current device: switch to `device`, then back. */
    AMBIENT_CUDA_CHECK(cudaSetDevice(device));
    size_t free_size = 0, total_size = 0;
    cudaError_t error = cudaMemGetInfo(&free_size, &total_size);
    if (error != cudaSuccess) {
        status = ambient_cuda_fail_call(__func__, error, "cudaMemGetInfo(&free_size, &total_size)",
                                        __FILE__, __LINE__);
        (void)cudaSetDevice(selected_device);
        return status;
    }
    AMBIENT_CUDA_CHECK(cudaSetDevice(selected_device));
    *free_bytes = (int64_t)free_size;
    *total_bytes = (int64_t)total_size;
    return AMBIENT_STATUS_OK;
}

int ambient_device_synchronize(void) {
    ambient_cuda_clear_error();
    ambient_cuda_context context;
    int status = ambient_cuda_begin(__func__, &context);
    if (status) return status;
    AMBIENT_CUDA_CHECK(cudaStreamSynchronize(context.stream));
    return AMBIENT_STATUS_OK;
}

/* CUDA kernels do not use host worker threads: setting is accepted and ignored, and the
 * count reported is the one host thread that queues the work. */
int ambient_threads_set(int32_t threads) {
    ambient_cuda_clear_error();
    (void)threads;
    return AMBIENT_STATUS_OK;
}

int ambient_threads_get(int32_t *threads) {
    ambient_cuda_clear_error();
    AMBIENT_REQUIRE_POINTER(threads);
    *threads = 1;
    return AMBIENT_STATUS_OK;
}

/* ---- Scratch ------------------------------------------------------------------------------ */

ambient_cuda_scratch::ambient_cuda_scratch(const ambient_cuda_context &context) : context_(context) {
    devices[context.device].scratch_mutex.lock();
}

ambient_cuda_scratch::~ambient_cuda_scratch() { devices[context_.device].scratch_mutex.unlock(); }

int ambient_cuda_scratch::take(const char *function, int64_t bytes, void **ptr) {
    device_state &state = devices[context_.device];
    *ptr = nullptr;
    if (bytes < 1) bytes = 1;
    if (bytes > state.scratch_bytes) {
        /* Grow to at least 1 MiB and at least twice the old size, so that growth is rare. */
        int64_t want = bytes > INT64_C(1) << 20 ? bytes : INT64_C(1) << 20;
        if (want < 2 * state.scratch_bytes) want = 2 * state.scratch_bytes;
        if (state.scratch) {
            /* Kernels queued by earlier leases may still read the old block. */
            AMBIENT_CUDA_CHECK_AS(function, cudaStreamSynchronize(context_.stream));
            AMBIENT_CUDA_CHECK_AS(function, cudaFree(state.scratch));
            state.scratch = nullptr;
            state.scratch_bytes = 0;
        }
        void *p = nullptr;
        cudaError_t error = cudaMalloc(&p, (size_t)want);
        if (error != cudaSuccess && want > bytes) { /* the doubling may be what does not fit */
            (void)cudaGetLastError();
            want = bytes;
            error = cudaMalloc(&p, (size_t)want);
        }
        if (error != cudaSuccess)
            return ambient_cuda_fail_call(function, error, "cudaMalloc(scratch)", __FILE__, __LINE__);
        state.scratch = p;
        state.scratch_bytes = want;
    }
    *ptr = state.scratch;
    return AMBIENT_STATUS_OK;
}
