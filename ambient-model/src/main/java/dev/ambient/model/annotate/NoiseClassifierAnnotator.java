package dev.ambient.model.annotate;

import dev.ambient.model.data.ImageDataset;
import dev.ambient.model.train.ClassifierTrainer;
import dev.ambient.model.unet.EncoderClassifier;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * The noise-classifier annotation of Ambient-o (spec §1.5–1.6): a classifier learns, at every
 * noise level, to tell noisy clean images from noisy corrupted ones; where it can no longer tell
 * them apart, the corrupted image is as good as a clean one, and that level is its σ_min.
 *
 * <ul>
 * <li>Training: {@code x_t = x + σ z} with {@code ln σ ~ N(P_mean, P_std²)} (the reference:
 * −1.2, 1.2, the σ-first sampler's distribution with every sample admissible), binary
 * cross-entropy with logits against the corruption label (1 = corrupted). Each batch is half
 * clean and half corrupted (drawn with replacement within each group): the reference trains on a
 * balanced set (p_corrupt = 0.5); with the paper's 10 % clean a classifier trained on the raw
 * mix would learn the prior 0.9 and never reach the confusion threshold 0.55.
 * <li>Trajectories: a grid of K noise levels {@code exp(P_mean + P_std n_k)}, {@code n_k}
 * standard normal from the grid seed (the reference: 42), sorted ascending; for each scored
 * image and each level, T noisy copies {@code x + σ_k z_j} are classified, giving the K × T
 * matrix of P(corrupted) the reference stores as {@code "probabilities"}.
 * <li>Decision: {@link FirstConfusionRule} (EMA of span W over the trial means, first level
 * where it drops below 0.5 + ε). The reference's W = 32 is for K = 2048; for a coarser grid
 * {@link #scaledSpan} keeps the same smoothing width in levels.
 * </ul>
 * Like the reference only corrupted images are scored (clean ones get σ_min = 0) unless every
 * image is asked for. Deterministic from the seeds.
 */
public final class NoiseClassifierAnnotator {

    /**
     * @param steps training steps
     * @param batch images per training step (half clean, half corrupted)
     * @param pMean mean of ln σ in training and in the grid (reference −1.2)
     * @param pStd its std (reference 1.2)
     * @param optimizer Adam's settings
     * @param gridSize K, noise levels of the trajectory grid (reference 2048)
     * @param trials T, noisy copies per level (reference 4)
     * @param gridSeed the grid's seed (reference 42)
     * @param evalBatch classifier inputs per inference pass
     * @param scoreAll score clean images too (the paper's sample-dependent reading) instead of giving them 0
     * @param seed training and trajectory noise
     */
    public record Options(int steps, int batch, double pMean, double pStd, ClassifierTrainer.Options optimizer,
                          int gridSize, int trials, long gridSeed, int evalBatch, boolean scoreAll, long seed) {
        public Options {
            if (steps < 0 || batch < 2 || gridSize < 1 || trials < 1 || evalBatch < 1) {
                throw new IllegalArgumentException("need steps >= 0, batch >= 2, grid size, trials and eval batch >= 1");
            }
            if (!(pStd > 0) || !Double.isFinite(pMean)) throw new IllegalArgumentException("need a finite P_mean and a positive P_std");
        }
    }

    /**
     * The outcome: the sorted grid, per dataset sample its trajectory (null where not scored)
     * and σ_min under {@code rule}.
     */
    public record Result(double[] sigmas, double[][][] trajectories, double[] sigmaMin, FirstConfusionRule rule) {

        /**
         * The reference's form: {@code "probabilities"} for scored samples (to go with
         * {@code sigmas.txt}), {@code "annotation": 0} for the others.
         */
        public List<Annotation> trajectoryAnnotations(List<String> names) {
            List<Annotation> out = new ArrayList<>();
            for (int i = 0; i < names.size(); i++) {
                out.add(trajectories[i] == null ? new Annotation.Level(names.get(i), 0) : new Annotation.Trajectory(names.get(i), trajectories[i]));
            }
            return out;
        }

        /** The decided levels, {@code (σ_min, 0)} per sample. */
        public List<Annotation> levelAnnotations(List<String> names) {
            List<Annotation> out = new ArrayList<>();
            for (int i = 0; i < names.size(); i++) out.add(new Annotation.Bounds(names.get(i), sigmaMin[i], 0));
            return out;
        }
    }

    private NoiseClassifierAnnotator() {}

    /** The reference's span W = 32 on 2048 levels, rescaled to a grid of {@code k} levels (at least 1). */
    public static double scaledSpan(int k) {
        return Math.max(1, FirstConfusionRule.DEFAULT.emaSpan() * k / 2048.0);
    }

    /** K levels {@code exp(pMean + pStd n)}, n standard normal from {@code seed}, sorted ascending. */
    public static double[] grid(int k, double pMean, double pStd, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        double[] s = new double[k];
        for (int i = 0; i < k; i++) s[i] = Math.exp(pMean + pStd * random.nextGaussian());
        Arrays.sort(s);
        return s;
    }

    /** Trains {@code model} to output P(corrupted) on noisy images; returns the trainer's last statistics. */
    public static ClassifierTrainer.StepStats train(EncoderClassifier model, ImageDataset data, boolean[] corrupted, Options o,
                                                    Consumer<String> log) {
        int[] clean = indices(corrupted, false), bad = indices(corrupted, true);
        if (clean.length == 0 || bad.length == 0) {
            throw new IllegalArgumentException("the noise classifier needs clean and corrupted samples, got " + clean.length + " clean and "
                    + bad.length + " corrupted");
        }
        SplittableRandom random = new SplittableRandom(o.seed());
        int per = data.imageSize();
        ClassifierTrainer.StepStats last = null;
        double lossSum = 0, accSum = 0;
        int window = 0;
        try (ClassifierTrainer trainer = new ClassifierTrainer(model, o.optimizer())) {
            for (int step = 0; step < o.steps(); step++) {
                int n = o.batch();
                float[] x = new float[n * per];
                double[] sigma = new double[n];
                int[] y = new int[n];
                for (int b = 0; b < n; b++) {
                    y[b] = b % 2;
                    int[] group = y[b] == 1 ? bad : clean;
                    int i = group[random.nextInt(group.length)];
                    data.copyTo(i, x, b * per);
                    sigma[b] = Math.exp(o.pMean() + o.pStd() * random.nextGaussian());
                    addNoise(x, b * per, per, sigma[b], random);
                }
                last = trainer.step(x, sigma, null, y);
                lossSum += last.loss();
                accSum += last.accuracy();
                window++;
                if (log != null && (window == 50 || step == o.steps() - 1)) {
                    log.accept(String.format("classifier step %d/%d: loss %.4f, accuracy %.3f", step + 1, o.steps(), lossSum / window, accSum / window));
                    lossSum = accSum = 0;
                    window = 0;
                }
            }
        }
        return last;
    }

    /**
     * The K × T matrix of P(corrupted) for each image in {@code which} (dataset indices) on the
     * sorted {@code sigmas}; the noise of image i depends only on (seed, i).
     */
    public static double[][][] trajectories(EncoderClassifier model, ImageDataset data, int[] which, double[] sigmas, int trials,
                                            int evalBatch, long seed, Consumer<String> log) {
        model.prepare(false);
        int per = data.imageSize(), k = sigmas.length, rows = k * trials;
        double[][][] out = new double[which.length][][];
        float[] image = new float[per];
        float[] x = new float[evalBatch * per];
        double[] sigma = new double[evalBatch];
        int[] owner = new int[evalBatch], row = new int[evalBatch];
        int filled = 0;
        long started = System.nanoTime(), reported = started;
        for (int w = 0; w < which.length; w++) {
            out[w] = new double[k][trials];
            data.copyTo(which[w], image, 0);
            SplittableRandom random = new SplittableRandom(mix(seed, which[w]));
            for (int r = 0; r < rows; r++) {
                System.arraycopy(image, 0, x, filled * per, per);
                sigma[filled] = sigmas[r / trials];
                addNoise(x, filled * per, per, sigma[filled], random);
                owner[filled] = w;
                row[filled] = r;
                if (++filled == evalBatch) {
                    classify(model, x, sigma, filled, per, out, owner, row, trials);
                    filled = 0;
                }
            }
            long now = System.nanoTime();
            if (log != null && now - reported > 10e9) {
                double done = (w + 1.0) / which.length, elapsed = (now - started) / 1e9;
                log.accept(String.format("trajectories: %d/%d images, %.0f s left", w + 1, which.length, elapsed / done - elapsed));
                reported = now;
            }
        }
        if (filled > 0) classify(model, x, sigma, filled, per, out, owner, row, trials);
        return out;
    }

    private static void classify(EncoderClassifier model, float[] x, double[] sigma, int n, int per, double[][][] out, int[] owner,
                                 int[] row, int trials) {
        float[] images = n * per == x.length ? x : Arrays.copyOf(x, n * per);
        float[] logits = model.logits(images, Arrays.copyOf(sigma, n), null);
        for (int b = 0; b < n; b++) out[owner[b]][row[b] / trials][row[b] % trials] = ClassifierTrainer.sigmoid(logits[b]);
    }

    /**
     * Trains the classifier on {@code data} with its corruption flags, then scores the corrupted
     * samples (or all) and decides their σ_min with {@code rule}.
     */
    public static Result annotate(EncoderClassifier model, ImageDataset data, boolean[] corrupted, Options o, FirstConfusionRule rule,
                                  Consumer<String> log) {
        return annotate(model, data, corrupted, data, corrupted, o, rule, log);
    }

    /**
     * As {@link #annotate(EncoderClassifier, ImageDataset, boolean[], Options, FirstConfusionRule, Consumer)},
     * with the classifier trained on other data: the reference trains it on a separately
     * corrupted copy of the whole clean set at p_corrupt = 0.5 (possible when the corruption is
     * synthetic). With only the annotated set's few clean images, the classifier can learn them
     * by heart and call every other image corrupted even at high noise.
     */
    public static Result annotate(EncoderClassifier model, ImageDataset trainData, boolean[] trainCorrupted, ImageDataset data,
                                  boolean[] corrupted, Options o, FirstConfusionRule rule, Consumer<String> log) {
        if (corrupted.length != data.size()) throw new IllegalArgumentException(data.size() + " samples but " + corrupted.length + " flags");
        if (trainCorrupted.length != trainData.size()) throw new IllegalArgumentException(trainData.size() + " samples but " + trainCorrupted.length + " flags");
        train(model, trainData, trainCorrupted, o, log);
        double[] sigmas = grid(o.gridSize(), o.pMean(), o.pStd(), o.gridSeed());
        int[] which = o.scoreAll() ? indices(new boolean[corrupted.length], false) : indices(corrupted, true);
        double[][][] scored = trajectories(model, data, which, sigmas, o.trials(), o.evalBatch(), o.seed() + 1, log);
        double[][][] all = new double[data.size()][][];
        double[] sigmaMin = new double[data.size()];
        for (int w = 0; w < which.length; w++) {
            all[which[w]] = scored[w];
            sigmaMin[which[w]] = rule.sigmaMin(new Annotation.Trajectory(data.name(which[w]), scored[w]), sigmas);
        }
        return new Result(sigmas, all, sigmaMin, rule);
    }

    static void addNoise(float[] x, int offset, int n, double sigma, SplittableRandom random) {
        for (int k = 0; k < n; k++) x[offset + k] += (float) (sigma * random.nextGaussian());
    }

    static int[] indices(boolean[] flags, boolean value) {
        int count = 0;
        for (boolean f : flags) if (f == value) count++;
        int[] out = new int[count];
        int at = 0;
        for (int i = 0; i < flags.length; i++) if (flags[i] == value) out[at++] = i;
        return out;
    }

    static long mix(long seed, long i) {
        long z = seed * 0x9E3779B97F4A7C15L + (i + 1) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
