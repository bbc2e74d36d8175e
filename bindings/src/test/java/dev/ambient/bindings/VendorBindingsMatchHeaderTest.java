package dev.ambient.bindings;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemoryLayout.PathElement;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The cuBLAS and cuDNN subsets of native/include/vendor/ against their generated classes, read
 * with the tests' own parser ({@link HeaderDeclarations}); plus a few values checked against
 * NVIDIA's documentation once more and the AlgoPerf struct layout that the cuDNN header states
 * as offsets. No cuBLAS or cuDNN library is needed (none is opened here).
 */
class VendorBindingsMatchHeaderTest {

    record Binding(String header, Class<?> bindings, String functionPrefix, String constantPrefix) {
        @Override
        public String toString() {
            return header;
        }

        HeaderDeclarations parse() throws IOException {
            Path folder = Path.of(System.getProperty("vendor.headers", "../native/include/vendor"));
            return HeaderDeclarations.parse(folder.resolve(header), functionPrefix, constantPrefix);
        }

        @SuppressWarnings("unchecked")
        Map<String, FunctionDescriptor> generatedFunctions() throws ReflectiveOperationException {
            return (Map<String, FunctionDescriptor>) bindings.getField("FUNCTIONS").get(null);
        }
    }

    static Stream<Binding> bindings() {
        return Stream.of(
                new Binding("cublas_subset.h", CublasNative.class, "cublas", "(?:CUBLAS_|CUDA_R_|MAJOR_|MINOR_|PATCH_)"),
                new Binding("cudnn_subset.h", CudnnNative.class, "cudnn", "(?:CUDNN_|AMBIENT_CUDNN_)"));
    }

    @ParameterizedTest
    @MethodSource("bindings")
    void everyDeclaredFunctionIsBoundWithItsDescriptorAndMethod(Binding binding) throws Exception {
        var declared = binding.parse().functions();
        assertTrue(declared.size() >= 8, binding + ": parsed only " + declared.size() + " functions");
        var generated = binding.generatedFunctions();
        assertEquals(List.copyOf(declared.keySet()), List.copyOf(generated.keySet()), binding + " vs its class");
        for (var entry : declared.entrySet()) {
            FunctionDescriptor d = entry.getValue();
            assertEquals(d, generated.get(entry.getKey()), "descriptor of " + entry.getKey());
            Class<?>[] parameters = d.argumentLayouts().stream()
                    .map(HeaderDeclarations::carrierOf).toArray(Class<?>[]::new);
            Method method = binding.bindings().getMethod(entry.getKey(), parameters);
            assertEquals(d.returnLayout().map(HeaderDeclarations::carrierOf).orElse(void.class),
                    method.getReturnType(), "return type of " + entry.getKey());
            assertFalse(Modifier.isStatic(method.getModifiers()), entry.getKey() + " must be an instance method");
        }
    }

    @ParameterizedTest
    @MethodSource("bindings")
    void everyConstantHasItsValue(Binding binding) throws Exception {
        var constants = binding.parse().constants();
        assertTrue(constants.size() >= 10, binding + ": parsed only " + constants.size() + " constants");
        for (var entry : constants.entrySet()) {
            assertEquals(entry.getValue(), binding.bindings().getField(entry.getKey()).getInt(null), entry.getKey());
        }
    }

    @ParameterizedTest
    @MethodSource("bindings")
    void anEmptyLookupBindsNothingAndSaysSo(Binding binding) throws Exception {
        SymbolLookup nothing = name -> Optional.empty();
        Object instance = binding.bindings().getConstructor(SymbolLookup.class).newInstance(nothing);
        List<?> missing = (List<?>) binding.bindings().getMethod("missingFunctions").invoke(instance);
        assertEquals(List.copyOf(binding.parse().functions().keySet()), missing);
        Method version = binding.bindings() == CublasNative.class
                ? CublasNative.class.getMethod("cublasGetProperty", int.class, java.lang.foreign.MemorySegment.class)
                : CudnnNative.class.getMethod("cudnnGetVersion");
        Object[] arguments = version.getParameterCount() == 0 ? new Object[0]
                : new Object[] {CublasNative.MAJOR_VERSION, java.lang.foreign.MemorySegment.NULL};
        var failure = assertThrows(InvocationTargetException.class, () -> version.invoke(instance, arguments));
        assertTrue(failure.getCause() instanceof UnsatisfiedLinkError, String.valueOf(failure.getCause()));
        assertTrue(failure.getCause().getMessage().contains(version.getName()), failure.getCause().getMessage());
    }

    /** A second reading of NVIDIA's documentation for the values a typo would hurt most. */
    @Test
    void documentedValues() {
        assertEquals(0, CublasNative.CUBLAS_OP_N);
        assertEquals(1, CublasNative.CUBLAS_OP_T);
        assertEquals(68, CublasNative.CUBLAS_COMPUTE_32F);
        assertEquals(77, CublasNative.CUBLAS_COMPUTE_32F_FAST_TF32);
        assertEquals(75, CublasNative.CUBLAS_COMPUTE_32F_FAST_16BF);
        assertEquals(0, CublasNative.CUDA_R_32F);
        assertEquals(14, CublasNative.CUDA_R_16BF);
        assertEquals(-1, CublasNative.CUBLAS_GEMM_DEFAULT);
        assertEquals(3, CublasNative.CUBLAS_TF32_TENSOR_OP_MATH);
        assertEquals(1, CudnnNative.CUDNN_TENSOR_NHWC);
        assertEquals(0, CudnnNative.CUDNN_DATA_FLOAT);
        assertEquals(9, CudnnNative.CUDNN_DATA_BFLOAT16);
        assertEquals(1, CudnnNative.CUDNN_CROSS_CORRELATION);
        assertEquals(3, CudnnNative.CUDNN_FMA_MATH);
        assertEquals(1, CudnnNative.CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM);
        assertEquals(7, CudnnNative.CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED);
        assertEquals(3, CudnnNative.CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING);
        assertEquals(6, CudnnNative.CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING);
    }

    /** cudnnConvolution*AlgoPerf_t as C lays it out on LP64, against the header's offsets. */
    @Test
    void algoPerfOffsetsMatchTheCStruct() {
        StructLayout perf = MemoryLayout.structLayout(
                ValueLayout.JAVA_INT.withName("algo"),
                ValueLayout.JAVA_INT.withName("status"),
                ValueLayout.JAVA_FLOAT.withName("time"),
                MemoryLayout.paddingLayout(4),
                ValueLayout.JAVA_LONG.withName("memory"),
                ValueLayout.JAVA_INT.withName("determinism"),
                ValueLayout.JAVA_INT.withName("mathType"),
                MemoryLayout.sequenceLayout(3, ValueLayout.JAVA_INT).withName("reserved"),
                MemoryLayout.paddingLayout(4));
        assertEquals(CudnnNative.AMBIENT_CUDNN_ALGO_PERF_BYTES, perf.byteSize());
        assertEquals(CudnnNative.AMBIENT_CUDNN_ALGO_PERF_ALGO_OFFSET, perf.byteOffset(PathElement.groupElement("algo")));
        assertEquals(CudnnNative.AMBIENT_CUDNN_ALGO_PERF_STATUS_OFFSET, perf.byteOffset(PathElement.groupElement("status")));
        assertEquals(CudnnNative.AMBIENT_CUDNN_ALGO_PERF_TIME_OFFSET, perf.byteOffset(PathElement.groupElement("time")));
        assertEquals(CudnnNative.AMBIENT_CUDNN_ALGO_PERF_MEMORY_OFFSET, perf.byteOffset(PathElement.groupElement("memory")));
        assertEquals(CudnnNative.AMBIENT_CUDNN_ALGO_PERF_DETERMINISM_OFFSET,
                perf.byteOffset(PathElement.groupElement("determinism")));
        assertEquals(CudnnNative.AMBIENT_CUDNN_ALGO_PERF_MATH_TYPE_OFFSET,
                perf.byteOffset(PathElement.groupElement("mathType")));
    }
}
