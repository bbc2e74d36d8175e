package dev.ambient.benchmarks;

import com.fasterxml.jackson.databind.ObjectMapper;
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
 * through Debian's python3-torch, configured as {@link TorchComparison} configures it (same
 * threads, OpenBLAS told its core type on AVX-512).
 */
public final class TorchEdm2 {

    private TorchEdm2() {}

    /** Null when PyTorch can be run, else why not (with how to install it). */
    public static String unavailable() {
        return TorchComparison.unavailable();
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
