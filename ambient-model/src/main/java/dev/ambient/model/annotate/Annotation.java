package dev.ambient.model.annotate;

import java.util.Arrays;
import java.util.Collections;
import java.util.Map;
import java.util.Objects;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * One line of an {@code annotations.jsonl} file: the annotation of one image, in one of the
 * reference's four forms (spec §1.4). {@code filename} is the image's path relative to the
 * dataset root, or its bare file name (the reference's annotators write bare names).
 */
public sealed interface Annotation {

    /** The largest noise level used as "never": a sample with σ_min = 300 is never used at high noise. */
    double NEVER = 300;

    String filename();

    /**
     * A single minimum noise level, {@code {"filename": f, "annotation": v}} or with the key
     * {@code "sigma"}: the pair (v, 0).
     */
    record Level(String filename, double sigma, boolean sigmaKey) implements Annotation {
        public Level {
            checkName(filename);
            checkSigma(sigma, sigmaKey ? "sigma" : "annotation");
        }
        /** Written with the key {@code "annotation"}. */
        public Level(String filename, double sigma) { this(filename, sigma, false); }
        public String key() { return sigmaKey ? "sigma" : "annotation"; }
    }

    /** Explicit bounds, {@code {"filename": f, "sigma_min": a, "sigma_max": b}}. */
    record Bounds(String filename, double sigmaMin, double sigmaMax) implements Annotation {
        public Bounds {
            checkName(filename);
            checkSigma(sigmaMin, "sigma_min");
            checkSigma(sigmaMax, "sigma_max");
        }
    }

    /**
     * A noise classifier's raw trajectory, {@code {"filename": f, "probabilities": [[p, ...], ...]}}:
     * P(corrupted) for each of K grid sigmas (the sorted values of {@code sigmas.txt}) and T
     * noise trials, K × T.
     */
    record Trajectory(String filename, double[][] probabilities) implements Annotation {
        public Trajectory {
            checkName(filename);
            Objects.requireNonNull(probabilities, "probabilities");
            if (probabilities.length == 0) throw new IllegalArgumentException("\"probabilities\" is empty");
            int t = probabilities[0].length;
            for (int k = 0; k < probabilities.length; k++) {
                if (probabilities[k].length == 0 || probabilities[k].length != t) {
                    throw new IllegalArgumentException("\"probabilities\" row " + k + " has " + probabilities[k].length
                            + " trials, row 0 has " + t + " (expected a non-empty K x T matrix)");
                }
                for (double p : probabilities[k]) checkProbability(p, "probabilities");
            }
            probabilities = Arrays.stream(probabilities).map(double[]::clone).toArray(double[][]::new);
        }
        public double[][] probabilities() {
            return Arrays.stream(probabilities).map(double[]::clone).toArray(double[][]::new);
        }
        /** The mean over trials at grid index {@code k}. */
        public double mean(int k) {
            double s = 0;
            for (double p : probabilities[k]) s += p;
            return s / probabilities[k].length;
        }
        public int sigmaCount() { return probabilities.length; }
        @Override public boolean equals(Object o) {
            return o instanceof Trajectory t && t.filename.equals(filename) && Arrays.deepEquals(t.probabilities, probabilities);
        }
        @Override public int hashCode() { return filename.hashCode() * 31 + Arrays.deepHashCode(probabilities); }
        @Override public String toString() { return "Trajectory[" + filename + ", " + probabilities.length + "x" + probabilities[0].length + "]"; }
    }

    /**
     * A crop classifier's output, {@code {"filename": f, "crop_predictions_<size>": [p, ...], ...}}:
     * per patch size, the probability that each tile of that size is in-distribution.
     */
    record Crops(String filename, SortedMap<Integer, double[]> predictions) implements Annotation {
        public Crops {
            checkName(filename);
            if (predictions.isEmpty()) throw new IllegalArgumentException("no crop predictions");
            TreeMap<Integer, double[]> copy = new TreeMap<>();
            for (Map.Entry<Integer, double[]> e : predictions.entrySet()) {
                String key = "crop_predictions_" + e.getKey();
                if (e.getKey() <= 0) throw new IllegalArgumentException("patch size in " + key + " must be positive");
                if (e.getValue().length == 0) throw new IllegalArgumentException(key + " is empty");
                for (double p : e.getValue()) checkProbability(p, key);
                copy.put(e.getKey(), e.getValue().clone());
            }
            predictions = Collections.unmodifiableSortedMap(copy);
        }
        /** The mean in-distribution probability over the tiles of patch size {@code size}. */
        public double mean(int size) {
            double[] p = predictions.get(size);
            if (p == null) throw new IllegalArgumentException("no crop_predictions_" + size);
            double s = 0;
            for (double v : p) s += v;
            return s / p.length;
        }
        @Override public boolean equals(Object o) {
            if (!(o instanceof Crops c) || !c.filename.equals(filename) || !c.predictions.keySet().equals(predictions.keySet())) return false;
            for (var e : predictions.entrySet()) if (!Arrays.equals(e.getValue(), c.predictions.get(e.getKey()))) return false;
            return true;
        }
        @Override public int hashCode() { return filename.hashCode() * 31 + predictions.keySet().hashCode(); }
    }

    private static void checkName(String filename) {
        if (filename == null || filename.isBlank()) throw new IllegalArgumentException("\"filename\" is missing or empty");
    }

    private static void checkSigma(double sigma, String key) {
        if (!Double.isFinite(sigma) || sigma < 0) {
            throw new IllegalArgumentException("\"" + key + "\" must be a finite non-negative noise level, got " + sigma);
        }
    }

    private static void checkProbability(double p, String key) {
        if (!(p >= 0 && p <= 1)) throw new IllegalArgumentException("\"" + key + "\" holds " + p + ", not a probability in [0, 1]");
    }
}
