/*
 * For the C programs that open the backends with dlopen (test_parity, vendor_compare,
 * test_cuda_load): where the libraries are when no path is given, and the precision of matrix
 * products the CUDA library will run. Include after test_util.h, with _GNU_SOURCE defined
 * before any system header (readlink, dirname, strcasecmp).
 */
#ifndef AMBIENT_TEST_BACKENDS_H
#define AMBIENT_TEST_BACKENDS_H

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

/* out <- the library `name` next to this program, else one folder up (the CMake build tree
 * puts the tests in tests/ and the libraries beside that folder). */
static inline void test_find_library(char *out, size_t size, const char *argv0, const char *name) {
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) snprintf(self, sizeof self, "%s", argv0);
    else self[len] = '\0';
    char *dir = dirname(self);
    snprintf(out, size, "%s/%s", dir, name);
    if (access(out, R_OK) == 0) return;
    snprintf(out, size, "%s/../%s", dir, name);
}

/* The precision of matrix products the CUDA library runs, by its rules for AMBIENT_CUDA_MATMUL:
 * unset or empty is bf16, case does not matter, anything else is refused. */
enum { MATMUL_BF16, MATMUL_TF32, MATMUL_FP32, MATMUL_UNKNOWN };
static inline int test_matmul_precision(void) {
    const char *v = getenv("AMBIENT_CUDA_MATMUL");
    if (v == NULL || v[0] == '\0' || strcasecmp(v, "bf16") == 0) return MATMUL_BF16;
    if (strcasecmp(v, "tf32") == 0) return MATMUL_TF32;
    if (strcasecmp(v, "fp32") == 0) return MATMUL_FP32;
    return MATMUL_UNKNOWN;
}

/* The MATMUL_* of an ambient_precision that ambient_matmul_precision answered. */
static inline int test_matmul_from_library(int32_t precision) {
    return precision == AMBIENT_PRECISION_BF16   ? MATMUL_BF16
           : precision == AMBIENT_PRECISION_TF32 ? MATMUL_TF32
           : precision == AMBIENT_PRECISION_FP32 ? MATMUL_FP32
                                                 : MATMUL_UNKNOWN;
}

#endif
