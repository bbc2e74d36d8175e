package dev.ambient.benchmarks;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The committed throughput baseline ({@code benchmarks/baseline-<backend>.json}): each case's
 * peak_fraction, which divides out how fast the machine happens to be at the moment. A run
 * fails the check when a case's fraction falls below (1 - tolerance) times the baseline's.
 */
final class Baseline {

    /** Absolute times on the shared 2-core machine vary by about +-25%; fractions a little less. */
    static final double DEFAULT_TOLERANCE = 0.25;

    private Baseline() {}

    static Path defaultPath(String backend) {
        String home = System.getenv("AMBIENT_HOME");
        Path root = home == null ? Path.of("") : Path.of(home);
        return root.resolve("benchmarks").resolve("baseline-" + backend + ".json");
    }

    /**
     * Lines naming each case that fell, or (for a complete run) that the run lacks; empty when
     * all hold. A partial run ({@code --only}) is checked on the cases it measured.
     */
    static List<String> check(Path file, List<Map<String, Object>> cases, double tolerance, boolean complete)
            throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new IOException("no baseline at " + file + " (write one with --update-baseline)");
        }
        List<Map<String, Object>> baseline = new ObjectMapper().readValue(file.toFile(), new TypeReference<>() {});
        List<String> failures = new ArrayList<>();
        for (Map<String, Object> base : baseline) {
            String key = base.get("op") + " " + base.get("shape");
            double want = ((Number) base.get("peak_fraction")).doubleValue();
            Map<String, Object> now = cases.stream()
                    .filter(c -> (c.get("op") + " " + c.get("shape")).equals(key)).findFirst().orElse(null);
            if (now == null) {
                if (complete) failures.add(key + ": in the baseline but not measured in this run");
                continue;
            }
            double got = ((Number) now.get("peak_fraction")).doubleValue();
            if (got < want * (1 - tolerance)) {
                failures.add(String.format("%s: peak_fraction %.3f fell below %.3f (baseline %.3f, tolerance %.0f%%)",
                        key, got, want * (1 - tolerance), want, 100 * tolerance));
            }
        }
        return failures;
    }

    /** Rewrites the baseline with this run's op, shape and peak_fraction per case. */
    static void write(Path file, List<Map<String, Object>> cases) throws IOException {
        List<Map<String, Object>> slim = new ArrayList<>();
        for (Map<String, Object> c : cases) {
            slim.add(Map.of("op", c.get("op"), "shape", c.get("shape"), "peak_fraction", c.get("peak_fraction")));
        }
        BenchMain.writeJson(file, slim);
    }
}
