package dev.ambient.kernels;

import java.util.Arrays;

/**
 * 2-D convolution as EDM2's MPConv layers use it: NHWC activations, stride 1, a square kernel
 * of 1 or 3 with "same" zero padding ({@code kernel / 2}), no bias, weights in OHWI layout.
 *
 * <p>Shapes: {@code x [N, H, W, Cin]}, {@code weight [Cout, k, k, Cin]}, {@code y [N, H, W, Cout]}:
 * <pre>
 *   y[n, i, j, o] = sum over a, b in [0, k), c in [0, Cin) of
 *                   x[n, i + a - k/2, j + b - k/2, c] * weight[o, a, b, c]   (x is 0 outside the image)
 * </pre>
 * Every call takes a {@code beta}: the output becomes the result plus {@code beta} times its old
 * contents, and with {@code beta == 0} the old contents are never read (NaN included), so
 * gradients can be accumulated over micro-batches with {@code beta = 1}. Outputs must not share
 * memory with the inputs.
 */
public final class Conv2d {

    private Conv2d() {}

    /**
     * {@code y = conv(x, weight) + beta * y}; modifies and returns {@code y}
     * ({@code [N, H, W, Cout]}).
     */
    public static Tensor forward(Tensor x, Tensor weight, float beta, Tensor y) {
        String f = "ambient_conv2d_forward";
        Device device = Checks.sameDevice(f, "x", x, "weight", weight, "y", y);
        Checks.Shapes shapes = Checks.shapes("x", x, "weight", weight, "y", y);
        long kernel = kernel(f, weight, shapes);
        checkActivation(f, "x", x, weight.dim(3), "Cin", shapes);
        checkOutput(f, "y", y, x, weight.dim(0), "Cout", shapes);
        Checks.finite(f, "beta", beta);
        Checks.distinct(f, "y", y, "x", x);
        Checks.distinct(f, "y", y, "weight", weight);
        device.activate();
        device.backend().check(device.backend().api.ambient_conv2d_forward(x.dim(0), x.dim(1), x.dim(2), x.dim(3),
                weight.dim(0), kernel, x.segment(), weight.segment(), beta, y.segment()), f, shapes);
        return y;
    }

    /** {@code conv(x, weight)} into a new tensor {@code [N, H, W, Cout]}. */
    public static Tensor forward(Tensor x, Tensor weight) {
        String f = "ambient_conv2d_forward";
        Checks.sameDevice(f, "x", x, "weight", weight);
        Checks.Shapes shapes = Checks.shapes("x", x, "weight", weight);
        kernel(f, weight, shapes);
        checkActivation(f, "x", x, weight.dim(3), "Cin", shapes);
        Tensor y = Tensor.allocate(x.device(), x.dim(0), x.dim(1), x.dim(2), weight.dim(0));
        try {
            return forward(x, weight, 0f, y);
        } catch (RuntimeException e) {
            y.close();
            throw e;
        }
    }

    /**
     * MPConv's training-time forward in one call: {@code scratchWeight =} {@link WeightNorm#forward
     * WeightNorm.forward(rawWeight, gain, 1e-4)}, then {@code y = conv(x, scratchWeight)}.
     * Modifies {@code scratchWeight} (shaped like {@code rawWeight}) and {@code y}; returns y.
     * "Fused" here means composed in one call: the normalisation is one pass over the weight
     * tensor, which is small next to the activations, and the convolution reads the result.
     * The forced normalisation of the stored weights ({@link WeightNorm#force}) is separate.
     */
    public static Tensor forwardNormalized(Tensor x, Tensor rawWeight, float gain, Tensor scratchWeight, Tensor y) {
        String f = "Conv2d.forwardNormalized";
        Checks.sameDevice(f, "x", x, "rawWeight", rawWeight, "scratchWeight", scratchWeight, "y", y);
        Checks.Shapes shapes = Checks.shapes("x", x, "rawWeight", rawWeight, "scratchWeight", scratchWeight, "y", y);
        kernel(f, rawWeight, shapes);
        checkActivation(f, "x", x, rawWeight.dim(3), "Cin", shapes);
        checkOutput(f, "y", y, x, rawWeight.dim(0), "Cout", shapes);
        Checks.sameShape(f, "rawWeight", rawWeight, "scratchWeight", scratchWeight);
        Checks.distinct(f, "scratchWeight", scratchWeight, "rawWeight", rawWeight);
        Checks.distinct(f, "scratchWeight", scratchWeight, "x", x);
        Checks.distinct(f, "scratchWeight", scratchWeight, "y", y);
        WeightNorm.forward(rawWeight, gain, WeightNorm.DEFAULT_EPS, scratchWeight);
        return forward(x, scratchWeight, 0f, y);
    }

    /**
     * Gradient with respect to the input: {@code dx = conv^T(dy, weight) + beta * dx} (the
     * convolution of dy with the spatially flipped, channel-transposed kernel); modifies and
     * returns {@code dx} ({@code [N, H, W, Cin]}).
     */
    public static Tensor backwardInput(Tensor dy, Tensor weight, float beta, Tensor dx) {
        String f = "ambient_conv2d_backward_input";
        Device device = Checks.sameDevice(f, "dy", dy, "weight", weight, "dx", dx);
        Checks.Shapes shapes = Checks.shapes("dy", dy, "weight", weight, "dx", dx);
        long kernel = kernel(f, weight, shapes);
        checkActivation(f, "dy", dy, weight.dim(0), "Cout", shapes);
        checkOutput(f, "dx", dx, dy, weight.dim(3), "Cin", shapes);
        Checks.finite(f, "beta", beta);
        Checks.distinct(f, "dx", dx, "dy", dy);
        Checks.distinct(f, "dx", dx, "weight", weight);
        device.activate();
        device.backend().check(device.backend().api.ambient_conv2d_backward_input(dy.dim(0), dy.dim(1), dy.dim(2),
                weight.dim(3), weight.dim(0), kernel, dy.segment(), weight.segment(), beta, dx.segment()), f, shapes);
        return dx;
    }

    /**
     * Gradient with respect to the weight: {@code dweight = sum over pixels of dy x patches(x) +
     * beta * dweight} ({@code beta = 1} accumulates over micro-batches); modifies and returns
     * {@code dweight} ({@code [Cout, k, k, Cin]}).
     */
    public static Tensor backwardWeight(Tensor x, Tensor dy, float beta, Tensor dweight) {
        String f = "ambient_conv2d_backward_weight";
        Device device = Checks.sameDevice(f, "x", x, "dy", dy, "dweight", dweight);
        Checks.Shapes shapes = Checks.shapes("x", x, "dy", dy, "dweight", dweight);
        long kernel = kernel(f, dweight, shapes);
        checkActivation(f, "x", x, dweight.dim(3), "Cin", shapes);
        checkOutput(f, "dy", dy, x, dweight.dim(0), "Cout", shapes);
        Checks.finite(f, "beta", beta);
        Checks.distinct(f, "dweight", dweight, "x", x);
        Checks.distinct(f, "dweight", dweight, "dy", dy);
        device.activate();
        device.backend().check(device.backend().api.ambient_conv2d_backward_weight(x.dim(0), x.dim(1), x.dim(2),
                x.dim(3), dweight.dim(0), kernel, x.segment(), dy.segment(), beta, dweight.segment()), f, shapes);
        return dweight;
    }

    /** The kernel size of an OHWI weight {@code [Cout, k, k, Cin]}: square, 1 or 3. */
    private static long kernel(String f, Tensor weight, Checks.Shapes shapes) {
        if (weight.rank() != 4) {
            throw new IllegalArgumentException(f + ": " + shapes + ": the weight must be [Cout, k, k, Cin] (OHWI), rank 4");
        }
        long k = weight.dim(1);
        if (weight.dim(2) != k) {
            throw new IllegalArgumentException(f + ": " + shapes + ": the kernel must be square, got " + k + " x " + weight.dim(2));
        }
        if (k != 1 && k != 3) {
            throw new IllegalArgumentException(f + ": " + shapes + ": kernel " + k + " x " + k + " is not supported (1 or 3)");
        }
        return k;
    }

    /** An NHWC input whose channels must equal {@code channels} (the weight's Cin or Cout). */
    private static void checkActivation(String f, String name, Tensor t, long channels, String what, Checks.Shapes shapes) {
        if (t.rank() != 4) throw new IllegalArgumentException(f + ": " + shapes + ": " + name + " must be NHWC, rank 4");
        if (t.dim(3) != channels) {
            throw new IllegalArgumentException(f + ": " + shapes + ": " + name + " has " + t.dim(3)
                    + " channels but the weight's " + what + " is " + channels);
        }
    }

    /** An NHWC tensor with {@code like}'s N, H and W and {@code channels} channels. */
    private static void checkOutput(String f, String name, Tensor t, Tensor like, long channels, String what, Checks.Shapes shapes) {
        long[] want = {like.dim(0), like.dim(1), like.dim(2), channels};
        if (!Arrays.equals(t.shape(), want)) {
            throw new IllegalArgumentException(f + ": " + shapes + ": " + name + " must be " + Arrays.toString(want)
                    + " (N, H, W of the input and the weight's " + what + ")");
        }
    }
}
