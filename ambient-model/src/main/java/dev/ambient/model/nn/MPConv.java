package dev.ambient.model.nn;

import dev.ambient.kernels.Conv2d;
import dev.ambient.kernels.Gemm;
import dev.ambient.kernels.Tensor;
import dev.ambient.kernels.WeightNorm;

/**
 * EDM2's magnitude-preserving convolution or fully connected layer (no bias): the weight is
 * used normalised, {@code W_hat = gain * W / ((eps + |W| / sqrt(fanIn)) sqrt(fanIn))} per output
 * filter, and in training the stored weight itself is first forced to unit norm per filter
 * ({@link WeightNorm#force}), so that its magnitude never grows.
 *
 * <p>A training step calls {@link #prepare} once before its forward passes, then
 * {@link #backward} once per micro-batch, which accumulates the gradient of {@code W_hat}, and
 * {@link #finishBackward} once, which takes it through the normalisation into the parameter's
 * gradient (and the gain's). Activations: {@code [N, H, W, C]} for kernels of 1 and 3,
 * {@code [N, C]} for a fully connected layer ({@code kernel == 0}).
 */
public final class MPConv implements AutoCloseable {

    private final Parameters.Entry weight;
    private final int kernel;
    private final int in, out;
    private Parameters.Entry gain; // null: gain 1
    private float gainValue = 1f;
    private Tensor wHat, dwHat;

    /** Declares {@code name} ({@code [out, in, k, k]} or {@code [out, in]} in PyTorch) in {@code params}. */
    public MPConv(Parameters params, String name, int in, int out, int kernel) {
        this(params, name, in, out, kernel, 0);
    }

    /**
     * As {@link #MPConv(Parameters, String, int, int, int)}; a positive {@code qkvHeadDim} makes
     * it an attention qkv projection, whose rows are stored in the attention kernel's order.
     */
    public MPConv(Parameters params, String name, int in, int out, int kernel, int qkvHeadDim) {
        if (kernel != 0 && kernel != 1 && kernel != 3) throw new IllegalArgumentException(name + ": kernel " + kernel + " (0, 1 or 3)");
        this.kernel = kernel;
        this.in = in;
        this.out = out;
        this.weight = kernel == 0 ? params.parameter(name, Parameters.Layout.PLAIN, out, in)
                : qkvHeadDim > 0 ? params.qkvParameter(name, qkvHeadDim, out, in, 1, 1)
                : params.parameter(name, Parameters.Layout.CONV, out, in, kernel, kernel);
    }

    /** Multiplies the normalised weight by a learned scalar (EDM2's emb_gain, out_gain). */
    public MPConv withGain(Parameters.Entry gain) {
        this.gain = gain;
        return this;
    }

    public Parameters.Entry weight() {
        return weight;
    }

    public int in() {
        return in;
    }

    public int out() {
        return out;
    }

    /** Forces the stored weight to unit norm (training only) and computes W_hat for this step. */
    public void prepare(boolean training) {
        Tensor w = weight.value();
        if (wHat == null) {
            wHat = Tensor.allocate(w.device(), w.shape());
            dwHat = Tensor.allocate(w.device(), w.shape());
        }
        if (training) WeightNorm.force(w, WeightNorm.DEFAULT_EPS);
        gainValue = gain == null ? 1f : gain.scalar();
        WeightNorm.forward(w, gainValue, WeightNorm.DEFAULT_EPS, wHat);
    }

    /** {@code y = layer(x)}; modifies and returns y. */
    public Tensor forward(Tensor x, Tensor y) {
        if (kernel == 0) return Gemm.matmul(x, false, wHat, true, 1f, 0f, y);
        return Conv2d.forward(x, wHat, 0f, y);
    }

    /**
     * Given the layer's input x and its output's gradient dy: adds (or, unless
     * {@code accumulate}, writes) the gradient of W_hat, and when dx is not null writes
     * {@code dx = dxBeta * dx + dL/dx}.
     */
    public void backward(Tensor x, Tensor dy, boolean accumulate, Tensor dx, float dxBeta) {
        float beta = accumulate ? 1f : 0f;
        if (kernel == 0) {
            Gemm.matmul(dy, true, x, false, 1f, beta, dwHat);
            if (dx != null) Gemm.matmul(dy, false, wHat, false, 1f, dxBeta, dx);
        } else {
            Conv2d.backwardWeight(x, dy, beta, dwHat);
            if (dx != null) Conv2d.backwardInput(dy, wHat, dxBeta, dx);
        }
    }

    /** Takes the accumulated gradient of W_hat through the normalisation into the parameter's (and the gain's) gradient. */
    public void finishBackward() {
        WeightNorm.backward(weight.value(), dwHat, gainValue, WeightNorm.DEFAULT_EPS, weight.grad(),
                gain == null ? null : gain.grad());
    }

    @Override
    public void close() {
        if (wHat != null) wHat.close();
        if (dwHat != null) dwHat.close();
    }
}
