package dev.ambient.model.annotate;

import dev.ambient.model.data.ImageDataset;
import dev.ambient.model.train.ClassifierTrainer;
import dev.ambient.model.unet.EncoderClassifier;

import java.util.ArrayList;
import java.util.List;
import java.util.SortedMap;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * The crop-classifier annotation of Ambient-o (spec §1.7): out-of-distribution images whose
 * small crops look like the target distribution may teach the model at low noise, where the
 * denoiser only looks at a small neighbourhood.
 *
 * <ul>
 * <li>Training, one classifier per patch size c: each sample (half target, label 1; half OOD,
 * label 0) is noised, {@code x + σ z} with {@code ln σ ~ N(P_mean, P_std²)}, and everything
 * outside a random c × c window is set to 0 (mid-grey). The window is drawn per sample. The
 * reference meant this masking but wrote the mask where its classifier loss never reads it, so
 * its "crop" classifiers saw whole images (spec §1.17, defect 5); here the masked image is the
 * classifier's input.
 * <li>Annotation of each OOD image: tiles on a stride-c grid from the top-left corner (border
 * tiles truncated); each tile's input is the image with everything outside the tile set to 0,
 * classified at σ = 0.001 (the reference's level, no noise added); P(target) per tile is stored
 * as {@code crop_predictions_<c>}.
 * <li>Decision: {@link CropRule} (the largest c whose mean P(target) passes the threshold sets
 * σ_max through the patch-size table; σ_min = 300, never at high noise).
 * </ul>
 */
public final class CropClassifierAnnotator {

    /** The noise level at which tiles are classified, the reference's. */
    public static final double EVAL_SIGMA = 0.001;

    /**
     * @param patchSizes the c to train a classifier for (each at most the image size)
     * @param steps training steps per classifier
     * @param batch images per step (half target, half OOD)
     */
    public record Options(int[] patchSizes, int steps, int batch, double pMean, double pStd, ClassifierTrainer.Options optimizer,
                          int evalBatch, long seed) {
        public Options {
            if (patchSizes.length == 0) throw new IllegalArgumentException("no patch sizes");
            for (int c : patchSizes) if (c < 1) throw new IllegalArgumentException("patch size " + c + " must be positive");
            if (steps < 0 || batch < 2 || evalBatch < 1) throw new IllegalArgumentException("need steps >= 0, batch >= 2, eval batch >= 1");
            patchSizes = patchSizes.clone();
        }
    }

    private CropClassifierAnnotator() {}

    /** Sets everything outside rows [y0, y1) and columns [x0, x1) of one HWC image at {@code offset} to 0. */
    static void maskOutside(float[] x, int offset, int h, int w, int c, int y0, int y1, int x0, int x1) {
        for (int y = 0; y < h; y++) {
            for (int xx = 0; xx < w; xx++) {
                if (y >= y0 && y < y1 && xx >= x0 && xx < x1) continue;
                int p = offset + (y * w + xx) * c;
                for (int ch = 0; ch < c; ch++) x[p + ch] = 0f;
            }
        }
    }

    /** Trains {@code model} to output P(target) on noisy c × c crops (everything else zero). */
    public static ClassifierTrainer.StepStats train(EncoderClassifier model, ImageDataset data, boolean[] ood, int patch, Options o,
                                                    Consumer<String> log) {
        int[] target = NoiseClassifierAnnotator.indices(ood, false), other = NoiseClassifierAnnotator.indices(ood, true);
        if (target.length == 0 || other.length == 0) {
            throw new IllegalArgumentException("the crop classifier needs target and out-of-distribution images, got " + target.length + " and " + other.length);
        }
        int h = data.height(), w = data.width(), ch = data.channels(), per = data.imageSize();
        if (patch > Math.min(h, w)) throw new IllegalArgumentException("patch size " + patch + " exceeds the " + h + "x" + w + " images");
        SplittableRandom random = new SplittableRandom(NoiseClassifierAnnotator.mix(o.seed(), patch));
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
                    int[] group = y[b] == 1 ? target : other;
                    data.copyTo(group[random.nextInt(group.length)], x, b * per);
                    sigma[b] = Math.exp(o.pMean() + o.pStd() * random.nextGaussian());
                    NoiseClassifierAnnotator.addNoise(x, b * per, per, sigma[b], random);
                    int y0 = random.nextInt(h - patch + 1), x0 = random.nextInt(w - patch + 1);
                    maskOutside(x, b * per, h, w, ch, y0, y0 + patch, x0, x0 + patch);
                }
                last = trainer.step(x, sigma, null, y);
                lossSum += last.loss();
                accSum += last.accuracy();
                window++;
                if (log != null && (window == 50 || step == o.steps() - 1)) {
                    log.accept(String.format("crop classifier %d: step %d/%d: loss %.4f, accuracy %.3f", patch, step + 1, o.steps(),
                            lossSum / window, accSum / window));
                    lossSum = accSum = 0;
                    window = 0;
                }
            }
        }
        return last;
    }

    /** P(target) of each stride-c tile (row-major over the tile grid) of image {@code i}. */
    public static double[] tileProbabilities(EncoderClassifier model, ImageDataset data, int i, int patch) {
        int h = data.height(), w = data.width(), ch = data.channels(), per = data.imageSize();
        int rows = (h + patch - 1) / patch, cols = (w + patch - 1) / patch, n = rows * cols;
        float[] image = data.image(i);
        float[] x = new float[n * per];
        for (int t = 0; t < n; t++) {
            int y0 = (t / cols) * patch, x0 = (t % cols) * patch;
            System.arraycopy(image, 0, x, t * per, per);
            maskOutside(x, t * per, h, w, ch, y0, Math.min(h, y0 + patch), x0, Math.min(w, x0 + patch));
        }
        double[] sigma = new double[n];
        java.util.Arrays.fill(sigma, EVAL_SIGMA);
        float[] logits = model.logits(x, sigma, null);
        double[] p = new double[n];
        for (int t = 0; t < n; t++) p[t] = ClassifierTrainer.sigmoid(logits[t]);
        return p;
    }

    /**
     * Trains one classifier per patch size (each a fresh network from {@code network}) and
     * annotates the OOD images: {@link Annotation.Crops} for each, {@code (0, 0)} for the target
     * images. Returns the annotations in dataset order.
     */
    public static List<Annotation> annotate(Supplier<EncoderClassifier> network, ImageDataset data, boolean[] ood, Options o,
                                            Consumer<String> log) {
        if (ood.length != data.size()) throw new IllegalArgumentException(data.size() + " samples but " + ood.length + " flags");
        List<SortedMap<Integer, double[]>> predictions = new ArrayList<>();
        for (int i = 0; i < data.size(); i++) predictions.add(ood[i] ? new TreeMap<>() : null);
        for (int patch : o.patchSizes()) {
            try (EncoderClassifier model = network.get()) {
                train(model, data, ood, patch, o, log);
                model.prepare(false);
                for (int i = 0; i < data.size(); i++) {
                    if (ood[i]) predictions.get(i).put(patch, tileProbabilities(model, data, i, patch));
                }
            }
        }
        List<Annotation> out = new ArrayList<>();
        for (int i = 0; i < data.size(); i++) {
            out.add(ood[i] ? new Annotation.Crops(data.name(i), predictions.get(i)) : new Annotation.Bounds(data.name(i), 0, 0));
        }
        return out;
    }
}
