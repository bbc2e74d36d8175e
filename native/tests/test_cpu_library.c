/*
 * CPU backend: library identity, the one device, threads, memory and copies, the machine
 * ceilings, and that bad arguments are refused with a message.
 */
#include "ambient.h"
#include "test_util.h"

int main(void) {
    CHECK(ambient_library_backend() == AMBIENT_BACKEND_CPU, "backend");
    int32_t precision = -1;
    CHECK(ambient_matmul_precision(&precision) == AMBIENT_STATUS_OK && precision == AMBIENT_PRECISION_FP32,
          "matmul precision %d", precision);
    CHECK(ambient_matmul_precision(NULL) == AMBIENT_STATUS_INVALID_ARGUMENT, "matmul precision into NULL");
    CHECK(ambient_library_version() == AMBIENT_VERSION_MAJOR * 10000 + AMBIENT_VERSION_MINOR * 100 + AMBIENT_VERSION_PATCH,
          "version %d", ambient_library_version());

    int32_t count = -1;
    CHECK(ambient_device_count(&count) == AMBIENT_STATUS_OK && count == 1, "count %d", count);
    char name[128];
    CHECK(ambient_device_name(0, name, sizeof name) == AMBIENT_STATUS_OK && name[0], "name");
    char tiny[4];
    CHECK(ambient_device_name(0, tiny, sizeof tiny) == AMBIENT_STATUS_OK && strlen(tiny) == 3, "truncated name");
    CHECK(ambient_device_name(1, name, sizeof name) == AMBIENT_STATUS_INVALID_ARGUMENT, "device 1");
    CHECK(strstr(ambient_last_error(), "device 1") != NULL, "message: %s", ambient_last_error());
    int64_t free_bytes = 0, total_bytes = 0;
    CHECK(ambient_device_memory(0, &free_bytes, &total_bytes) == AMBIENT_STATUS_OK && total_bytes > 0 &&
          free_bytes > 0 && free_bytes <= total_bytes, "memory");

    int32_t threads = 0;
    CHECK(ambient_threads_set(1) == AMBIENT_STATUS_OK, "threads_set");
    CHECK(ambient_threads_get(&threads) == AMBIENT_STATUS_OK && threads == 1, "threads %d", threads);
    CHECK(ambient_threads_set(0) == AMBIENT_STATUS_OK, "threads default");
    CHECK(ambient_threads_get(&threads) == AMBIENT_STATUS_OK && threads >= 1, "threads %d", threads);

    void *p = NULL, *q = NULL;
    const int64_t n = 1000;
    CHECK(ambient_memory_alloc(n * 4, &p) == AMBIENT_STATUS_OK && p && ((uintptr_t)p % 64) == 0, "alloc aligned");
    CHECK(ambient_memory_alloc(n * 4, &q) == AMBIENT_STATUS_OK && q, "alloc");
    float *host = test_alloc(n), *back = test_alloc(n);
    test_fill(host, n, 1.0f);
    test_poison(back, n);
    CHECK(ambient_memory_copy_to_device(p, host, n * 4) == AMBIENT_STATUS_OK, "h2d");
    CHECK(ambient_memory_copy_on_device(q, p, n * 4) == AMBIENT_STATUS_OK, "d2d");
    CHECK(ambient_memory_copy_to_host(back, q, n * 4) == AMBIENT_STATUS_OK, "d2h");
    CHECK(memcmp(host, back, (size_t)n * 4) == 0, "round trip");
    CHECK(ambient_memory_set(q, 0, n * 4) == AMBIENT_STATUS_OK, "memset");
    CHECK(ambient_memory_copy_to_host(back, q, n * 4) == AMBIENT_STATUS_OK && back[0] == 0.0f && back[n - 1] == 0.0f, "zeroed");
    CHECK(ambient_memory_free(p) == AMBIENT_STATUS_OK && ambient_memory_free(q) == AMBIENT_STATUS_OK, "free");
    CHECK(ambient_memory_free(NULL) == AMBIENT_STATUS_OK, "free NULL");
    free(host);
    free(back);

    void *bad = (void *)1;
    CHECK(ambient_memory_alloc(0, &bad) == AMBIENT_STATUS_INVALID_ARGUMENT && bad == NULL, "alloc 0");
    CHECK(ambient_memory_alloc(-5, &bad) == AMBIENT_STATUS_INVALID_ARGUMENT, "alloc negative");
    CHECK(ambient_memory_alloc(INT64_MAX, &bad) != AMBIENT_STATUS_OK && ambient_last_error()[0], "alloc huge");
    CHECK(ambient_memory_copy_to_host(NULL, NULL, -1) == AMBIENT_STATUS_INVALID_ARGUMENT, "copy negative");

    double gflops = 0, gbs = 0;
    CHECK(ambient_benchmark_fma_peak(0.05, &gflops) == AMBIENT_STATUS_OK && gflops > 0.1, "peak %g", gflops);
    CHECK(ambient_benchmark_memory_bandwidth(16 << 20, 0.05, &gbs) == AMBIENT_STATUS_OK && gbs > 0.1, "bandwidth %g", gbs);
    printf("device: %s, FMA peak %.1f GFLOP/s, copy bandwidth %.1f GB/s (short, noisy runs)\n", name, gflops, gbs);
    CHECK(ambient_benchmark_fma_peak(-1, &gflops) == AMBIENT_STATUS_INVALID_ARGUMENT, "negative seconds");

    /* the timer: an error before the thread's first start, then the time of the work between */
    double ms = -1;
    CHECK(ambient_timer_elapsed(&ms) == AMBIENT_STATUS_INVALID_ARGUMENT && ms == 0.0, "elapsed before start");
    CHECK(strstr(ambient_last_error(), "ambient_timer_start") != NULL, "message: %s", ambient_last_error());
    CHECK(ambient_timer_elapsed(NULL) == AMBIENT_STATUS_INVALID_ARGUMENT, "elapsed into NULL");
    CHECK(ambient_timer_start() == AMBIENT_STATUS_OK, "start");
    double t0 = test_now();
    CHECK(ambient_benchmark_fma_peak(0.03, &gflops) == AMBIENT_STATUS_OK, "work to time");
    double wall_ms = 1e3 * (test_now() - t0);
    CHECK(ambient_timer_elapsed(&ms) == AMBIENT_STATUS_OK && ms >= wall_ms && ms < wall_ms + 1000.0,
          "elapsed %g ms around %g ms of work", ms, wall_ms);
    double later = 0;
    CHECK(ambient_timer_elapsed(&later) == AMBIENT_STATUS_OK && later >= ms, "the start stays: %g then %g", ms, later);
    return test_finish("test_cpu_library");
}
