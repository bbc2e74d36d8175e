package dev.ambient.benchmarks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Runs the same kernel cases in PyTorch on this machine ({@code --vs-torch}): Debian's
 * {@code python3-torch} through {@code /usr/bin/python3} (or the Python that
 * {@code AMBIENT_PYTHON} / {@code -Dambient.python} names), with the same thread count, and with
 * OpenBLAS told its core type on AVX-512 processors that OpenBLAS 0.3.21 does not recognise
 * (it would fall back to SSE3 kernels otherwise). The script is a resource of this jar.
 */
final class TorchComparison {

    static final String DEFAULT_PYTHON = "/usr/bin/python3";
    static final String PYTHON_VARIABLE = "AMBIENT_PYTHON";
    static final String PYTHON_PROPERTY = "ambient.python";
    /** The Python that runs PyTorch: Debian's by default; a GPU machine's may live elsewhere. */
    static final String PYTHON = python(System.getProperty(PYTHON_PROPERTY), System.getenv(PYTHON_VARIABLE));
    static final String INSTALL_HINT = "install it with: sudo apt-get install python3-torch libopenblas0-pthread"
            + " (or name another Python with " + PYTHON_VARIABLE + ")";

    private TorchComparison() {}

    /** The system property's Python, else the variable's, else Debian's. */
    static String python(String property, String variable) {
        if (property != null && !property.isBlank()) return property.strip();
        if (variable != null && !variable.isBlank()) return variable.strip();
        return DEFAULT_PYTHON;
    }

    /** Null when PyTorch can be run, else why not (with how to install it). */
    static String unavailable() {
        if (!Files.isExecutable(Path.of(PYTHON))) return PYTHON + " is missing; " + INSTALL_HINT;
        try {
            Process p = new ProcessBuilder(PYTHON, "-c", "import torch").redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes());
            if (p.waitFor() != 0) return "PyTorch is not importable by " + PYTHON + " (" + out.strip() + "); " + INSTALL_HINT;
            return null;
        } catch (IOException e) {
            return "cannot run " + PYTHON + ": " + e.getMessage();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "interrupted";
        }
    }

    /** The torch side of one run: its settings and a time per (op, shape). */
    record Result(Map<String, Object> settings, Map<String, Double> millis, Map<String, String> skipped) {}

    static Result run(List<Map<String, Object>> cases, int threads) throws IOException, InterruptedException {
        Path dir = Files.createTempDirectory("ambient-torch");
        try {
            Path script = dir.resolve("torch_kernels.py");
            try (InputStream in = TorchComparison.class.getResourceAsStream("torch_kernels.py")) {
                if (in == null) throw new IOException("torch_kernels.py is missing from the benchmarks jar");
                Files.copy(in, script, StandardCopyOption.REPLACE_EXISTING);
            }
            Path input = dir.resolve("cases.json"), output = dir.resolve("torch.json");
            List<Map<String, String>> request = new ArrayList<>();
            for (Map<String, Object> c : cases) request.add(Map.of("op", (String) c.get("op"), "shape", (String) c.get("shape")));
            ObjectMapper json = new ObjectMapper();
            json.writeValue(input.toFile(), request);
            ProcessBuilder pb = new ProcessBuilder(PYTHON, script.toString(), input.toString(), output.toString()).inheritIO();
            pb.environment().put("OMP_NUM_THREADS", Integer.toString(threads));
            if (needsOpenBlasCoreType()) pb.environment().putIfAbsent("OPENBLAS_CORETYPE", "SkylakeX");
            int rc = pb.start().waitFor();
            if (rc != 0) throw new IOException("the PyTorch side failed (exit " + rc + ")");
            JsonNode root = json.readTree(output.toFile());
            Map<String, Object> settings = new HashMap<>();
            settings.put("torch", root.path("torch").asText());
            settings.put("threads", root.path("threads").asInt());
            settings.put("blas", json.convertValue(root.path("blas"), List.class));
            settings.put("openblas_coretype", root.path("openblas_coretype").isNull() ? null : root.path("openblas_coretype").asText());
            Map<String, Double> millis = new HashMap<>();
            Map<String, String> skipped = new HashMap<>();
            for (JsonNode c : root.path("cases")) {
                String key = c.path("op").asText() + " " + c.path("shape").asText();
                if (c.has("torch_ms")) millis.put(key, c.path("torch_ms").asDouble());
                else skipped.put(key, c.path("skipped").asText());
            }
            return new Result(settings, millis, skipped);
        } finally {
            try (var files = Files.list(dir)) {
                for (Path f : files.toList()) Files.deleteIfExists(f);
            }
            Files.deleteIfExists(dir);
        }
    }

    /** OpenBLAS 0.3.21 does not know Zen 4 and other recent AVX-512 cores; it then uses SSE3. */
    private static boolean needsOpenBlasCoreType() {
        try {
            String cpuinfo = Files.readString(Path.of("/proc/cpuinfo")).toLowerCase(Locale.ROOT);
            return cpuinfo.contains("avx512f");
        } catch (IOException e) {
            return false;
        }
    }
}
