package dev.ambient.benchmarks;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ambient.kernels.Device;
import dev.ambient.model.unet.UNetConfig;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Runs benchmarks' own PyTorch EDM2 network ({@code edm2_torch.py}, a resource of this jar)
 * through Debian's python3-torch (or {@code AMBIENT_PYTHON}), configured as
 * {@link TorchComparison} configures it (same threads, OpenBLAS told its core type on AVX-512).
 * When Ambient trains on a CUDA device, PyTorch trains on the same card, its forward pass under
 * bf16 autocast ({@link #stepDevice}).
 */
public final class TorchEdm2 {

    private TorchEdm2() {}

    /** Null when PyTorch can be run, else why not (with how to install it). */
    public static String unavailable() {
        return TorchComparison.unavailable();
    }

    /**
     * Null when PyTorch can train on the same kind of device as {@code device} (for a CUDA
     * device: the same GPU number, with bf16 support), else why not.
     */
    public static String unavailable(Device device) {
        String problem = unavailable();
        if (problem != null || device.kind() == Device.Kind.CPU) return problem;
        // The script's one line of output says what is wrong when it exits non-zero.
        String check = """
                import sys, torch
                i = %d
                n = torch.cuda.device_count() if torch.cuda.is_available() else 0
                if n <= i:
                    sys.exit(f"PyTorch {torch.__version__} sees {n} CUDA device(s), not cuda:{i}")
                if not torch.cuda.is_bf16_supported():
                    sys.exit(f"{torch.cuda.get_device_name(i)} does not support bf16 autocast")
                """.formatted(device.index());
        try {
            Process p = new ProcessBuilder(TorchComparison.PYTHON, "-c", check).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes()).strip();
            if (p.waitFor() != 0) return "PyTorch (" + TorchComparison.PYTHON + ") cannot train on " + device + ": " + out;
            return null;
        } catch (IOException e) {
            return "cannot run " + TorchComparison.PYTHON + ": " + e.getMessage();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "interrupted";
        }
    }

    /**
     * The extra argument of {@code edm2_torch.py step} that puts PyTorch on the device Ambient
     * trains on: none for the CPU (float32, the comparison as it always ran), {@code cuda:N} for
     * CUDA device N (bf16 autocast).
     */
    static List<String> stepDevice(Device.Kind kind, int index) {
        return kind == Device.Kind.CPU ? List.of() : List.of("cuda:" + index);
    }

    /**
     * Runs {@code edm2_torch.py COMMAND CONFIG.json ARGS...} in {@code dir} (the script and the
     * configuration are written there); fails with the script's output when it fails.
     */
    public static String run(Path dir, UNetConfig config, int threads, String command, String... args)
            throws IOException, InterruptedException {
        Path script = dir.resolve("edm2_torch.py");
        try (InputStream in = TorchEdm2.class.getResourceAsStream("edm2_torch.py")) {
            if (in == null) throw new IOException("edm2_torch.py is missing from the benchmarks jar");
            Files.copy(in, script, StandardCopyOption.REPLACE_EXISTING);
        }
        Path cfg = dir.resolve("config.json");
        new ObjectMapper().writeValue(cfg.toFile(), config);
        List<String> cmd = new ArrayList<>(List.of(TorchComparison.PYTHON, script.toString(), command, cfg.toString()));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().put("OMP_NUM_THREADS", Integer.toString(threads));
        if (avx512()) pb.environment().putIfAbsent("OPENBLAS_CORETYPE", "SkylakeX");
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes());
        if (p.waitFor() != 0) throw new IOException("edm2_torch.py " + command + " failed:\n" + out);
        return out;
    }

    private static boolean avx512() {
        try {
            return Files.readString(Path.of("/proc/cpuinfo")).toLowerCase(Locale.ROOT).contains("avx512f");
        } catch (IOException e) {
            return false;
        }
    }
}
