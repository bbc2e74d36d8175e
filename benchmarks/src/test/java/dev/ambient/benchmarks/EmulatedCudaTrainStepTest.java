package dev.ambient.benchmarks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The whole training step of W1 driven from Java on the CUDA backend, against the CPU backend:
 * noising, the UNet forward and backward, the Ambient loss, Adam and the EMAs. No GPU is needed:
 * the CUDA library is the native tests' emulated one (native/tests/cuda_emulation, the library's
 * own code run on the host), in the float32 precision of matrix products, so that three steps from
 * the same weights, data and noise must lose the same up to float32 rounding. Each backend runs in
 * a child JVM that takes the folder of both libraries as its native directory. Skipped where the
 * emulated library was not built (no CUDA toolkit).
 */
class EmulatedCudaTrainStepTest {

    static final Path NATIVES = Path.of("..", "native", "target", "cmake-release", "tests", "emulated-natives");

    @Test
    void theCudaBackendTrainsAsTheCpuBackendDoes(@TempDir Path dir) throws Exception {
        assumeTrue(Files.isRegularFile(NATIVES.resolve("libambient_cuda.so")),
                "the emulated CUDA library was not built (it needs the CUDA toolkit's headers)");
        double[] cpu = losses(dir, "cpu"), cuda = losses(dir, "cuda");
        assertEquals(3, cpu.length);
        for (int s = 0; s < cpu.length; s++) {
            // measured: 3e-8 to 6e-8 of the loss over three steps at batch 4
            assertEquals(cpu[s], cuda[s], 1e-5 * Math.abs(cpu[s]), "loss of step " + s);
        }
    }

    /** The losses of TrainBenchmark W1 at batch 1: two untimed steps, then one timed. */
    private static double[] losses(Path dir, String device) throws Exception {
        Path out = dir.resolve(device + ".json");
        List<String> command = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                TrainBenchmark.class.getName(), "W1", "1", "1", "2", device, out.toString());
        ProcessBuilder builder = new ProcessBuilder(command).inheritIO();
        builder.environment().put("AMBIENT_NATIVE_DIR", NATIVES.toAbsolutePath().toString());
        builder.environment().put("AMBIENT_CUDA_MATMUL", "fp32");
        builder.environment().remove("AMBIENT_DEVICE");
        assertEquals(0, builder.start().waitFor(), "the " + device + " train step's JVM failed (output above)");
        JsonNode json = new ObjectMapper().readTree(out.toFile());
        assertEquals(device, json.path("backend").asText());
        JsonNode losses = json.path("losses");
        double[] result = new double[losses.size()];
        for (int i = 0; i < result.length; i++) result[i] = losses.get(i).asDouble();
        return result;
    }
}
