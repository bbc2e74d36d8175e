/*
 * Memory of the CPU backend: 64-byte aligned host blocks (one AVX-512 register, one cache
 * line), and the copies, which are plain memcpy here since host and device are the same.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define AMBIENT_ALIGNMENT 64

int ambient_memory_alloc(int64_t bytes, void **ptr) {
    ambient_clear_error();
    AMBIENT_REQUIRE_POINTER(ptr);
    *ptr = NULL;
    AMBIENT_REQUIRE(bytes > 0, "%s: bytes = %lld must be positive", __func__, (long long)bytes);
    AMBIENT_REQUIRE((uint64_t)bytes <= SIZE_MAX - AMBIENT_ALIGNMENT,
                    "%s: bytes = %lld is too large", __func__, (long long)bytes);
    size_t rounded = ((size_t)bytes + AMBIENT_ALIGNMENT - 1) / AMBIENT_ALIGNMENT * AMBIENT_ALIGNMENT;
    void *p = aligned_alloc(AMBIENT_ALIGNMENT, rounded);
    if (!p)
        return ambient_fail(AMBIENT_STATUS_OUT_OF_MEMORY, "%s: cannot allocate %lld bytes",
                            __func__, (long long)bytes);
    *ptr = p;
    return AMBIENT_STATUS_OK;
}

int ambient_memory_free(void *ptr) {
    ambient_clear_error();
    free(ptr);
    return AMBIENT_STATUS_OK;
}

static int copy(const char *function, void *dst, const void *src, int64_t bytes) {
    AMBIENT_REQUIRE(bytes >= 0, "%s: bytes = %lld is negative", function, (long long)bytes);
    if (bytes == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE(dst != NULL && src != NULL, "%s: NULL pointer", function);
    memmove(dst, src, (size_t)bytes);
    return AMBIENT_STATUS_OK;
}

int ambient_memory_copy_to_device(void *device_dst, const void *host_src, int64_t bytes) {
    ambient_clear_error();
    return copy(__func__, device_dst, host_src, bytes);
}

int ambient_memory_copy_to_host(void *host_dst, const void *device_src, int64_t bytes) {
    ambient_clear_error();
    return copy(__func__, host_dst, device_src, bytes);
}

int ambient_memory_copy_on_device(void *device_dst, const void *device_src, int64_t bytes) {
    ambient_clear_error();
    return copy(__func__, device_dst, device_src, bytes);
}

int ambient_memory_set(void *device_dst, int32_t value, int64_t bytes) {
    ambient_clear_error();
    AMBIENT_REQUIRE(bytes >= 0, "%s: bytes = %lld is negative", __func__, (long long)bytes);
    if (bytes == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(device_dst);
    memset(device_dst, value & 0xff, (size_t)bytes);
    return AMBIENT_STATUS_OK;
}
