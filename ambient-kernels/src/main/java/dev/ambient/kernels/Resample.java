package dev.ambient.kernels;

import java.util.Arrays;

/**
 * EDM2's resampling with its default filter [1, 1], on NHWC tensors:
 * <ul>
 *   <li>down: 2x2 average pooling, {@code [N, H, W, C] -> [N, H/2, W/2, C]} (H and W even),
 *       {@code y[n, i, j, c] = (x[n, 2i, 2j, c] + x[n, 2i, 2j+1, c] + x[n, 2i+1, 2j, c] + x[n, 2i+1, 2j+1, c]) / 4};</li>
 *   <li>up: nearest 2x upsampling, {@code [N, H, W, C] -> [N, 2H, 2W, C]},
 *       {@code y[n, i, j, c] = x[n, i/2, j/2, c]}.</li>
 * </ul>
 * Each gradient is the other op up to a scale. Outputs must not overlap inputs.
 */
public final class Resample {

    private Resample() {}

    /** 2x2 average pooling of x {@code [N, H, W, C]} into y {@code [N, H/2, W/2, C]}; modifies and returns y. */
    public static Tensor avgPool2x2(Tensor x, Tensor y) {
        String f = "ambient_avg_pool2x2_forward";
        Device device = Checks.sameDevice(f, "x", x, "y", y);
        Checks.Shapes shapes = Checks.shapes("x", x, "y", y);
        requireHalf(f, shapes, "x", x, "y", y);
        Checks.distinct(f, "y", y, "x", x);
        device.activate();
        device.backend().check(device.backend().api.ambient_avg_pool2x2_forward(x.dim(0), x.dim(1), x.dim(2), x.dim(3),
                x.segment(), y.segment()), f, shapes);
        return y;
    }

    /** 2x2 average pooling into a new tensor {@code [N, H/2, W/2, C]}. */
    public static Tensor avgPool2x2(Tensor x) {
        String f = "ambient_avg_pool2x2_forward";
        Checks.sameDevice(f, "x", x);
        return MagnitudePreserving.intoNew(x.device(), halfShape(f, "x", x), y -> avgPool2x2(x, y));
    }

    /**
     * Gradient of 2x2 average pooling: {@code dx[n, i, j, c] = dy[n, i/2, j/2, c] / 4}; dy is
     * {@code [N, H/2, W/2, C]}, dx {@code [N, H, W, C]}. Modifies and returns dx.
     */
    public static Tensor avgPool2x2Backward(Tensor dy, Tensor dx) {
        String f = "ambient_avg_pool2x2_backward";
        Device device = Checks.sameDevice(f, "dy", dy, "dx", dx);
        Checks.Shapes shapes = Checks.shapes("dy", dy, "dx", dx);
        requireHalf(f, shapes, "dx", dx, "dy", dy);
        Checks.distinct(f, "dx", dx, "dy", dy);
        device.activate();
        device.backend().check(device.backend().api.ambient_avg_pool2x2_backward(dx.dim(0), dx.dim(1), dx.dim(2),
                dx.dim(3), dy.segment(), dx.segment()), f, shapes);
        return dx;
    }

    /** Gradient of 2x2 average pooling into a new tensor {@code [N, 2h, 2w, C]} for dy {@code [N, h, w, C]}. */
    public static Tensor avgPool2x2Backward(Tensor dy) {
        String f = "ambient_avg_pool2x2_backward";
        Checks.sameDevice(f, "dy", dy);
        return MagnitudePreserving.intoNew(dy.device(), doubleShape(f, "dy", dy), dx -> avgPool2x2Backward(dy, dx));
    }

    /** Nearest 2x upsampling of x {@code [N, H, W, C]} into y {@code [N, 2H, 2W, C]}; modifies and returns y. */
    public static Tensor upsample2x(Tensor x, Tensor y) {
        String f = "ambient_upsample2x_forward";
        Device device = Checks.sameDevice(f, "x", x, "y", y);
        Checks.Shapes shapes = Checks.shapes("x", x, "y", y);
        requireHalf(f, shapes, "y", y, "x", x);
        Checks.distinct(f, "y", y, "x", x);
        device.activate();
        device.backend().check(device.backend().api.ambient_upsample2x_forward(x.dim(0), x.dim(1), x.dim(2), x.dim(3),
                x.segment(), y.segment()), f, shapes);
        return y;
    }

    /** Nearest 2x upsampling into a new tensor {@code [N, 2H, 2W, C]}. */
    public static Tensor upsample2x(Tensor x) {
        String f = "ambient_upsample2x_forward";
        Checks.sameDevice(f, "x", x);
        return MagnitudePreserving.intoNew(x.device(), doubleShape(f, "x", x), y -> upsample2x(x, y));
    }

    /**
     * Gradient of nearest 2x upsampling: {@code dx[n, i, j, c]} is the sum of dy over the 2x2
     * block {@code (2i..2i+1, 2j..2j+1)}; dy is {@code [N, 2H, 2W, C]}, dx {@code [N, H, W, C]}.
     * Modifies and returns dx.
     */
    public static Tensor upsample2xBackward(Tensor dy, Tensor dx) {
        String f = "ambient_upsample2x_backward";
        Device device = Checks.sameDevice(f, "dy", dy, "dx", dx);
        Checks.Shapes shapes = Checks.shapes("dy", dy, "dx", dx);
        requireHalf(f, shapes, "dy", dy, "dx", dx);
        Checks.distinct(f, "dx", dx, "dy", dy);
        device.activate();
        device.backend().check(device.backend().api.ambient_upsample2x_backward(dx.dim(0), dx.dim(1), dx.dim(2),
                dx.dim(3), dy.segment(), dx.segment()), f, shapes);
        return dx;
    }

    /** Gradient of nearest 2x upsampling into a new tensor {@code [N, H/2, W/2, C]}. */
    public static Tensor upsample2xBackward(Tensor dy) {
        String f = "ambient_upsample2x_backward";
        Checks.sameDevice(f, "dy", dy);
        return MagnitudePreserving.intoNew(dy.device(), halfShape(f, "dy", dy), dx -> upsample2xBackward(dy, dx));
    }

    // ---- Shapes ---------------------------------------------------------------------------

    private static void requireNhwc(String f, String name, Tensor t) {
        if (t.rank() != 4) {
            throw new IllegalArgumentException(f + ": " + name + " " + Arrays.toString(t.shape())
                    + " must be an NHWC tensor [N, H, W, C]");
        }
    }

    /** {@code [N, H/2, W/2, C]} of an NHWC tensor whose H and W must be even. */
    private static long[] halfShape(String f, String name, Tensor big) {
        requireNhwc(f, name, big);
        if (big.dim(1) % 2 != 0 || big.dim(2) % 2 != 0) {
            throw new IllegalArgumentException(f + ": " + name + " " + Arrays.toString(big.shape()) + " has H = "
                    + big.dim(1) + " and W = " + big.dim(2) + "; 2x2 pooling needs both even");
        }
        return new long[] {big.dim(0), big.dim(1) / 2, big.dim(2) / 2, big.dim(3)};
    }

    private static long[] doubleShape(String f, String name, Tensor small) {
        requireNhwc(f, name, small);
        return new long[] {small.dim(0), 2 * small.dim(1), 2 * small.dim(2), small.dim(3)};
    }

    /** small must be big with H and W halved (big's H and W even). */
    private static void requireHalf(String f, Checks.Shapes shapes, String bigName, Tensor big, String smallName, Tensor small) {
        long[] want = halfShape(f, bigName, big);
        requireNhwc(f, smallName, small);
        if (!Arrays.equals(want, small.shape())) {
            throw new IllegalArgumentException(f + ": " + shapes + ": " + smallName + " must be " + Arrays.toString(want));
        }
    }
}
