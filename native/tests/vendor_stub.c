/*
 * Stand-ins for libcublas.so and libcudnn.so, for ctest only: on a machine without either
 * library they let the tests check that vendor_compare opens a named library after its
 * companion from the same folder (the stand-in needs the companion's soname and carries no
 * RPATH, like a pip wheel's file opened from outside LD_LIBRARY_PATH), binds every function of
 * our subset headers and reads and decodes the version. Only the version calls work (cuBLAS
 * 12.4.5; cuDNN 9.1.0 built for CUDA 12.4); every other function returns status 1 and is never
 * called by --load-only. Built as:
 *   -DSTUB_CUBLAS     libcublas.so.12      (needs libcublasLt.so.12)
 *   -DSTUB_CUDNN      libcudnn.so.9        (needs libcudnn_graph.so.9)
 *   -DSTUB_COMPANION  the companion, exporting only stub_companion_answer
 */
#include "vendor_functions.h"

#include <stddef.h>

#define EXPORT __attribute__((visibility("default")))

#if defined(STUB_COMPANION)

EXPORT int stub_companion_answer(void) { return 42; }

#else

int stub_companion_answer(void); /* from the companion: the reason it must be loaded first */

/* Everything but the version calls, renamed out of the way, then defined for real below. */
#define STUB_FUNCTION(name) EXPORT int name(void) { return stub_companion_answer() == 42; }
#if defined(STUB_CUBLAS)
#define cublasGetProperty unused_cublasGetProperty
#define cublasGetStatusString unused_cublasGetStatusString
CUBLAS_FUNCTIONS(STUB_FUNCTION)
#undef cublasGetProperty
#undef cublasGetStatusString

EXPORT int cublasGetProperty(int type, int *value) {
    static const int version[3] = {12, 4, 5};
    if (type < 0 || type > 2 || !value) return 7; /* CUBLAS_STATUS_INVALID_VALUE */
    *value = version[type];
    return 0;
}

EXPORT const char *cublasGetStatusString(int status) { return status ? "stand-in error" : "success"; }
#elif defined(STUB_CUDNN)
#define cudnnGetVersion unused_cudnnGetVersion
#define cudnnGetCudartVersion unused_cudnnGetCudartVersion
#define cudnnGetErrorString unused_cudnnGetErrorString
CUDNN_FUNCTIONS(STUB_FUNCTION)
#undef cudnnGetVersion
#undef cudnnGetCudartVersion
#undef cudnnGetErrorString

EXPORT size_t cudnnGetVersion(void) { return 90100; }
EXPORT size_t cudnnGetCudartVersion(void) { return 12040; }
EXPORT const char *cudnnGetErrorString(int status) { return status ? "stand-in error" : "success"; }
#else
#error "build with -DSTUB_CUBLAS, -DSTUB_CUDNN or -DSTUB_COMPANION"
#endif

#endif
