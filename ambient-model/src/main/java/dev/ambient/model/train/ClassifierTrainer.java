package dev.ambient.model.train;

import dev.ambient.kernels.Optimizer;
import dev.ambient.kernels.Tensor;
import dev.ambient.model.nn.Parameters;
import dev.ambient.model.nn.StepContext;
import dev.ambient.model.nn.TensorPool;
import dev.ambient.model.unet.EncoderClassifier;

/**
 * Adam on an {@link EncoderClassifier} with a cross-entropy loss: binary cross-entropy with
 * logits for one logit (target 0 or 1), softmax cross-entropy for several (target the class
 * index), each averaged over the batch. The loss and its gradient are computed on the host
 * from the N x classes logits (a few numbers per sample); everything else stays on the device.
 * A step whose loss is not finite is skipped and counted. Owns Adam's moments.
 */
public final class ClassifierTrainer implements AutoCloseable {

    /**
     * @param learningRate Adam's rate after the warm-up
     * @param rampupImages linear warm-up of the rate over this many images (0: none)
     * @param clipNorm clipping of the gradient by its global norm (0: none)
     */
    public record Options(double learningRate, double rampupImages, float beta1, float beta2, float eps, float clipNorm, long seed) {
        public Options {
            if (!(learningRate > 0) || Double.isInfinite(learningRate)) throw new IllegalArgumentException("learning rate must be positive, got " + learningRate);
            if (!(rampupImages >= 0)) throw new IllegalArgumentException("warm-up must be non-negative, got " + rampupImages);
            if (!(clipNorm >= 0)) throw new IllegalArgumentException("clipNorm = " + clipNorm + " (0 turns clipping off)");
        }

        /**
         * The reference classifier's optimiser (Adam 0.9/0.999/1e-8, clipping at 1) at the given
         * rate; its 1e-4 suits EDM's network, the magnitude-preserving encoder learns at ~1e-3.
         */
        public static Options reference(double learningRate, double rampupImages, long seed) {
            return new Options(learningRate, rampupImages, 0.9f, 0.999f, 1e-8f, 1f, seed);
        }
    }

    /** What a step did: mean loss, the fraction classified right, the gradient norm, whether it was skipped. */
    public record StepStats(long step, double loss, double accuracy, double gradNorm, boolean skipped) {}

    private final EncoderClassifier model;
    private final Options options;
    private final Tensor m, v, sumSquares;
    private long step, updates, imagesSeen, skipped;

    public ClassifierTrainer(EncoderClassifier model, Options options) {
        this.model = model;
        this.options = options;
        long size = model.parameters().trainedSize();
        m = Tensor.zeros(model.device(), size);
        v = Tensor.zeros(model.device(), size);
        sumSquares = Tensor.zeros(model.device(), 1);
    }

    public EncoderClassifier model() {
        return model;
    }

    public long step() {
        return step;
    }

    public long imagesSeen() {
        return imagesSeen;
    }

    /** Steps skipped for a non-finite loss. */
    public long skipped() {
        return skipped;
    }

    /**
     * One step on a host batch: {@code images} NHWC floats (already noisy, masked, ...),
     * {@code sigma} the noise level the classifier is told per sample, {@code targets} per
     * sample (0/1 for a binary classifier, else a class index), class labels or null.
     */
    public StepStats step(float[] images, double[] sigma, int[] classLabels, int[] targets) {
        int n = sigma.length, classes = model.classes(), r = model.config().imgResolution();
        if (targets.length != n) throw new IllegalArgumentException(targets.length + " targets for " + n + " samples");
        TensorPool pool = model.pool();
        model.prepare(true);
        float[] logits;
        double loss = 0;
        int right = 0;
        float[] grad = new float[n * classes];
        try (Tensor x = Tensor.of(model.device(), images, n, r, r, model.config().imgChannels())) {
            StepContext ctx = new StepContext(pool, true, mix(options.seed(), step), false, model.ones(n));
            Tensor out = model.forward(x, sigma, classLabels, ctx);
            logits = out.toArray();
            pool.give(out);
            for (int i = 0; i < n; i++) {
                int t = targets[i];
                if (t < 0 || (classes == 1 ? t > 1 : t >= classes)) throw new IllegalArgumentException("target " + t + " of sample " + i + " for " + classes + " logit(s)");
                if (classes == 1) {
                    double l = logits[i];
                    loss += Math.max(l, 0) - l * t + Math.log1p(Math.exp(-Math.abs(l))); // stable BCE with logits
                    grad[i] = (float) ((sigmoid(l) - t) / n);
                    if ((l > 0) == (t == 1)) right++;
                } else {
                    double max = Double.NEGATIVE_INFINITY;
                    int arg = 0;
                    for (int c = 0; c < classes; c++) {
                        if (logits[i * classes + c] > max) {
                            max = logits[i * classes + c];
                            arg = c;
                        }
                    }
                    double z = 0;
                    for (int c = 0; c < classes; c++) z += Math.exp(logits[i * classes + c] - max);
                    loss += Math.log(z) + max - logits[i * classes + t];
                    for (int c = 0; c < classes; c++) {
                        grad[i * classes + c] = (float) ((Math.exp(logits[i * classes + c] - max) / z - (c == t ? 1 : 0)) / n);
                    }
                    if (arg == t) right++;
                }
            }
            loss /= n;
            try (Tensor g = Tensor.of(model.device(), grad, n, classes)) {
                model.backward(g, ctx);
            }
        }
        step++;
        imagesSeen += n;
        if (!Double.isFinite(loss)) {
            skipped++;
            return new StepStats(step, loss, (double) right / n, Double.NaN, true);
        }
        model.finishBackward();
        Parameters p = model.parameters();
        Optimizer.nanGuard(p.grads());
        Optimizer.sumSquares(p.grads(), false, sumSquares);
        double gradNorm = Math.sqrt(sumSquares.toArray()[0]);
        updates++;
        double lr = options.learningRate() * (options.rampupImages() > 0 ? Math.min(1, imagesSeen / options.rampupImages()) : 1);
        boolean clip = options.clipNorm() > 0;
        Optimizer.adamStep(p.values(), p.grads(), m, v, (float) lr, options.beta1(), options.beta2(), options.eps(), updates,
                clip ? sumSquares : null, clip ? options.clipNorm() : 0f);
        return new StepStats(step, loss, (double) right / n, gradNorm, false);
    }

    public static double sigmoid(double logit) {
        return logit >= 0 ? 1 / (1 + Math.exp(-logit)) : Math.exp(logit) / (1 + Math.exp(logit));
    }

    private static long mix(long seed, long step) {
        long z = seed * 0x9E3779B97F4A7C15L + step * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    @Override
    public void close() {
        m.close();
        v.close();
        sumSquares.close();
    }
}
