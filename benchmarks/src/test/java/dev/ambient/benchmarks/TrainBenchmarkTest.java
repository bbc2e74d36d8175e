package dev.ambient.benchmarks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ambient.kernels.Device;
import dev.ambient.model.unet.UNetConfig;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfEnvironmentVariable;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code bench train}'s plumbing: which Python runs PyTorch, on which device PyTorch trains
 * (float32 on the CPU, bf16 autocast on the GPU Ambient uses) and what the JSON records. The
 * PyTorch cases run where a Python with torch is found and are reported as skipped elsewhere;
 * on a machine without a GPU, CUDA autocast is stood in for by CPU autocast.
 */
class TrainBenchmarkTest {

    /** Every kind of block of the UNet (encoder, decoder, attention, skips) at a small size. */
    static final UNetConfig TINY = new UNetConfig(8, 3, 0, 16, new int[] {1, 2}, null, null, 1, new int[] {4}, 0,
            0.5, 0.5, 0.3, 0.3, 256, 16, 8);

    static String torchMissing;

    @BeforeAll
    static void findTorch() {
        torchMissing = TorchEdm2.unavailable();
        if (torchMissing != null) System.out.println("TrainBenchmarkTest: PyTorch cases SKIPPED: " + torchMissing);
    }

    @Test
    void pythonIsTheSystemPropertysThenTheVariablesThenDebians() {
        assertEquals("/usr/bin/python3", TorchComparison.python(null, null));
        assertEquals("/usr/bin/python3", TorchComparison.python(" ", ""));
        assertEquals("/opt/venv/bin/python3", TorchComparison.python(null, "/opt/venv/bin/python3"));
        assertEquals("/a/python3", TorchComparison.python(" /a/python3 ", "/b/python3"));
    }

    @Test
    void pyTorchTrainsOnTheDeviceAmbientTrainsOn() {
        // the CPU comparison passes exactly the arguments it always did
        assertEquals(List.of(), TorchEdm2.stepDevice(Device.Kind.CPU, 0));
        assertEquals(List.of("cuda:0"), TorchEdm2.stepDevice(Device.Kind.CUDA, 0));
        assertEquals(List.of("cuda:3"), TorchEdm2.stepDevice(Device.Kind.CUDA, 3));
    }

    @Test
    void theJsonRecordsWherePyTorchRan() {
        Map<String, Object> cpu = new LinkedHashMap<>(Map.of("images_per_s", 10.0, "device", "cpu"));
        cpu.put("autocast_dtype", null);
        Map<String, Object> result = new LinkedHashMap<>();
        BenchMain.Train.copyTorchDevice(cpu, result);
        assertEquals("cpu", result.get("torch_device"));
        assertTrue(result.containsKey("torch_autocast_dtype"));
        assertNull(result.get("torch_autocast_dtype"));
        assertFalse(result.containsKey("torch_device_name"));

        Map<String, Object> older = Map.of("images_per_s", 10.0); // a script without the device fields
        result.clear();
        BenchMain.Train.copyTorchDevice(older, result);
        assertEquals("cpu", result.get("torch_device"));

        Map<String, Object> cuda = Map.of("device", "cuda:0", "device_name", "NVIDIA H100 80GB HBM3", "autocast_dtype", "bfloat16",
                "cudnn_benchmark", true, "cuda_runtime", "13.0", "gpu_peak_allocated_mb", 1234.5, "gpu_peak_reserved_mb", 2048.0);
        result.clear();
        BenchMain.Train.copyTorchDevice(cuda, result);
        assertEquals("cuda:0", result.get("torch_device"));
        assertEquals("NVIDIA H100 80GB HBM3", result.get("torch_device_name"));
        assertEquals("bfloat16", result.get("torch_autocast_dtype"));
        assertEquals(true, result.get("torch_cudnn_benchmark"));
        assertEquals(1234.5, result.get("torch_gpu_peak_allocated_mb"));
    }

    @Test
    void pyTorchStepOnTheCpuIsFloat32(@TempDir Path dir) throws Exception {
        Assumptions.assumeTrue(torchMissing == null, () -> "skipped: " + torchMissing);
        Path out = dir.resolve("torch.json");
        TorchEdm2.run(dir, TINY, 1, "step", "2", "1", "-", out.toString(), "0");
        JsonNode json = new ObjectMapper().readTree(out.toFile());
        assertTrue(json.path("images_per_s").asDouble() > 0, json.toString());
        assertEquals("cpu", json.path("device").asText());
        assertTrue(json.path("autocast_dtype").isNull(), json.toString());
    }

    /** On a GPU PyTorch trains under bf16 autocast and names the card; without one it says so. */
    @Test
    void pyTorchStepOnCudaIsBf16OrRefusedClearly(@TempDir Path dir) throws Exception {
        Assumptions.assumeTrue(torchMissing == null, () -> "skipped: " + torchMissing);
        Path out = dir.resolve("torch.json");
        try {
            TorchEdm2.run(dir, TINY, 1, "step", "2", "1", "-", out.toString(), "0", "cuda:0");
        } catch (IOException e) {
            assertTrue(e.getMessage().contains("sees no CUDA device"), e.getMessage());
            return;
        }
        JsonNode json = new ObjectMapper().readTree(out.toFile());
        assertEquals("cuda:0", json.path("device").asText());
        assertEquals("bfloat16", json.path("autocast_dtype").asText());
        assertFalse(json.path("device_name").asText().isEmpty(), json.toString());
    }

    /**
     * The PyTorch EDM2 trains under bf16 autocast (where convolutions give bf16 and
     * normalisations float32, and the two meet in mp_sum) and stays within bf16's precision of
     * float32; CPU autocast stands in for CUDA's on a machine without a GPU.
     */
    @Test
    void pyTorchEdm2RunsUnderBf16Autocast(@TempDir Path dir) throws Exception {
        Assumptions.assumeTrue(torchMissing == null, () -> "skipped: " + torchMissing);
        try (InputStream script = TorchEdm2.class.getResourceAsStream("edm2_torch.py")) {
            Files.copy(script, dir.resolve("edm2_torch.py"));
        }
        new ObjectMapper().writeValue(dir.resolve("config.json").toFile(), TINY);
        String output = pythonOutput("""
                import json, torch, edm2_torch
                torch.manual_seed(0)
                net = edm2_torch.Precond(json.load(open("config.json")))
                for p in net.parameters():
                    if p.ndim == 0:
                        p.data.fill_(0.7)  # gains away from 0, or the network's output would vanish
                device = "cuda" if torch.cuda.is_available() else "cpu"
                net = net.to(device)
                x = torch.randn(3, 3, 8, 8, device=device) * 0.5
                sigma = torch.tensor([0.05, 0.8, 6.0], device=device)
                with torch.no_grad():
                    reference = net.eval()(x, sigma)
                    with torch.autocast(device, dtype=torch.bfloat16):
                        mixed = net(x, sigma)
                error = float((mixed.float() - reference).abs().max() / reference.abs().max())
                net.train()
                with torch.autocast(device, dtype=torch.bfloat16):
                    denoised, logvar = net(x, sigma, return_logvar=True)
                (((denoised.float() - x) ** 2).sum() + logvar.float().sum()).backward()
                grads = all(p.grad is not None and p.grad.dtype == torch.float32 and bool(p.grad.isfinite().all())
                            for p in net.parameters())
                print(f"{error} {grads}")
                """, dir);
        String[] fields = output.strip().split(" ");
        assertEquals(2, fields.length, output);
        double error = Double.parseDouble(fields[0]);
        assertTrue(error > 0 && error < 3e-2, "bf16 autocast against float32: relative error " + error);
        assertEquals("True", fields[1], "every parameter's gradient is float32 and finite");
    }

    /**
     * W3 (EDM2-XS's shape on 64x64x4, 124M parameters) trains one finite step on the CPU at
     * batch 1: a correctness smoke, not a timing. About 5 GB and half a minute, so it runs only
     * with AMBIENT_TEST_W3=1.
     */
    @Test
    @EnabledIfEnvironmentVariable(named = "AMBIENT_TEST_W3", matches = "1")
    void w3TrainsAStepOnTheCpu(@TempDir Path dir) throws Exception {
        Path out = dir.resolve("w3.json");
        TrainBenchmark.main(new String[] {"W3", "1", "1", "0", "cpu", out.toString()});
        JsonNode json = new ObjectMapper().readTree(out.toFile());
        assertEquals("W3", json.path("workload").asText());
        assertEquals("cpu", json.path("backend").asText());
        assertEquals(124_201_253, json.path("parameters").asLong(), "W3's learned parameters (EDM2-XS without labels)");
        assertTrue(Double.isFinite(json.path("losses").get(0).asDouble()), json.toString());
    }

    /** Runs a Python snippet in dir with the Python the PyTorch comparisons use; its output (failing when it fails). */
    private static String pythonOutput(String code, Path dir) throws IOException, InterruptedException {
        Process p = start(code, dir);
        String out = new String(p.getInputStream().readAllBytes());
        if (p.waitFor() != 0) throw new IOException(TorchComparison.PYTHON + " failed:\n" + out);
        return out;
    }

    private static Process start(String code, Path dir) throws IOException {
        return new ProcessBuilder(TorchComparison.PYTHON, "-c", code).directory(dir.toFile()).redirectErrorStream(true).start();
    }
}
