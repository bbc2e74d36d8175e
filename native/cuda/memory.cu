/*
 * Memory of the CUDA backend: cudaMalloc'd blocks and the copies between host and device.
 *
 * Everything goes on the library's stream of the selected device. copy_to_device and
 * copy_to_host wait for the stream, so the host buffer may be reused (or read) on return;
 * copy_on_device and memory_set are queued like kernels (ambient_device_synchronize waits).
 * copy_on_device has memmove semantics: overlapping ranges go through a temporary block.
 */
#include "internal.cuh"

int ambient_memory_alloc(int64_t bytes, void **ptr) {
    ambient_cuda_clear_error();
    AMBIENT_REQUIRE_POINTER(ptr);
    *ptr = NULL;
    AMBIENT_REQUIRE(bytes > 0, "%s: bytes = %lld must be positive", __func__, (long long)bytes);
    ambient_cuda_context context;
    int status = ambient_cuda_begin(__func__, &context);
    if (status) return status;
    void *p = NULL;
    AMBIENT_CUDA_CHECK(cudaMalloc(&p, (size_t)bytes));
    *ptr = p;
    return AMBIENT_STATUS_OK;
}

int ambient_memory_free(void *ptr) {
    ambient_cuda_clear_error();
    if (ptr == NULL) return AMBIENT_STATUS_OK;
    ambient_cuda_context context;
    int status = ambient_cuda_begin(__func__, &context);
    if (status) return status;
    /* Work still queued on the stream may use the block. */
    AMBIENT_CUDA_CHECK(cudaStreamSynchronize(context.stream));
    AMBIENT_CUDA_CHECK(cudaFree(ptr));
    return AMBIENT_STATUS_OK;
}

/* The argument checks of the CPU backend's copies. */
static int check_copy(const char *function, void *dst, const void *src, int64_t bytes) {
    AMBIENT_REQUIRE(bytes >= 0, "%s: bytes = %lld is negative", function, (long long)bytes);
    if (bytes == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE(dst != NULL && src != NULL, "%s: NULL pointer", function);
    return AMBIENT_STATUS_OK;
}

int ambient_memory_copy_to_device(void *device_dst, const void *host_src, int64_t bytes) {
    ambient_cuda_clear_error();
    int status = check_copy(__func__, device_dst, host_src, bytes);
    if (status || bytes == 0) return status;
    ambient_cuda_context context;
    status = ambient_cuda_begin(__func__, &context);
    if (status) return status;
    AMBIENT_CUDA_CHECK(cudaMemcpyAsync(device_dst, host_src, (size_t)bytes,
                                       cudaMemcpyHostToDevice, context.stream));
    AMBIENT_CUDA_CHECK(cudaStreamSynchronize(context.stream));
    return AMBIENT_STATUS_OK;
}

int ambient_memory_copy_to_host(void *host_dst, const void *device_src, int64_t bytes) {
    ambient_cuda_clear_error();
    int status = check_copy(__func__, host_dst, device_src, bytes);
    if (status || bytes == 0) return status;
    ambient_cuda_context context;
    status = ambient_cuda_begin(__func__, &context);
    if (status) return status;
    AMBIENT_CUDA_CHECK(cudaMemcpyAsync(host_dst, device_src, (size_t)bytes,
                                       cudaMemcpyDeviceToHost, context.stream));
    AMBIENT_CUDA_CHECK(cudaStreamSynchronize(context.stream));
    return AMBIENT_STATUS_OK;
}

int ambient_memory_copy_on_device(void *device_dst, const void *device_src, int64_t bytes) {
    ambient_cuda_clear_error();
    int status = check_copy(__func__, device_dst, device_src, bytes);
    if (status || bytes == 0) return status;
    ambient_cuda_context context;
    status = ambient_cuda_begin(__func__, &context);
    if (status) return status;
    if (device_dst == device_src) return AMBIENT_STATUS_OK;
    if (!ambient_overlaps(device_dst, bytes, device_src, bytes)) {
        AMBIENT_CUDA_CHECK(cudaMemcpyAsync(device_dst, device_src, (size_t)bytes,
                                           cudaMemcpyDeviceToDevice, context.stream));
        return AMBIENT_STATUS_OK;
    }
    /* Overlapping ranges (memmove): copy out to a temporary block and back. */
    void *temporary = NULL;
    AMBIENT_CUDA_CHECK(cudaMalloc(&temporary, (size_t)bytes));
    cudaError_t error = cudaMemcpyAsync(temporary, device_src, (size_t)bytes,
                                        cudaMemcpyDeviceToDevice, context.stream);
    if (error == cudaSuccess)
        error = cudaMemcpyAsync(device_dst, temporary, (size_t)bytes, cudaMemcpyDeviceToDevice,
                                context.stream);
    if (error == cudaSuccess) error = cudaStreamSynchronize(context.stream);
    if (error != cudaSuccess) {
        status = ambient_cuda_fail_call(__func__, error, "overlapping cudaMemcpyAsync", __FILE__,
                                        __LINE__);
        (void)cudaStreamSynchronize(context.stream);
        (void)cudaFree(temporary);
        return status;
    }
    AMBIENT_CUDA_CHECK(cudaFree(temporary));
    return AMBIENT_STATUS_OK;
}

int ambient_memory_set(void *device_dst, int32_t value, int64_t bytes) {
    ambient_cuda_clear_error();
    AMBIENT_REQUIRE(bytes >= 0, "%s: bytes = %lld is negative", __func__, (long long)bytes);
    if (bytes == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(device_dst);
    ambient_cuda_context context;
    int status = ambient_cuda_begin(__func__, &context);
    if (status) return status;
    AMBIENT_CUDA_CHECK(cudaMemsetAsync(device_dst, value & 0xff, (size_t)bytes, context.stream));
    return AMBIENT_STATUS_OK;
}
