/*
 * Library identity, thread-local errors, the single CPU "device" and the thread count.
 */
#include "internal.h"

#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static _Thread_local char last_error[1024];
static int configured_threads; /* 0: OpenMP's default */

int ambient_fail(int status, const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(last_error, sizeof last_error, format, args);
    va_end(args);
    return status;
}

void ambient_clear_error(void) { last_error[0] = '\0'; }

const char *ambient_last_error(void) { return last_error; }

int32_t ambient_library_version(void) {
    return AMBIENT_VERSION_MAJOR * 10000 + AMBIENT_VERSION_MINOR * 100 + AMBIENT_VERSION_PATCH;
}

int32_t ambient_library_backend(void) { return AMBIENT_BACKEND_CPU; }

int ambient_matmul_precision(int32_t *precision) {
    ambient_clear_error();
    AMBIENT_REQUIRE_POINTER(precision);
    *precision = AMBIENT_PRECISION_FP32;
    return AMBIENT_STATUS_OK;
}

int ambient_cpu_threads(void) {
    int n = __atomic_load_n(&configured_threads, __ATOMIC_RELAXED);
    return n > 0 ? n : omp_get_max_threads();
}

int ambient_threads_set(int32_t threads) {
    ambient_clear_error();
    __atomic_store_n(&configured_threads, threads > 0 ? threads : 0, __ATOMIC_RELAXED);
    return AMBIENT_STATUS_OK;
}

int ambient_threads_get(int32_t *threads) {
    ambient_clear_error();
    AMBIENT_REQUIRE_POINTER(threads);
    *threads = ambient_cpu_threads();
    return AMBIENT_STATUS_OK;
}

int ambient_device_count(int32_t *count) {
    ambient_clear_error();
    AMBIENT_REQUIRE_POINTER(count);
    *count = 1;
    return AMBIENT_STATUS_OK;
}

static int require_device_zero(const char *function, int32_t device) {
    if (device != 0)
        return ambient_fail(AMBIENT_STATUS_INVALID_ARGUMENT,
                            "%s: device %d does not exist (the CPU backend has device 0 only)",
                            function, device);
    return AMBIENT_STATUS_OK;
}

int ambient_device_select(int32_t device) {
    ambient_clear_error();
    return require_device_zero(__func__, device);
}

/* The processor's model name from /proc/cpuinfo, or "CPU" where that is unavailable. */
static void cpu_model_name(char *out, size_t capacity) {
    snprintf(out, capacity, "CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *colon = strchr(line, ':');
            if (colon) {
                colon++;
                while (*colon == ' ' || *colon == '\t') colon++;
                colon[strcspn(colon, "\n")] = '\0';
                snprintf(out, capacity, "%s", colon);
            }
            break;
        }
    }
    fclose(f);
}

int ambient_device_name(int32_t device, char *name, int64_t capacity) {
    ambient_clear_error();
    int status = require_device_zero(__func__, device);
    if (status) return status;
    AMBIENT_REQUIRE_POINTER(name);
    AMBIENT_REQUIRE(capacity > 0, "%s: capacity = %lld must be positive", __func__,
                    (long long)capacity);
    char model[256];
    cpu_model_name(model, sizeof model);
    snprintf(name, (size_t)capacity, "%s (%d threads)", model, ambient_cpu_threads());
    return AMBIENT_STATUS_OK;
}

int ambient_device_memory(int32_t device, int64_t *free_bytes, int64_t *total_bytes) {
    ambient_clear_error();
    int status = require_device_zero(__func__, device);
    if (status) return status;
    AMBIENT_REQUIRE_POINTER(free_bytes);
    AMBIENT_REQUIRE_POINTER(total_bytes);
    long page = sysconf(_SC_PAGESIZE);
    long total = sysconf(_SC_PHYS_PAGES), avail = sysconf(_SC_AVPHYS_PAGES);
    if (page <= 0 || total <= 0 || avail < 0)
        return ambient_fail(AMBIENT_STATUS_INTERNAL, "%s: sysconf cannot tell the memory size",
                            __func__);
    *total_bytes = (int64_t)total * page;
    *free_bytes = (int64_t)avail * page;
    return AMBIENT_STATUS_OK;
}

int ambient_device_synchronize(void) {
    ambient_clear_error();
    return AMBIENT_STATUS_OK; /* CPU kernels finish before they return */
}
