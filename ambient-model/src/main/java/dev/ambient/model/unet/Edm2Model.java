package dev.ambient.model.unet;

import dev.ambient.kernels.Device;
import dev.ambient.kernels.Embedding;
import dev.ambient.kernels.MagnitudePreserving;
import dev.ambient.kernels.PerSample;
import dev.ambient.kernels.RandomNumbers;
import dev.ambient.kernels.Tensor;
import dev.ambient.model.Precond;
import dev.ambient.model.nn.MPConv;
import dev.ambient.model.nn.Parameters;
import dev.ambient.model.nn.StepContext;
import dev.ambient.model.nn.TensorPool;

import java.util.ArrayList;
import java.util.List;

/**
 * EDM2's denoiser: the preconditioned UNet with its log-variance head,
 * <pre>
 *   D(x; sigma) = c_skip x + c_out F([c_in x, 1]; ln(sigma) / 4, labels)
 *   u(sigma)    = logvar_linear(mp_fourier(ln(sigma) / 4))          (training's uncertainty)
 * </pre>
 * owning its parameters (one flat buffer with EDM2's names, see {@link Parameters}) and a pool
 * for activations. Not thread-safe.
 *
 * <p>A training step: {@link #prepare}{@code (true)} once, then per micro-batch
 * {@link #forward} and {@link #backward}, then {@link #finishBackward}, after which
 * {@code parameters().grads()} holds the step's gradient. Inference: {@link #prepare}{@code
 * (false)} once after the weights change, then {@link #forward} with a non-training context.
 */
public final class Edm2Model implements AutoCloseable {

    private final UNetConfig config;
    private final Precond precond;
    private final Device device;
    private final Parameters params = new Parameters();
    private final UNet unet;
    private final Parameters.Entry logvarFreqs, logvarPhases;
    private final MPConv logvarLinear;
    private final List<MPConv> convs;
    private final TensorPool pool;

    // per batch size
    private long batch = -1;
    private Tensor ones, onesChannel;
    private float inputCatScale;

    // kept from the forward pass
    private Tensor cOut, cNoise, xIn, labels, logvarFeatures;

    /** The network of {@code config} on {@code device}, initialised as EDM2 does from {@code seed}. */
    public Edm2Model(UNetConfig config, Device device, long seed) {
        this(config, device);
        initialize(seed);
    }

    private Edm2Model(UNetConfig config, Device device) {
        this.config = config;
        this.precond = Precond.EDM;
        this.device = device;
        unet = new UNet(params, config);
        logvarFreqs = params.buffer("logvar_fourier.freqs", config.logvarChannels());
        logvarPhases = params.buffer("logvar_fourier.phases", config.logvarChannels());
        logvarLinear = new MPConv(params, "logvar_linear.weight", config.logvarChannels(), 1, 0);
        convs = new ArrayList<>(unet.convs());
        convs.add(logvarLinear);
        params.allocate(device);
        pool = new TensorPool(device);
    }

    /** A network with unspecified weights, to be loaded from a checkpoint. */
    public static Edm2Model uninitialized(UNetConfig config, Device device) {
        return new Edm2Model(config, device);
    }

    /**
     * EDM2's initialisation: every MPConv weight standard normal, the gains 0 (so the network
     * starts at D = c_skip x), the Fourier buffers drawn as {@link Embedding#mpFourierBuffers}.
     * Counter-based (Philox) from the seed, so the same seed gives the same network anywhere.
     */
    public void initialize(long seed) {
        long stream = 0;
        for (Parameters.Entry e : params.entries()) {
            if (!e.trained()) continue;
            stream++;
            if (e.layout() == Parameters.Layout.SCALAR) {
                e.value().zero();
            } else {
                try (Tensor w = RandomNumbers.normal(device, seed, stream, 0, e.size())) {
                    e.value().copyFrom(e.fromTorch(w.toArray()));
                }
            }
        }
        fourier(unet.fourierFrequencies(), unet.fourierPhases(), seed + 1);
        fourier(logvarFreqs, logvarPhases, seed + 2);
    }

    private void fourier(Parameters.Entry freqs, Parameters.Entry phases, long seed) {
        try (Embedding.FourierBuffers b = Embedding.mpFourierBuffers(device, (int) freqs.size(), seed)) {
            freqs.value().copyFrom(b.freqs());
            phases.value().copyFrom(b.phases());
        }
    }

    public UNetConfig config() {
        return config;
    }

    public Precond precond() {
        return precond;
    }

    public Device device() {
        return device;
    }

    public Parameters parameters() {
        return params;
    }

    public TensorPool pool() {
        return pool;
    }

    /** N ones on the device, for the per-sample kernels of a batch of N. */
    public Tensor ones(long n) {
        ensureBatch(n);
        return ones;
    }

    /**
     * Normalises every MPConv weight for the coming passes; {@code force} (training) first
     * forces the stored weights to unit norm per filter, as EDM2 does at each training step.
     */
    public void prepare(boolean force) {
        for (MPConv conv : convs) conv.prepare(force);
    }

    /** The denoised batch and the log-variance (pool tensors; give both back to {@link #pool()}). */
    public record Output(Tensor denoised, Tensor logvar) {}

    /**
     * D(x; sigma) for {@code x [N, R, R, C]} with per-sample sigma (and labels: N class indices,
     * or null for an unconditional network or a zero label vector). With a training context the
     * pass keeps what {@link #backward} needs, and x must stay alive until then. The logvar is
     * computed only when {@code withLogvar}.
     */
    public Output forward(Tensor x, double[] sigma, int[] classes, boolean withLogvar, StepContext ctx) {
        long n = x.dim(0);
        if (x.rank() != 4 || x.dim(1) != config.imgResolution() || x.dim(2) != config.imgResolution()
                || x.dim(3) != config.imgChannels()) {
            throw new IllegalArgumentException("Edm2Model.forward: x " + java.util.Arrays.toString(x.shape()) + " must be [N, "
                    + config.imgResolution() + ", " + config.imgResolution() + ", " + config.imgChannels() + "]");
        }
        if (sigma.length != n) throw new IllegalArgumentException("Edm2Model.forward: " + sigma.length + " sigmas for " + n + " samples");
        if (classes != null && classes.length != n) {
            throw new IllegalArgumentException("Edm2Model.forward: " + classes.length + " labels for " + n + " samples");
        }
        ensureBatch(n);
        float[] cIn = new float[(int) n], cSkip = new float[(int) n], cOutHost = new float[(int) n], cNoiseHost = new float[(int) n];
        for (int i = 0; i < n; i++) {
            double s = sigma[i];
            if (!(s > 0) || !Double.isFinite(s)) throw new IllegalArgumentException("Edm2Model.forward: sigma[" + i + "] = " + s + " must be positive");
            cIn[i] = (float) (precond.cIn(s) / inputCatScale);
            cSkip[i] = (float) precond.cSkip(s);
            cOutHost[i] = (float) precond.cOut(s);
            cNoiseHost[i] = (float) precond.cNoise(s);
        }
        Tensor cInT = pool.take(n).copyFrom(cIn);
        Tensor cSkipT = pool.take(n).copyFrom(cSkip);
        cOut = pool.take(n).copyFrom(cOutHost);
        cNoise = pool.take(n).copyFrom(cNoiseHost);
        labels = labelRows(classes, n);
        // [c_in x, 1] through mp_cat: x is pre-divided by mp_cat's factor for its part and the
        // constant channel holds the inverse of the factor for its own
        Tensor scaled = PerSample.scale(cInT, x, pool.take(x.shape()));
        xIn = MagnitudePreserving.cat(scaled, onesChannel, 0.5f, pool.take(n, x.dim(1), x.dim(2), x.dim(3) + 1));
        pool.give(scaled);
        pool.give(cInT);
        Tensor f = unet.forward(xIn, cNoise, labels, ctx);
        Tensor denoised = PerSample.axpby(cOut, f, cSkipT, x, pool.take(x.shape()));
        pool.give(f);
        pool.give(cSkipT);
        Tensor logvar = null;
        if (withLogvar) {
            logvarFeatures = Embedding.mpFourier(cNoise, logvarFreqs.value(), logvarPhases.value(), pool.take(n, config.logvarChannels()));
            logvar = logvarLinear.forward(logvarFeatures, pool.take(n, 1));
        }
        if (!ctx.training()) releaseForward();
        return new Output(denoised, logvar);
    }

    /**
     * Given the gradients of D (consumed) and of the logvar ({@code [N]} or {@code [N, 1]}, or
     * null when the forward pass had none; not consumed), accumulates the W_hat gradients.
     */
    public void backward(Tensor dDenoised, Tensor dLogvar, StepContext ctx) {
        if (xIn == null) throw new IllegalStateException("Edm2Model.backward without a training forward pass");
        Tensor df = PerSample.scale(cOut, dDenoised, dDenoised);
        unet.backward(df, ctx);
        if (logvarFeatures != null) {
            if (dLogvar == null) throw new IllegalArgumentException("Edm2Model.backward: the forward pass computed a logvar; its gradient is needed");
            logvarLinear.backward(logvarFeatures, dLogvar.reshape(dLogvar.dim(0), 1), ctx.accumulate(), null, 0f);
        }
        releaseForward();
    }

    /** Turns the accumulated W_hat gradients into the parameters' gradients ({@code parameters().grads()}). */
    public void finishBackward() {
        for (MPConv conv : convs) conv.finishBackward();
    }

    private void releaseForward() {
        pool.give(cOut);
        pool.give(cNoise);
        pool.give(xIn);
        pool.give(labels);
        pool.give(logvarFeatures);
        cOut = cNoise = xIn = labels = logvarFeatures = null;
    }

    /** One-hot rows times sqrt(label_dim), EDM2's label input (zeros for a missing label). */
    private Tensor labelRows(int[] classes, long n) {
        int dim = config.labelDim();
        if (dim == 0) {
            if (classes != null) throw new IllegalArgumentException("Edm2Model.forward: labels given to an unconditional network");
            return null;
        }
        float[] rows = new float[Math.toIntExact(n * dim)];
        if (classes != null) {
            for (int i = 0; i < n; i++) {
                if (classes[i] < 0 || classes[i] >= dim) {
                    throw new IllegalArgumentException("Edm2Model.forward: label " + classes[i] + " of sample " + i + " is not in [0, " + dim + ")");
                }
                rows[i * dim + classes[i]] = (float) Math.sqrt(dim);
            }
        }
        return pool.take(n, dim).copyFrom(rows);
    }

    private void ensureBatch(long n) {
        if (n == batch) return;
        if (ones != null) {
            ones.close();
            onesChannel.close();
        }
        int r = config.imgResolution(), c = config.imgChannels();
        ones = Tensor.allocate(device, n).copyFrom(filled((int) n, 1f));
        // mp_cat(a, b, 1/2) multiplies a by s/(2 sqrt(Ca)) and b by s/2, s = sqrt(2 (Ca + 1))
        double s = Math.sqrt((c + 1) / 0.5);
        inputCatScale = (float) (s * 0.5 / Math.sqrt(c));
        onesChannel = Tensor.allocate(device, n, r, r, 1).copyFrom(filled(Math.toIntExact(n * r * r), (float) (1 / (s * 0.5))));
        batch = n;
    }

    private static float[] filled(int n, float v) {
        float[] a = new float[n];
        java.util.Arrays.fill(a, v);
        return a;
    }

    @Override
    public void close() {
        for (MPConv conv : convs) conv.close();
        pool.close();
        params.close();
        if (ones != null) {
            ones.close();
            onesChannel.close();
        }
    }
}
