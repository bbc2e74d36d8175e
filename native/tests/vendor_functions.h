/*
 * The functions of include/vendor/cublas_subset.h and cudnn_subset.h that vendor_compare binds,
 * as X-macro lists (no declarations here, so that vendor_stub.c can define stand-ins without
 * our prototypes in the way).
 */
#ifndef AMBIENT_VENDOR_FUNCTIONS_H
#define AMBIENT_VENDOR_FUNCTIONS_H

#define CUBLAS_FUNCTIONS(X)                                                                         \
    X(cublasGetProperty) X(cublasGetStatusString) X(cublasCreate_v2) X(cublasDestroy_v2)            \
    X(cublasSetStream_v2) X(cublasGetVersion_v2) X(cublasSetMathMode) X(cublasSgemm_v2) X(cublasGemmEx)

#define CUDNN_FUNCTIONS(X)                                                                          \
    X(cudnnGetVersion) X(cudnnGetCudartVersion) X(cudnnGetErrorString) X(cudnnCreate) X(cudnnDestroy) \
    X(cudnnSetStream) X(cudnnCreateTensorDescriptor) X(cudnnDestroyTensorDescriptor)                  \
    X(cudnnSetTensor4dDescriptor) X(cudnnCreateFilterDescriptor) X(cudnnDestroyFilterDescriptor)      \
    X(cudnnSetFilter4dDescriptor) X(cudnnCreateConvolutionDescriptor)                                  \
    X(cudnnDestroyConvolutionDescriptor) X(cudnnSetConvolution2dDescriptor)                           \
    X(cudnnSetConvolutionMathType) X(cudnnGetConvolutionForwardAlgorithmMaxCount)                     \
    X(cudnnGetConvolutionBackwardDataAlgorithmMaxCount)                                               \
    X(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount) X(cudnnGetConvolutionForwardAlgorithm_v7)   \
    X(cudnnGetConvolutionBackwardDataAlgorithm_v7) X(cudnnGetConvolutionBackwardFilterAlgorithm_v7)   \
    X(cudnnFindConvolutionForwardAlgorithm) X(cudnnFindConvolutionBackwardDataAlgorithm)              \
    X(cudnnFindConvolutionBackwardFilterAlgorithm) X(cudnnGetConvolutionForwardWorkspaceSize)         \
    X(cudnnGetConvolutionBackwardDataWorkspaceSize) X(cudnnGetConvolutionBackwardFilterWorkspaceSize) \
    X(cudnnConvolutionForward) X(cudnnConvolutionBackwardData) X(cudnnConvolutionBackwardFilter)

#endif /* AMBIENT_VENDOR_FUNCTIONS_H */
