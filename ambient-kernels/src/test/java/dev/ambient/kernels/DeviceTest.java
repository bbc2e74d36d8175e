package dev.ambient.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assumptions.assumeTrue;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.bindings.AmbientNative;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Backend loading, device discovery and selection, and native errors surfacing as exceptions. */
class DeviceTest {

    @AfterEach
    void clearForcedDevice() {
        System.clearProperty(Device.DEVICE_PROPERTY);
    }

    @Test
    void theCpuIsAlwaysThere() {
        Device cpu = Device.cpu();
        assertEquals(Device.Kind.CPU, cpu.kind());
        assertFalse(cpu.name().isBlank());
        long[] memory = cpu.memory();
        assertTrue(memory[1] > 0 && memory[0] <= memory[1]);
        assertSame(cpu, Device.available().getFirst());
        assertSame(cpu, Device.parse("CPU"));
    }

    @Test
    void theCpuLibraryExportsEveryFunctionOfTheHeader() throws Exception {
        Backend backend = Backend.load(Device.Kind.CPU);
        assertEquals(java.util.List.of(), backend.api.missingFunctions());
        assertEquals(AmbientNative.AMBIENT_VERSION_MAJOR * 10000 + AmbientNative.AMBIENT_VERSION_MINOR * 100
                + AmbientNative.AMBIENT_VERSION_PATCH, backend.api.ambient_library_version());
    }

    @Test
    void theCpuMultipliesInFloat32() {
        assertEquals(Device.MatmulPrecision.FP32, Device.cpu().matmulPrecision());
        assertEquals(0x1p-24, Device.MatmulPrecision.FP32.unitRoundoff());
        assertEquals(0x1p-8, Device.MatmulPrecision.BF16.unitRoundoff());
    }

    @Test
    void threadsCanBeSetAndRestored() {
        Device cpu = Device.cpu();
        int before = cpu.threads();
        cpu.setThreads(1);
        try {
            assertEquals(1, cpu.threads());
        } finally {
            cpu.setThreads(0);
        }
        assertEquals(before, cpu.threads());
    }

    /** Where the CUDA library was built (nvcc present), it must load and answer cleanly. */
    @Test
    void theCudaLibraryLoadsAndReportsNoDeviceWithoutAGpu() throws Exception {
        assumeTrue(DeviceTest.class.getResource("/META-INF/native/linux-x86_64/libambient_cuda.so") != null,
                "libambient_cuda.so was not built here (no nvcc)");
        Backend cuda = Backend.load(Device.Kind.CUDA);
        for (String function : java.util.List.of("ambient_device_count", "ambient_memory_alloc", "ambient_gemm",
                "ambient_mp_silu_forward", "ambient_pixel_norm_backward")) {
            assertFalse(cuda.api.missingFunctions().contains(function), function + " is missing from the CUDA library");
        }
        String problem = Device.cudaProblem();
        assumeTrue(problem != null, "a CUDA device answers on this machine");
        assertTrue(problem.startsWith("library loaded"), problem);
        var e = assertThrows(IllegalStateException.class, () -> Device.cuda(0));
        assertTrue(e.getMessage().contains("CUDA device 0 is unavailable"), e.getMessage());
        assertEquals(Device.Kind.CPU, Device.auto().kind(), "falls back to the CPU");
        assertEquals(1, Device.available().size());
    }

    @Test
    void forcingAnUnavailableDeviceIsAClearError() {
        assumeTrue(Device.cudaProblem() != null, "a CUDA device answers on this machine");
        System.setProperty(Device.DEVICE_PROPERTY, "cuda");
        var e = assertThrows(IllegalStateException.class, Device::auto);
        assertTrue(e.getMessage().contains("CUDA device 0 is unavailable"), e.getMessage());
    }

    @Test
    void forcingTheCpuWorks() {
        System.setProperty(Device.DEVICE_PROPERTY, "cpu");
        assertSame(Device.cpu(), Device.auto());
    }

    @Test
    void unknownDeviceNamesAreRefused() {
        var e = assertThrows(IllegalArgumentException.class, () -> Device.parse("tpu"));
        assertTrue(e.getMessage().contains("expected cpu, cuda or cuda:N"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Device.parse("cuda:x"));
        assertThrows(IllegalArgumentException.class, () -> Device.cuda(-1));
    }

    @Test
    void aNativeErrorBecomesAnExceptionWithTheNativeMessage() {
        var e = assertThrows(AmbientException.class, () -> Device.cpu().measureFmaPeak(-1));
        assertEquals(AmbientException.Status.INVALID_ARGUMENT, e.status());
        assertEquals("ambient_benchmark_fma_peak", e.function());
        assertTrue(e.getMessage().contains("seconds"), e.getMessage());
    }

    @Test
    void ceilingsAreMeasurable() {
        assertTrue(Device.cpu().measureFmaPeak(0.05) > 0);
        assertTrue(Device.cpu().measureMemoryBandwidth(1 << 24, 0.05) > 0);
        assertTrue(Device.cpu().measureMatmulPeak(128, 0.05) > 0);
        var e = assertThrows(AmbientException.class, () -> Device.cpu().measureMatmulPeak(8, 0.05));
        assertTrue(e.getMessage().contains("n = 8"), e.getMessage());
        assertNotNull(Device.cpu().toString());
    }
}
