/*
 * Finding and opening cuBLAS and cuDNN at run time, for vendor_compare.c: the C twin of
 * ambient-kernels' dev.ambient.kernels.VendorLibraries, with the same search order:
 *   1. the file named by AMBIENT_CUBLAS / AMBIENT_CUDNN (only that file: its failure is the
 *      status, no fallback to another copy);
 *   2. the system library path by soname (libcublas.so.13, .12, .11, libcublas.so;
 *      libcudnn.so.9, .8, libcudnn.so), i.e. LD_LIBRARY_PATH and the loader's cache;
 *   3. a CUDA toolkit: $CUDA_HOME/lib64, $CUDA_PATH/lib64, /usr/local/cuda/lib64;
 *   4. Python's site-packages, where PyTorch's pip wheels put them (nvidia/cublas/lib,
 *      nvidia/cudnn/lib, nvidia/cu13/lib, torch/lib) under $PYTHONPATH, $VIRTUAL_ENV,
 *      $CONDA_PREFIX, ~/.local and the usual system prefixes.
 * A library opened from a folder gets its companions opened first from that folder
 * (libcublasLt for cuBLAS; every libcudnn_* sub-library of the same version for cuDNN, which
 * the cuDNN 8 and 9 front library otherwise looks up by soname only), so that a pip wheel
 * works without LD_LIBRARY_PATH. Absence is reported, never fatal.
 *
 * The function tables are typed from our own declarations (the two subset headers in
 * include/vendor); nothing here links against either library.
 */
#ifndef AMBIENT_VENDOR_LIBRARIES_H
#define AMBIENT_VENDOR_LIBRARIES_H

#include "vendor/cublas_subset.h"
#include "vendor/cudnn_subset.h"

#include "vendor_functions.h"

#define VENDOR_FUNCTION_FIELD(name) __typeof__(&name) name;

/* What was found for one library. */
typedef struct {
    const char *name;     /* "cuBLAS" or "cuDNN" */
    int present;          /* a copy loaded */
    int usable;           /* ... exporting every function of our header, with a version */
    char path[4096];      /* the file that loaded */
    char version[96];     /* "12.4.5", "9.1.0 (for CUDA 12.4)" */
    char problem[4096];   /* why absent, or what is wrong with the copy that loaded */
    char companions[1024]; /* companions that failed to load (informational) */
} vendor_status;

typedef struct {
    vendor_status status;
    CUBLAS_FUNCTIONS(VENDOR_FUNCTION_FIELD)
} cublas_api;

typedef struct {
    vendor_status status;
    CUDNN_FUNCTIONS(VENDOR_FUNCTION_FIELD)
} cudnn_api;

/* Look for and open each library; the status says what happened. Never exits. */
void vendor_load_cublas(cublas_api *api);
void vendor_load_cudnn(cudnn_api *api);

/* One line: "cuBLAS 12.4.5 at PATH" or "cuBLAS: not found (...)". */
void vendor_describe(const vendor_status *status, char *line, size_t capacity);

#endif /* AMBIENT_VENDOR_LIBRARIES_H */
