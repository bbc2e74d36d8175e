package dev.ambient.model.train;

import dev.ambient.kernels.AmbientLoss;
import dev.ambient.kernels.Optimizer;
import dev.ambient.kernels.Tensor;
import dev.ambient.model.nn.Parameters;
import dev.ambient.model.nn.StepContext;
import dev.ambient.model.nn.TensorPool;
import dev.ambient.model.unet.Edm2Model;

import java.util.ArrayList;
import java.util.List;

/**
 * The training step of an {@link Edm2Model} with the Ambient loss: for each micro-batch, the
 * fused noising ({@code x_tn = x + sigma_tn z_i}, {@code x_t = x_tn + sqrt(sigma_t^2 -
 * sigma_tn^2) eps}), the forward pass, the fused loss and its gradient, the backward pass;
 * then the NaN/Inf guard over the gradient, clipping by global norm, Adam with the learning-rate
 * schedule, and every EMA. Gradients of the micro-batches add up, each sample weighted
 * 1 / (images in the step), so k micro-batches of N equal one batch of k N.
 *
 * <p>Owns the optimizer state (Adam's moments) and the EMA copies of the weights.
 */
public final class Trainer implements AutoCloseable {

    /** Adam and the rest of the step's settings. */
    public record Options(LearningRateSchedule learningRate, float beta1, float beta2, float eps, float clipNorm,
                          List<EmaSchedule> emas, boolean learnedLogvar, long seed) {
        public Options {
            if (clipNorm < 0) throw new IllegalArgumentException("clipNorm = " + clipNorm + " (0 turns clipping off)");
            emas = List.copyOf(emas);
        }

        /** EDM2's recipe: Adam (0.9, 0.99, 1e-8), no clipping, power-function EMAs of std 0.05 and 0.10, the logvar head. */
        public static Options edm2(LearningRateSchedule lr, long seed) {
            return new Options(lr, 0.9f, 0.99f, 1e-8f, 0f,
                    List.of(EmaSchedule.powerFunction(0.05), EmaSchedule.powerFunction(0.10)), true, seed);
        }
    }

    /**
     * What a step did: the mean loss per sample and each sample's loss (micro-batches in order),
     * the gradient's norm before clipping, the non-finite gradient elements zeroed, the rate,
     * and whether the update was skipped because the loss was not finite.
     */
    public record StepStats(long step, double loss, double[] sampleLosses, double gradNorm, long nonFinite,
                            double learningRate, boolean skipped) {}

    private final Edm2Model model;
    private final Options options;
    private final Tensor m, v, sumSquares;
    private final List<Tensor> emas = new ArrayList<>();
    private long step;       // steps taken, skipped ones included (they key the step's noise)
    private long updates;    // Adam updates applied (its bias correction counts these)
    private long imagesSeen;

    public Trainer(Edm2Model model, Options options) {
        this.model = model;
        this.options = options;
        Parameters p = model.parameters();
        m = Tensor.zeros(model.device(), p.trainedSize());
        v = Tensor.zeros(model.device(), p.trainedSize());
        sumSquares = Tensor.zeros(model.device(), 1);
        for (int i = 0; i < options.emas().size(); i++) {
            emas.add(Tensor.allocate(model.device(), p.trainedSize()).copyFrom(p.values()));
        }
    }

    public Edm2Model model() {
        return model;
    }

    /** Steps taken, including those skipped for a non-finite loss. */
    public long step() {
        return step;
    }

    /** Optimizer updates applied (steps not skipped). */
    public long updates() {
        return updates;
    }

    public long imagesSeen() {
        return imagesSeen;
    }

    /** The EMA weights of schedule k (flat, at the offsets of the model's parameters). */
    public Tensor ema(int k) {
        return emas.get(k);
    }

    /** Number of EMAs kept. */
    public int emaCount() {
        return emas.size();
    }

    /** Adam's first and second moments (flat), for checkpoints. */
    public Tensor adamM() {
        return m;
    }

    public Tensor adamV() {
        return v;
    }

    /** Restores the counters of a resumed run (the tensors are restored through their accessors). */
    public void restoreProgress(long step, long updates, long imagesSeen) {
        if (step < 0 || updates < 0 || updates > step || imagesSeen < 0) {
            throw new IllegalArgumentException("inconsistent progress: step " + step + ", updates " + updates + ", images " + imagesSeen);
        }
        this.step = step;
        this.updates = updates;
        this.imagesSeen = imagesSeen;
    }

    /** One optimizer step over the given micro-batches (their gradients accumulate). */
    public StepStats step(List<TrainingBatch> microBatches) {
        return step(microBatches, -1);
    }

    /**
     * As {@link #step(List)}, with this step's fresh noise drawn from {@code noiseSeed} instead of
     * from (seed, step): the same seed at every step trains on one fixed noisy batch (a
     * memorisation check); {@code -1} means the default.
     */
    public StepStats step(List<TrainingBatch> microBatches, long noiseSeed) {
        if (microBatches.isEmpty()) throw new IllegalArgumentException("a step needs at least one micro-batch");
        int total = 0;
        for (TrainingBatch b : microBatches) total += b.size();
        TensorPool pool = model.pool();
        model.prepare(true);
        double lossSum = 0;
        double[] losses = new double[total];
        int at = 0;
        for (int i = 0; i < microBatches.size(); i++) {
            TrainingBatch b = microBatches.get(i);
            long stepSeed = noiseSeed == -1 ? mix(options.seed(), step, i) : mix(noiseSeed, 0, i);
            lossSum += forwardBackward(b, i, stepSeed, 1.0 / total, pool, losses, at);
            at += b.size();
        }
        Parameters p = model.parameters();
        if (!Double.isFinite(lossSum)) { // EDM2 would zero the gradient; a step from a NaN loss teaches nothing, so skip it
            step++;
            imagesSeen += total;
            return new StepStats(step, lossSum / total, losses, Double.NaN, 0, 0, true);
        }
        model.finishBackward();
        long nonFinite = Optimizer.nanGuard(p.grads());
        Optimizer.sumSquares(p.grads(), false, sumSquares);
        double gradNorm = Math.sqrt(sumSquares.toArray()[0]);
        step++;
        updates++;
        double lr = options.learningRate().at(imagesSeen, total);
        Optimizer.adamStep(p.values(), p.grads(), m, v, (float) lr, options.beta1(), options.beta2(), options.eps(), updates,
                options.clipNorm() > 0 ? sumSquares : null, options.clipNorm() > 0 ? options.clipNorm() : 0f);
        imagesSeen += total;
        for (int k = 0; k < emas.size(); k++) {
            Optimizer.emaUpdate(p.values(), emas.get(k), (float) options.emas().get(k).beta(imagesSeen, total));
        }
        return new StepStats(step, lossSum / total, losses, gradNorm, nonFinite, lr, false);
    }

    /** Noising, forward, loss, backward for one micro-batch; returns the sum of its per-sample losses. */
    private double forwardBackward(TrainingBatch b, int index, long stepSeed, double scale, TensorPool pool, double[] losses,
                                   int at) {
        Tensor x = b.images();
        int n = b.size();
        Tensor sigmaT = pool.take(n).copyFrom(toFloats(b.sigmaT()));
        Tensor sigmaTn = pool.take(n).copyFrom(toFloats(b.sigmaTn()));
        Tensor xTn = pool.take(x.shape()), xT = pool.take(x.shape());
        AmbientLoss.noising(x, sigmaT, sigmaTn, b.sampleIds(), options.seed(), stepSeed, xTn, xT);
        StepContext ctx = new StepContext(pool, true, stepSeed ^ 0x5DEECE66DL, index > 0, model.ones(n));
        Edm2Model.Output out = model.forward(xT, b.sigmaT(), b.labels(), options.learnedLogvar(), ctx);
        Tensor loss = pool.take(n);
        Tensor gradX0 = pool.take(x.shape());
        Tensor logvar = out.logvar() == null ? null : out.logvar().reshape(n);
        Tensor gradLogvar = logvar == null ? null : pool.take(n);
        AmbientLoss.loss(out.denoised(), xT, xTn, sigmaT, sigmaTn, logvar, b.mask(), (float) model.precond().sigmaData(),
                (float) scale, loss, gradX0, gradLogvar);
        double sum = 0;
        float[] perSample = loss.toArray();
        for (int i = 0; i < n; i++) {
            losses[at + i] = perSample[i];
            sum += perSample[i];
        }
        pool.give(out.denoised());
        model.backward(gradX0, gradLogvar, ctx);
        for (Tensor t : new Tensor[] {out.logvar(), gradLogvar, loss, xT, xTn, sigmaT, sigmaTn}) pool.give(t);
        return sum;
    }

    /** A seed for (run, step, micro-batch), mixed so neighbouring steps draw unrelated noise. */
    static long mix(long seed, long step, int microBatch) {
        long z = seed * 0x9E3779B97F4A7C15L + step * 0xBF58476D1CE4E5B9L + microBatch * 0x94D049BB133111EBL;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    private static float[] toFloats(double[] values) {
        float[] f = new float[values.length];
        for (int i = 0; i < f.length; i++) f[i] = (float) values[i];
        return f;
    }

    @Override
    public void close() {
        m.close();
        v.close();
        sumSquares.close();
        for (Tensor t : emas) t.close();
    }
}
