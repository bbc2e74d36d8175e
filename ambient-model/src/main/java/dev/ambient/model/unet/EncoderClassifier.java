package dev.ambient.model.unet;

import dev.ambient.kernels.Device;
import dev.ambient.kernels.Embedding;
import dev.ambient.kernels.Gemm;
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
import java.util.Arrays;
import java.util.List;

/**
 * A noise-conditional image classifier: the encoder half of EDM2's UNet with a classification
 * head, the network Ambient-o's annotators train (spec §1.5, §1.7),
 * <pre>
 *   h      = encoder([c_in x, 1]; c_noise = ln(sigma) / 4, labels)     (EDM2's enc.* modules and embedding)
 *   logits = head(mean over pixels of h, gain = head.gain) + head.bias  (an MPConv fully connected layer)
 * </pre>
 * The reference's classifier (EDMPrecondCLS) is the same construction over EDM's DDPM++ encoder:
 * input {@code c_in x}, {@code c_noise = ln(sigma)/4}, global average pooling of the last encoder
 * output and a linear layer with a bias to one logit. Here the encoder is EDM2's
 * (magnitude-preserving, with the constant input channel), the linear layer an MPConv whose
 * unit-norm rows get a learned scalar gain (the logits' scale, which forced weight normalisation
 * would otherwise pin), and the bias is kept. Parameter names follow EDM2's {@code state_dict}
 * ({@code unet.emb_*}, {@code unet.enc.*}) plus {@code head.weight}, {@code head.gain} and
 * {@code head.bias}.
 *
 * <p>Use as {@link Edm2Model}: {@link #prepare} once per step (forcing the weights to unit norm
 * in training), per micro-batch {@link #forward} then {@link #backward}, then
 * {@link #finishBackward}; {@code parameters().grads()} then holds the step's gradient. The
 * input's gradient is not computed. Not thread-safe.
 */
public final class EncoderClassifier implements AutoCloseable {

    private final UNetConfig config;
    private final int classes;
    private final Precond precond = Precond.EDM;
    private final Device device;
    private final Parameters params = new Parameters();
    private final Parameters.Entry freqs, phases, headGain, headBias;
    private final MPConv embNoise, embLabel, inConv, head;
    private final List<Block> encoder = new ArrayList<>(); // null stands for inConv
    private final List<MPConv> convs = new ArrayList<>();
    private final TensorPool pool;

    // per batch size
    private long batch = -1;
    private long pooledPixels = -1;
    private Tensor ones, onesChannel, average;
    private float inputCatScale;

    // kept from the forward pass
    private Tensor xIn, cNoise, labels, fourier, embPre, emb, pooled;
    private final List<Tensor> encOut = new ArrayList<>();

    /** A classifier over images of {@code config}'s shape into {@code classes} logits (1: binary), initialised from {@code seed}. */
    public EncoderClassifier(UNetConfig config, int classes, Device device, long seed) {
        if (classes < 1) throw new IllegalArgumentException("a classifier needs at least one logit, got " + classes);
        this.config = config;
        this.classes = classes;
        this.device = device;
        int cemb = config.embChannels(), cnoise = config.noiseChannels();
        freqs = params.buffer("unet.emb_fourier.freqs", cnoise);
        phases = params.buffer("unet.emb_fourier.phases", cnoise);
        embNoise = add(new MPConv(params, "unet.emb_noise.weight", cnoise, cemb, 0));
        embLabel = config.labelDim() > 0 ? add(new MPConv(params, "unet.emb_label.weight", config.labelDim(), cemb, 0)) : null;
        MPConv first = null;
        long stream = 0;
        for (UNetConfig.BlockSpec b : config.encoder()) {
            if (b.resample().equals("conv")) {
                first = add(new MPConv(params, "unet." + b.name() + ".weight", b.in(), b.out(), 3));
                encoder.add(null);
            } else {
                encoder.add(new Block(params, config, b, cemb, stream++, convs));
            }
        }
        inConv = first;
        int last = config.encoder().getLast().out();
        headGain = params.parameter("head.gain", Parameters.Layout.SCALAR);
        head = add(new MPConv(params, "head.weight", last, classes, 0).withGain(headGain));
        headBias = params.parameter("head.bias", Parameters.Layout.PLAIN, classes);
        params.allocate(device);
        pool = new TensorPool(device);
        initialize(seed);
    }

    private MPConv add(MPConv conv) {
        convs.add(conv);
        return conv;
    }

    /**
     * EDM2's initialisation for the encoder (weights standard normal, gains 0, Fourier buffers
     * from the seed); the head's gain starts at 1 and its bias at 0, so the first logits are
     * already informative and the head's weight gets a gradient from the first step.
     */
    public void initialize(long seed) {
        long stream = 0;
        for (Parameters.Entry e : params.entries()) {
            if (!e.trained()) continue;
            stream++;
            if (e.layout() == Parameters.Layout.SCALAR || e == headBias) {
                e.value().zero();
            } else {
                try (Tensor w = RandomNumbers.normal(device, seed, stream, 0, e.size())) {
                    e.value().copyFrom(e.fromTorch(w.toArray()));
                }
            }
        }
        headGain.value().copyFrom(new float[] {1f});
        try (Embedding.FourierBuffers b = Embedding.mpFourierBuffers(device, (int) freqs.size(), seed + 1)) {
            freqs.value().copyFrom(b.freqs());
            phases.value().copyFrom(b.phases());
        }
    }

    public UNetConfig config() {
        return config;
    }

    public int classes() {
        return classes;
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

    /** N ones on the device, for the step context of a batch of N. */
    public Tensor ones(long n) {
        ensureBatch(n);
        return ones;
    }

    /** Normalises every MPConv weight; {@code force} (training) first forces the stored weights to unit norm. */
    public void prepare(boolean force) {
        for (MPConv conv : convs) conv.prepare(force);
    }

    /**
     * The logits {@code [N, classes]} (a pool tensor; give it back to {@link #pool()}) of
     * {@code x [N, R, R, C]} at per-sample noise levels {@code sigma} (x already noisy: the
     * network only scales it by c_in), with labels (N class indices, or null for an
     * unconditional network). With a training context the pass keeps what {@link #backward}
     * needs, and x must stay alive until then.
     */
    public Tensor forward(Tensor x, double[] sigma, int[] classLabels, StepContext ctx) {
        Tensor pooledOut = encode(x, sigma, classLabels, ctx);
        long n = x.dim(0), c = pooledOut.dim(2);
        Tensor logits = head.forward(pooledOut.reshape(n, c), pool.take(n, classes));
        Gemm.matmul(ones.reshape(n, 1), false, headBias.value().reshape(1, classes), false, 1f, 1f, logits);
        if (!ctx.training()) release();
        return logits;
    }

    /**
     * The penultimate features of a host batch: the pooled last encoder output, {@code [N * C]}
     * with C the encoder's last width ({@link #featureDim}), at the given noise levels. These
     * are what a Fréchet distance in the classifier's features compares. Call
     * {@link #prepare}{@code (false)} after the weights last changed.
     */
    public float[] features(float[] images, double[] sigma, int[] classLabels) {
        int n = sigma.length, r = config.imgResolution();
        try (Tensor x = Tensor.of(device, images, n, r, r, config.imgChannels())) {
            StepContext ctx = new StepContext(pool, false, 0, false, ones(n));
            float[] out = encode(x, sigma, classLabels, ctx).toArray();
            release();
            return out;
        }
    }

    /** Width of {@link #features}' rows. */
    public int featureDim() {
        return config.encoder().getLast().out();
    }

    /** Everything up to the pooled features {@code [N, 1, C]}, kept in {@link #pooled}. */
    private Tensor encode(Tensor x, double[] sigma, int[] classLabels, StepContext ctx) {
        long n = x.dim(0);
        if (x.rank() != 4 || x.dim(1) != config.imgResolution() || x.dim(2) != config.imgResolution()
                || x.dim(3) != config.imgChannels()) {
            throw new IllegalArgumentException("EncoderClassifier.forward: x " + Arrays.toString(x.shape()) + " must be [N, "
                    + config.imgResolution() + ", " + config.imgResolution() + ", " + config.imgChannels() + "]");
        }
        if (sigma.length != n) throw new IllegalArgumentException("EncoderClassifier.forward: " + sigma.length + " sigmas for " + n + " samples");
        if (classLabels != null && classLabels.length != n) {
            throw new IllegalArgumentException("EncoderClassifier.forward: " + classLabels.length + " labels for " + n + " samples");
        }
        if (xIn != null) throw new IllegalStateException("EncoderClassifier.forward: the previous training pass has not run backward");
        ensureBatch(n);
        float[] cIn = new float[(int) n], cNoiseHost = new float[(int) n];
        for (int i = 0; i < n; i++) {
            double s = sigma[i];
            if (!(s > 0) || !Double.isFinite(s)) throw new IllegalArgumentException("EncoderClassifier.forward: sigma[" + i + "] = " + s + " must be positive");
            cIn[i] = (float) (precond.cIn(s) / inputCatScale);
            cNoiseHost[i] = (float) precond.cNoise(s);
        }
        labels = labelRows(classLabels, n);
        Tensor cInT = pool.take(n).copyFrom(cIn);
        cNoise = pool.take(n).copyFrom(cNoiseHost);
        // [c_in x, 1] through mp_cat, as Edm2Model builds its input
        Tensor scaled = PerSample.scale(cInT, x, pool.take(x.shape()));
        xIn = MagnitudePreserving.cat(scaled, onesChannel, 0.5f, pool.take(n, x.dim(1), x.dim(2), x.dim(3) + 1));
        pool.give(scaled);
        pool.give(cInT);

        fourier = Embedding.mpFourier(cNoise, freqs.value(), phases.value(), pool.take(n, config.noiseChannels()));
        embPre = embNoise.forward(fourier, pool.take(n, config.embChannels()));
        if (embLabel != null) {
            Tensor l = embLabel.forward(labels, pool.take(n, config.embChannels()));
            MagnitudePreserving.sum(embPre, l, (float) config.labelBalance(), embPre);
            pool.give(l);
        }
        emb = MagnitudePreserving.silu(embPre, pool.take(n, config.embChannels()));
        Tensor h = xIn;
        for (Block block : encoder) {
            h = block == null ? inConv.forward(h, pool.take(n, h.dim(1), h.dim(2), inConv.out())) : block.forward(h, emb, ctx);
            encOut.add(h);
        }
        // global average pooling as a batched product: [N, 1, HW] (all 1/HW) times [N, HW, C]
        long pixels = h.dim(1) * h.dim(2), c = h.dim(3);
        ensureAverage(n, pixels);
        pooled = pool.take(n, 1, c);
        Gemm.matmul(average, false, h.reshape(n, pixels, c), false, 1f, 0f, pooled);
        return pooled;
    }

    /** Given the logits' gradient {@code [N, classes]} (not consumed), accumulates the W_hat gradients and the bias's. */
    public void backward(Tensor dLogits, StepContext ctx) {
        if (xIn == null) throw new IllegalStateException("EncoderClassifier.backward without a training forward pass");
        long n = xIn.dim(0);
        boolean acc = ctx.accumulate();
        if (dLogits.size() != n * classes) {
            throw new IllegalArgumentException("EncoderClassifier.backward: dLogits " + Arrays.toString(dLogits.shape()) + " for " + n + " x " + classes + " logits");
        }
        Tensor dl = dLogits.reshape(n, classes);
        Gemm.matmul(ones.reshape(n, 1), true, dl, false, 1f, acc ? 1f : 0f, headBias.grad().reshape(1, classes));
        long c = pooled.dim(2);
        Tensor dPooled = pool.take(n, 1, c);
        head.backward(pooled.reshape(n, c), dl, acc, dPooled.reshape(n, c), 0f);
        pool.give(pooled);
        pooled = null;
        Tensor last = encOut.getLast();
        Tensor d = pool.take(last.shape());
        Gemm.matmul(average, true, dPooled, false, 1f, 0f, d.reshape(n, last.dim(1) * last.dim(2), c));
        pool.give(dPooled);
        Tensor dEmb = pool.takeZeros(emb.shape());
        for (int k = encoder.size() - 1; k >= 0; k--) {
            Block block = encoder.get(k);
            if (block == null) {
                inConv.backward(xIn, d, acc, null, 0f);
                pool.give(d);
            } else {
                d = block.backward(d, emb, dEmb, ctx);
            }
            pool.give(encOut.get(k));
        }
        encOut.clear();
        MagnitudePreserving.siluBackward(embPre, dEmb, dEmb);
        if (embLabel != null) {
            Tensor dLabel = pool.take(dEmb.shape());
            MagnitudePreserving.sumBackward(dEmb, (float) config.labelBalance(), dEmb, dLabel);
            embLabel.backward(labels, dLabel, acc, null, 0f);
            pool.give(dLabel);
        }
        embNoise.backward(fourier, dEmb, acc, null, 0f);
        pool.give(dEmb);
        release();
    }

    /** Turns the accumulated W_hat gradients into the parameters' gradients. */
    public void finishBackward() {
        for (MPConv conv : convs) conv.finishBackward();
    }

    /**
     * Inference on a host batch: the logits {@code [N * classes]} of {@code images} (NHWC floats,
     * N images of the configured shape) at the given noise levels. Call {@link #prepare}{@code
     * (false)} after the weights last changed.
     */
    public float[] logits(float[] images, double[] sigma, int[] classLabels) {
        int n = sigma.length, r = config.imgResolution();
        try (Tensor x = Tensor.of(device, images, n, r, r, config.imgChannels())) {
            StepContext ctx = new StepContext(pool, false, 0, false, ones(n));
            Tensor logits = forward(x, sigma, classLabels, ctx);
            float[] out = logits.toArray();
            pool.give(logits);
            return out;
        }
    }

    private void release() {
        for (Tensor t : encOut) pool.give(t);
        encOut.clear();
        for (Tensor t : new Tensor[] {xIn, cNoise, labels, fourier, embPre, emb, pooled}) pool.give(t);
        xIn = cNoise = labels = fourier = embPre = emb = pooled = null;
    }

    /** One-hot rows times sqrt(label_dim), EDM2's label input (zeros for a missing label). */
    private Tensor labelRows(int[] classLabels, long n) {
        int dim = config.labelDim();
        if (dim == 0) {
            if (classLabels != null) throw new IllegalArgumentException("EncoderClassifier.forward: labels given to an unconditional network");
            return null;
        }
        float[] rows = new float[Math.toIntExact(n * dim)];
        if (classLabels != null) {
            for (int i = 0; i < n; i++) {
                if (classLabels[i] < 0 || classLabels[i] >= dim) {
                    throw new IllegalArgumentException("EncoderClassifier.forward: label " + classLabels[i] + " of sample " + i + " is not in [0, " + dim + ")");
                }
                rows[i * dim + classLabels[i]] = (float) Math.sqrt(dim);
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

    private void ensureAverage(long n, long pixels) {
        if (average != null && average.dim(0) == n && pixels == pooledPixels) return;
        if (average != null) average.close();
        average = Tensor.allocate(device, n, 1, pixels).copyFrom(filled(Math.toIntExact(n * pixels), (float) (1.0 / pixels)));
        pooledPixels = pixels;
    }

    private static float[] filled(int n, float v) {
        float[] a = new float[n];
        Arrays.fill(a, v);
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
        if (average != null) average.close();
    }
}
