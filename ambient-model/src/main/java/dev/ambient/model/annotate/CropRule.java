package dev.ambient.model.annotate;

import java.util.Collections;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * The crop classifier's decision rule (spec §1.7): for each patch size, the mean over tiles of
 * P(in-distribution); the largest patch size whose mean exceeds the threshold (else patch size
 * 1) gives σ_max through a patch-size table, and σ_min = {@link Annotation#NEVER}: the image is
 * used only below σ_max, as a clean target seen through that small a receptive field.
 *
 * @param table σ_max per patch size in pixels
 * @param threshold the mean probability a patch size must exceed (reference code: 0.25)
 */
public record CropRule(SortedMap<Integer, Double> table, double threshold) {

    /** The reference's pixel table, for 64×64 images (patch size → σ_max). */
    public static final SortedMap<Integer, Double> PIXEL_TABLE = table(
            1, 0.01, 4, 0.05, 8, 0.15, 16, 0.20, 24, 0.35, 32, 0.55, 48, 0.70, 64, 1.00);

    /**
     * The reference's latent table (latent receptive field → σ_max, pixel patch = 8× the field),
     * used with per-patch-size quality scores.
     */
    public static final SortedMap<Integer, Double> LATENT_TABLE = table(4, 0.10, 8, 0.175, 16, 0.20, 32, 1.00, 64, 200.0);

    public static final CropRule DEFAULT = new CropRule(PIXEL_TABLE, 0.25);

    public CropRule {
        if (table.isEmpty()) throw new IllegalArgumentException("empty patch-size table");
        table = Collections.unmodifiableSortedMap(new TreeMap<>(table));
        if (!(threshold >= 0 && threshold < 1)) throw new IllegalArgumentException("threshold must be in [0, 1), got " + threshold);
    }

    /** The patch size chosen for these predictions. */
    public int patchSize(Annotation.Crops crops) {
        int best = 1;
        for (int size : crops.predictions().keySet()) {
            if (crops.mean(size) > threshold) best = Math.max(best, size);
        }
        return best;
    }

    /** σ_max for these predictions; a chosen patch size missing from the table is an error. */
    public double sigmaMax(Annotation.Crops crops) {
        int size = patchSize(crops);
        Double sigma = table.get(size);
        if (sigma == null) {
            throw new IllegalArgumentException("patch size " + size + " of " + crops.filename() + " is not in the patch-size table " + table.keySet());
        }
        return sigma;
    }

    private static SortedMap<Integer, Double> table(Object... pairs) {
        TreeMap<Integer, Double> t = new TreeMap<>();
        for (int k = 0; k < pairs.length; k += 2) t.put((Integer) pairs[k], ((Number) pairs[k + 1]).doubleValue());
        return Collections.unmodifiableSortedMap(t);
    }
}
