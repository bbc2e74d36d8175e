/*
 * cudnn_subset.h: the cuDNN entry points that Ambient's convolutions are measured against,
 * declared by us from NVIDIA's public cuDNN API reference (cudnn_graph, cudnn_ops and cudnn_cnn
 * libraries): handles, 4-D tensor, filter and convolution descriptors, the legacy ("v7")
 * convolution forward, backward-data and backward-filter calls with their workspace queries and
 * algorithm choice (cudnnGet*Algorithm_v7 heuristics, cudnnFind*Algorithm measurements), which
 * cuDNN 8 and 9 both still provide.
 *
 * Nothing links against cuDNN: native/tests/vendor_compare.c opens it with dlopen and Java binds
 * it through bindings/generator/BindingsGenerator.java (class dev.ambient.bindings.CudnnNative)
 * over a SymbolLookup of libcudnn.so, both only when the library is found at run time.
 *
 * Written in the constrained C that the binding generator reads (see ambient.h): handles,
 * descriptors and streams are plain pointers, enums are int with the documented values. Do not
 * include this file together with NVIDIA's cudnn.h (the names would clash).
 *
 * Status codes: only CUDNN_STATUS_SUCCESS = 0 is declared, because cuDNN 9 renumbered every
 * other code (cuDNN 8: BAD_PARAM = 3, cuDNN 9: 2000); cudnnGetErrorString names any of them.
 */
#ifndef AMBIENT_VENDOR_CUDNN_SUBSET_H
#define AMBIENT_VENDOR_CUDNN_SUBSET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* cudnnStatus_t (see above). */
typedef enum cudnnStatus_t {
    CUDNN_STATUS_SUCCESS = 0
} cudnnStatus_t;

/* cudnnDataType_t (the subset a float32 or bfloat16 convolution needs). */
typedef enum cudnnDataType_t {
    CUDNN_DATA_FLOAT = 0,
    CUDNN_DATA_DOUBLE = 1,
    CUDNN_DATA_HALF = 2,
    CUDNN_DATA_BFLOAT16 = 9
} cudnnDataType_t;

/* cudnnTensorFormat_t. NHWC tensors are n x h x w x c; an NHWC filter is k x r x s x c
 * (out channels, rows, columns, in channels), which is Ambient's OHWI weight layout. */
typedef enum cudnnTensorFormat_t {
    CUDNN_TENSOR_NCHW = 0,
    CUDNN_TENSOR_NHWC = 1
} cudnnTensorFormat_t;

/* cudnnConvolutionMode_t: CROSS_CORRELATION does not flip the filter (as Ambient and PyTorch). */
typedef enum cudnnConvolutionMode_t {
    CUDNN_CONVOLUTION = 0,
    CUDNN_CROSS_CORRELATION = 1
} cudnnConvolutionMode_t;

/* cudnnMathType_t: DEFAULT lets float32 convolutions use TF32 tensor cores (Ampere and newer),
 * FMA keeps them in float32 FMA, TENSOR_OP_MATH asks for tensor cores. */
typedef enum cudnnMathType_t {
    CUDNN_DEFAULT_MATH = 0,
    CUDNN_TENSOR_OP_MATH = 1,
    CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION = 2,
    CUDNN_FMA_MATH = 3
} cudnnMathType_t;

/* cudnnDeterminism_t */
typedef enum cudnnDeterminism_t {
    CUDNN_NON_DETERMINISTIC = 0,
    CUDNN_DETERMINISTIC = 1
} cudnnDeterminism_t;

/* cudnnConvolutionFwdAlgo_t */
typedef enum cudnnConvolutionFwdAlgo_t {
    CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM = 0,
    CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM = 1,
    CUDNN_CONVOLUTION_FWD_ALGO_GEMM = 2,
    CUDNN_CONVOLUTION_FWD_ALGO_DIRECT = 3,
    CUDNN_CONVOLUTION_FWD_ALGO_FFT = 4,
    CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING = 5,
    CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD = 6,
    CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED = 7,
    CUDNN_CONVOLUTION_FWD_ALGO_COUNT = 8
} cudnnConvolutionFwdAlgo_t;

/* cudnnConvolutionBwdDataAlgo_t */
typedef enum cudnnConvolutionBwdDataAlgo_t {
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_0 = 0,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_1 = 1,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT = 2,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING = 3,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD = 4,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED = 5,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT = 6
} cudnnConvolutionBwdDataAlgo_t;

/* cudnnConvolutionBwdFilterAlgo_t */
typedef enum cudnnConvolutionBwdFilterAlgo_t {
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 = 0,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 = 1,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT = 2,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3 = 3,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD = 4,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED = 5,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING = 6,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT = 7
} cudnnConvolutionBwdFilterAlgo_t;

/* The algorithm-choice calls fill arrays of cudnnConvolution{Fwd,BwdData,BwdFilter}AlgoPerf_t,
 * three structs with one layout: {int algo; int status; float time (ms); size_t memory
 * (workspace bytes); int determinism; int mathType; int reserved[3];}. Its size and offsets on
 * x86-64 (LP64), for callers that read the array as bytes: */
#define AMBIENT_CUDNN_ALGO_PERF_BYTES 48
#define AMBIENT_CUDNN_ALGO_PERF_ALGO_OFFSET 0
#define AMBIENT_CUDNN_ALGO_PERF_STATUS_OFFSET 4
#define AMBIENT_CUDNN_ALGO_PERF_TIME_OFFSET 8
#define AMBIENT_CUDNN_ALGO_PERF_MEMORY_OFFSET 16
#define AMBIENT_CUDNN_ALGO_PERF_DETERMINISM_OFFSET 24
#define AMBIENT_CUDNN_ALGO_PERF_MATH_TYPE_OFFSET 28

/* ---- Library ---------------------------------------------------------------------------- */

/* CUDNN_VERSION of the loaded library: major * 1000 + minor * 100 + patch up to cuDNN 8,
 * major * 10000 + minor * 100 + patch from cuDNN 9 on. Needs no GPU. */
size_t cudnnGetVersion(void);

/* CUDART_VERSION of the CUDA runtime the loaded cuDNN was built against. */
size_t cudnnGetCudartVersion(void);

/* Text of any status code; never NULL. */
const char *cudnnGetErrorString(int status);

/* ---- Handles ---------------------------------------------------------------------------- */

/* Creates a handle on the current device (needs a GPU); *handle receives it. */
int cudnnCreate(void **handle);
int cudnnDestroy(void *handle);

/* Queues the handle's work on `stream` (a cudaStream_t; NULL is the default stream). */
int cudnnSetStream(void *handle, void *stream);

/* ---- Descriptors ------------------------------------------------------------------------ */

int cudnnCreateTensorDescriptor(void **tensor_desc);
int cudnnDestroyTensorDescriptor(void *tensor_desc);

/* A fully packed 4-D tensor n x c x h x w in `format` (cudnnTensorFormat_t) of data_type. */
int cudnnSetTensor4dDescriptor(void *tensor_desc, int format, int data_type, int n, int c, int h,
                               int w);

int cudnnCreateFilterDescriptor(void **filter_desc);
int cudnnDestroyFilterDescriptor(void *filter_desc);

/* A filter of k output channels, c input channels, h x w taps (note: data type before format,
 * unlike cudnnSetTensor4dDescriptor). */
int cudnnSetFilter4dDescriptor(void *filter_desc, int data_type, int format, int k, int c, int h,
                               int w);

int cudnnCreateConvolutionDescriptor(void **conv_desc);
int cudnnDestroyConvolutionDescriptor(void *conv_desc);

/* Zero padding pad_h x pad_w, strides u x v, dilations, mode (cudnnConvolutionMode_t) and the
 * accumulation type compute_type (cudnnDataType_t). */
int cudnnSetConvolution2dDescriptor(void *conv_desc, int pad_h, int pad_w, int u, int v,
                                    int dilation_h, int dilation_w, int mode, int compute_type);

/* cudnnMathType_t of the convolution. */
int cudnnSetConvolutionMathType(void *conv_desc, int math_type);

/* ---- Choosing an algorithm -------------------------------------------------------------- */

/* How many entries the algorithm-choice calls below may return. */
int cudnnGetConvolutionForwardAlgorithmMaxCount(void *handle, int *count);
int cudnnGetConvolutionBackwardDataAlgorithmMaxCount(void *handle, int *count);
int cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(void *handle, int *count);

/* Heuristics: up to requested_count algorithms, best first, into perf_results (an array of
 * AlgoPerf structs, see above); *returned_count says how many. Runs nothing on the GPU. */
int cudnnGetConvolutionForwardAlgorithm_v7(void *handle, void *x_desc, void *w_desc,
                                           void *conv_desc, void *y_desc, int requested_count,
                                           int *returned_count, void *perf_results);
int cudnnGetConvolutionBackwardDataAlgorithm_v7(void *handle, void *w_desc, void *dy_desc,
                                                void *conv_desc, void *dx_desc,
                                                int requested_count, int *returned_count,
                                                void *perf_results);
int cudnnGetConvolutionBackwardFilterAlgorithm_v7(void *handle, void *x_desc, void *dy_desc,
                                                  void *conv_desc, void *dw_desc,
                                                  int requested_count, int *returned_count,
                                                  void *perf_results);

/* Measurement: runs every applicable algorithm (allocating what it needs) and returns them
 * fastest first, same arguments as the heuristics. */
int cudnnFindConvolutionForwardAlgorithm(void *handle, void *x_desc, void *w_desc,
                                         void *conv_desc, void *y_desc, int requested_count,
                                         int *returned_count, void *perf_results);
int cudnnFindConvolutionBackwardDataAlgorithm(void *handle, void *w_desc, void *dy_desc,
                                              void *conv_desc, void *dx_desc, int requested_count,
                                              int *returned_count, void *perf_results);
int cudnnFindConvolutionBackwardFilterAlgorithm(void *handle, void *x_desc, void *dy_desc,
                                                void *conv_desc, void *dw_desc,
                                                int requested_count, int *returned_count,
                                                void *perf_results);

/* Workspace bytes an algorithm needs for these descriptors. */
int cudnnGetConvolutionForwardWorkspaceSize(void *handle, void *x_desc, void *w_desc,
                                            void *conv_desc, void *y_desc, int algo,
                                            size_t *size_in_bytes);
int cudnnGetConvolutionBackwardDataWorkspaceSize(void *handle, void *w_desc, void *dy_desc,
                                                 void *conv_desc, void *dx_desc, int algo,
                                                 size_t *size_in_bytes);
int cudnnGetConvolutionBackwardFilterWorkspaceSize(void *handle, void *x_desc, void *dy_desc,
                                                   void *conv_desc, void *dw_desc, int algo,
                                                   size_t *size_in_bytes);

/* ---- Convolutions (alpha and beta: host pointers to one float for float32 data) ----------- */

/* y = alpha conv(x, w) + beta y */
int cudnnConvolutionForward(void *handle, const void *alpha, void *x_desc, const void *x,
                            void *w_desc, const void *w, void *conv_desc, int algo,
                            void *workspace, size_t workspace_bytes, const void *beta,
                            void *y_desc, void *y);

/* dx = alpha conv^T(dy, w) + beta dx (the gradient with respect to the input) */
int cudnnConvolutionBackwardData(void *handle, const void *alpha, void *w_desc, const void *w,
                                 void *dy_desc, const void *dy, void *conv_desc, int algo,
                                 void *workspace, size_t workspace_bytes, const void *beta,
                                 void *dx_desc, void *dx);

/* dw = alpha sum over pixels of dy x patches(x) + beta dw (the gradient of the filter) */
int cudnnConvolutionBackwardFilter(void *handle, const void *alpha, void *x_desc, const void *x,
                                   void *dy_desc, const void *dy, void *conv_desc, int algo,
                                   void *workspace, size_t workspace_bytes, const void *beta,
                                   void *dw_desc, void *dw);

#ifdef __cplusplus
}
#endif

#endif /* AMBIENT_VENDOR_CUDNN_SUBSET_H */
