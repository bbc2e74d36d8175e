package dev.ambient.model.annotate;

import java.util.ArrayList;
import java.util.List;

/**
 * The fixed annotation (spec §1.7, the paper's "single annotation"): every corrupted sample gets
 * the same {@code (σ_min, σ_max)}, every clean sample (0, 0). The paper's Table 12 pairs blur
 * std 1.0 with σ_min = 2.32, 0.8 with 1.89 and 0.4 with 0 (σ_max = 0 throughout).
 */
public final class FixedAnnotation {

    /** The reference script's level for blur std 0.8 ({@code blur0-8}). */
    public static final double SIGMA_MIN_BLUR_0_8 = 1.89;
    /** The paper's level for blur std 1.0 ({@code blur1}). */
    public static final double SIGMA_MIN_BLUR_1 = 2.32;

    private FixedAnnotation() {}

    /**
     * One {@link Annotation.Bounds} per sample, in dataset order: {@code (sigmaMin, sigmaMax)}
     * where {@code corrupted[i]}, (0, 0) elsewhere.
     */
    public static List<Annotation.Bounds> annotate(List<String> names, boolean[] corrupted, double sigmaMin, double sigmaMax) {
        if (names.size() != corrupted.length) throw new IllegalArgumentException(names.size() + " names but " + corrupted.length + " flags");
        List<Annotation.Bounds> out = new ArrayList<>(names.size());
        for (int i = 0; i < corrupted.length; i++) {
            out.add(corrupted[i] ? new Annotation.Bounds(names.get(i), sigmaMin, sigmaMax) : new Annotation.Bounds(names.get(i), 0, 0));
        }
        return out;
    }

    /** The same as a table by dataset index, without going through a file. */
    public static AnnotationTable table(boolean[] corrupted, double sigmaMin, double sigmaMax) {
        new Annotation.Bounds("check", sigmaMin, sigmaMax); // validates the levels
        double[] lo = new double[corrupted.length], hi = new double[corrupted.length];
        for (int i = 0; i < corrupted.length; i++) {
            if (corrupted[i]) {
                lo[i] = sigmaMin;
                hi[i] = sigmaMax;
            }
        }
        return new AnnotationTable(lo, hi, corrupted.length);
    }
}
