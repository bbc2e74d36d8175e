/*
 * cublas_subset.h: the few cuBLAS entry points that Ambient's GEMM is measured against, declared
 * by us from NVIDIA's public cuBLAS documentation (cuBLAS API reference: cublasCreate,
 * cublasSgemm, cublasGemmEx, cublasSetMathMode, cublasGetProperty, and the types they take).
 *
 * Nothing links against cuBLAS: native/tests/vendor_compare.c opens it with dlopen and Java binds
 * it through bindings/generator/BindingsGenerator.java (class dev.ambient.bindings.CublasNative)
 * over a SymbolLookup of libcublas.so, both only when the library is found at run time.
 *
 * Written in the constrained C that the binding generator reads (see ambient.h): handles and
 * streams are plain pointers, enums are int with the numeric values of the documentation.
 * The names are the symbols libcublas.so exports: cuBLAS's own header maps cublasCreate,
 * cublasSgemm, ... onto the *_v2 symbols, which are the handle-based (v2) API declared here.
 * Do not include this file together with NVIDIA's cublas_api.h (the names would clash); the
 * cudaDataType_t and libraryPropertyType_t values below step aside when CUDA's own
 * library_types.h (pulled in by cuda_runtime.h) was included first.
 */
#ifndef AMBIENT_VENDOR_CUBLAS_SUBSET_H
#define AMBIENT_VENDOR_CUBLAS_SUBSET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* cublasStatus_t */
typedef enum cublasStatus_t {
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_NOT_INITIALIZED = 1,
    CUBLAS_STATUS_ALLOC_FAILED = 3,
    CUBLAS_STATUS_INVALID_VALUE = 7,
    CUBLAS_STATUS_ARCH_MISMATCH = 8,
    CUBLAS_STATUS_MAPPING_ERROR = 11,
    CUBLAS_STATUS_EXECUTION_FAILED = 13,
    CUBLAS_STATUS_INTERNAL_ERROR = 14,
    CUBLAS_STATUS_NOT_SUPPORTED = 15,
    CUBLAS_STATUS_LICENSE_ERROR = 16
} cublasStatus_t;

/* cublasOperation_t: cuBLAS matrices are column-major; op(X) is X, X^T or X^H. */
typedef enum cublasOperation_t {
    CUBLAS_OP_N = 0,
    CUBLAS_OP_T = 1,
    CUBLAS_OP_C = 2
} cublasOperation_t;

/* cublasMath_t (cublasSetMathMode): DEFAULT keeps float32 routines in float32; TF32_TENSOR_OP
 * lets them round operands to TF32 on tensor cores; PEDANTIC forbids every shortcut. */
typedef enum cublasMath_t {
    CUBLAS_DEFAULT_MATH = 0,
    CUBLAS_TENSOR_OP_MATH = 1,
    CUBLAS_PEDANTIC_MATH = 2,
    CUBLAS_TF32_TENSOR_OP_MATH = 3,
    CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION = 16
} cublasMath_t;

/* cublasComputeType_t (cublasGemmEx): 32F accumulates in float32; FAST_TF32 and FAST_16BF
 * round float32 operands to TF32 or bfloat16 for tensor cores, still accumulating in float32. */
typedef enum cublasComputeType_t {
    CUBLAS_COMPUTE_16F = 64,
    CUBLAS_COMPUTE_16F_PEDANTIC = 65,
    CUBLAS_COMPUTE_32F = 68,
    CUBLAS_COMPUTE_32F_PEDANTIC = 69,
    CUBLAS_COMPUTE_64F = 70,
    CUBLAS_COMPUTE_64F_PEDANTIC = 71,
    CUBLAS_COMPUTE_32I = 72,
    CUBLAS_COMPUTE_32I_PEDANTIC = 73,
    CUBLAS_COMPUTE_32F_FAST_16F = 74,
    CUBLAS_COMPUTE_32F_FAST_16BF = 75,
    CUBLAS_COMPUTE_32F_FAST_TF32 = 77
} cublasComputeType_t;

/* cublasGemmAlgo_t: let cuBLAS choose (tensor cores where the types allow). */
typedef enum cublasGemmAlgo_t {
    CUBLAS_GEMM_DEFAULT = -1,
    CUBLAS_GEMM_DEFAULT_TENSOR_OP = 99
} cublasGemmAlgo_t;

#ifndef __LIBRARY_TYPES_H__
/* cudaDataType_t of CUDA's library_types.h (the element types cublasGemmEx takes). */
typedef enum cudaDataType_t {
    CUDA_R_32F = 0,
    CUDA_R_64F = 1,
    CUDA_R_16F = 2,
    CUDA_R_16BF = 14
} cudaDataType_t;

/* libraryPropertyType_t of CUDA's library_types.h (cublasGetProperty). */
typedef enum libraryPropertyType_t {
    MAJOR_VERSION = 0,
    MINOR_VERSION = 1,
    PATCH_LEVEL = 2
} libraryPropertyType_t;
#endif

/* ---- Library ---------------------------------------------------------------------------- */

/* Version of the loaded library, one part at a time (type: MAJOR_VERSION, ...); needs no GPU. */
int cublasGetProperty(int type, int *value);

/* Text of a status code (cuBLAS 11.4 and newer). */
const char *cublasGetStatusString(int status);

/* ---- Handles ---------------------------------------------------------------------------- */

/* Creates a handle on the current device (needs a GPU); *handle receives it. */
int cublasCreate_v2(void **handle);
int cublasDestroy_v2(void *handle);

/* Queues the handle's work on `stream` (a cudaStream_t; NULL is the default stream). */
int cublasSetStream_v2(void *handle, void *stream);

/* major * 1000 + minor * 100 + patch (cuBLAS 11 and 12; see cublasGetProperty for the parts). */
int cublasGetVersion_v2(void *handle, int *version);

/* Which shortcuts float32 routines such as cublasSgemm may take (cublasMath_t). */
int cublasSetMathMode(void *handle, int mode);

/* ---- GEMM (column-major) ----------------------------------------------------------------- */

/* C = alpha op(A) op(B) + beta C, float32, column-major: op(A) is m x k, op(B) k x n, C m x n.
 * alpha and beta are host pointers (the default pointer mode). */
int cublasSgemm_v2(void *handle, int transa, int transb, int m, int n, int k, const float *alpha,
                   const float *a, int lda, const float *b, int ldb, const float *beta, float *c,
                   int ldc);

/* The same product with element types a_type, b_type, c_type (cudaDataType_t) and compute type
 * compute_type (cublasComputeType_t); alpha and beta are floats for the 32F compute types.
 * algo: cublasGemmAlgo_t. */
int cublasGemmEx(void *handle, int transa, int transb, int m, int n, int k, const void *alpha,
                 const void *a, int a_type, int lda, const void *b, int b_type, int ldb,
                 const void *beta, void *c, int c_type, int ldc, int compute_type, int algo);

#ifdef __cplusplus
}
#endif

#endif /* AMBIENT_VENDOR_CUBLAS_SUBSET_H */
