package dev.ambient.model.corrupt;

import dev.ambient.model.data.ImageDataset;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

/**
 * Corrupts a chosen part of a dataset and records which samples were corrupted and how (the
 * sample's corruption label, 1 = corrupted, as the reference's {@code corruption_label}).
 *
 * <p>Which samples are corrupted depends only on the seed and the sample's index:
 * <ul>
 * <li>{@link #withProbability}: each sample independently with probability p, as the
 * reference's synthetic dataset does (a uniform draw per index below p), so the samples clean
 * at p = 0.9 are a subset of those clean at p = 0.5 for the same seed;
 * <li>{@link #withCleanFraction}: exactly {@code round(f·N)} samples stay clean, the first ones
 * of a seeded permutation (the paper's setting, e.g. 10 % clean and 90 % corrupted); again a
 * smaller clean fraction keeps a subset of the clean samples of a larger one.
 * </ul>
 * A corrupted sample gets one of the given corruptions, uniformly at random, and any randomness
 * of the corruption itself comes from the sample's own stream, so results do not depend on
 * thread scheduling. The corrupted images are quantised into the dataset's 8-bit cache, as the
 * reference writes its corrupted datasets back to PNG before training.
 */
public final class Corrupter {

    /**
     * The corrupted dataset (same names and labels as the clean one) and, per sample, the
     * corruption applied: null for a clean sample.
     */
    public record Result(ImageDataset dataset, Corruption[] applied) {

        public boolean corrupted(int i) { return applied[i] != null; }

        /** 1 for a corrupted sample, 0 for a clean one. */
        public int corruptionLabel(int i) { return applied[i] == null ? 0 : 1; }

        /** The corruption's name, or null for a clean sample. */
        public String corruptionName(int i) { return applied[i] == null ? null : applied[i].name(); }

        public boolean[] corruptedMask() {
            boolean[] mask = new boolean[applied.length];
            for (int i = 0; i < mask.length; i++) mask[i] = applied[i] != null;
            return mask;
        }

        public int corruptedCount() {
            int n = 0;
            for (Corruption c : applied) if (c != null) n++;
            return n;
        }
    }

    private Corrupter() {}

    /** Corrupts each sample independently with probability {@code pCorrupt}. */
    public static Result withProbability(ImageDataset clean, List<? extends Corruption> choices, double pCorrupt, long seed) {
        if (!(pCorrupt >= 0 && pCorrupt <= 1)) throw new IllegalArgumentException("corruption probability must be in [0, 1], got " + pCorrupt);
        boolean[] corrupt = new boolean[clean.size()];
        for (int i = 0; i < corrupt.length; i++) corrupt[i] = decisionDraw(seed, i) < pCorrupt;
        return apply(clean, choices, corrupt, seed);
    }

    /** Keeps exactly {@code round(cleanFraction·N)} samples clean and corrupts the rest. */
    public static Result withCleanFraction(ImageDataset clean, List<? extends Corruption> choices, double cleanFraction, long seed) {
        if (!(cleanFraction >= 0 && cleanFraction <= 1)) throw new IllegalArgumentException("clean fraction must be in [0, 1], got " + cleanFraction);
        int n = clean.size();
        int keep = (int) Math.round(cleanFraction * n);
        int[] order = permutation(n, new SplittableRandom(seed ^ 0x5DEECE66DL));
        boolean[] corrupt = new boolean[n];
        java.util.Arrays.fill(corrupt, true);
        for (int k = 0; k < keep; k++) corrupt[order[k]] = false;
        return apply(clean, choices, corrupt, seed);
    }

    /** Applies a random one of {@code choices} to each sample marked in {@code corrupt}. */
    public static Result apply(ImageDataset clean, List<? extends Corruption> choices, boolean[] corrupt, long seed) {
        if (corrupt.length != clean.size()) throw new IllegalArgumentException(clean.size() + " samples but " + corrupt.length + " flags");
        if (choices.isEmpty()) throw new IllegalArgumentException("no corruption given");
        int n = clean.size(), per = clean.imageSize();
        int h = clean.height(), w = clean.width(), c = clean.channels();
        byte[] pixels = new byte[n * per];
        Corruption[] applied = new Corruption[n];
        IntStream.range(0, n).parallel().forEach(i -> {
            if (!corrupt[i]) {
                byte[] codes = clean.codes(i);
                System.arraycopy(codes, 0, pixels, i * per, per);
                return;
            }
            SplittableRandom random = sampleRandom(seed, i);
            Corruption chosen = choices.get(random.nextInt(choices.size()));
            float[] out = chosen.apply(clean.image(i), h, w, c, random);
            for (int k = 0; k < per; k++) pixels[i * per + k] = ImageDataset.quantize(out[k]);
            applied[i] = chosen;
        });
        return new Result(clean.withPixels(pixels), applied);
    }

    /** The uniform draw in [0, 1) that decides whether sample {@code i} is corrupted. */
    static double decisionDraw(long seed, int i) {
        return new SplittableRandom(mix(seed, i, 0x1F)).nextDouble();
    }

    /** Sample {@code i}'s own stream for choosing and applying its corruption. */
    static SplittableRandom sampleRandom(long seed, int i) {
        return new SplittableRandom(mix(seed, i, 0x2F));
    }

    private static long mix(long seed, int i, int stream) {
        long z = seed + 0x9E3779B97F4A7C15L * (((long) i << 8) | stream);
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    private static int[] permutation(int n, SplittableRandom random) {
        int[] order = new int[n];
        for (int i = 0; i < n; i++) order[i] = i;
        for (int i = n - 1; i > 0; i--) {
            int j = random.nextInt(i + 1);
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        return order;
    }
}
