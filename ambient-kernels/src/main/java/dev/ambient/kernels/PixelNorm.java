package dev.ambient.kernels;

/**
 * EDM2's pixel normalisation: every row of C channels (the last dimension; one pixel of an
 * NHWC tensor) is divided by {@code eps + |x| / sqrt(C)}, so that it has unit RMS.
 */
public final class PixelNorm {

    /** EDM2's epsilon for normalize(). */
    public static final float DEFAULT_EPS = 1e-4f;

    private PixelNorm() {}

    /** {@code y = x / (eps + |x| / sqrt(C))} per row; modifies and returns y (which may be x). */
    public static Tensor forward(Tensor x, float eps, Tensor y) {
        String f = "ambient_pixel_norm_forward";
        Device device = Checks.sameDevice(f, "x", x, "y", y);
        Checks.sameShape(f, "x", x, "y", y);
        checkEps(f, eps);
        Checks.identicalOrDistinct(f, "x", x, "y", y);
        long channels = x.dim(-1), rows = channels == 0 ? 0 : x.size() / channels;
        device.activate();
        device.backend().check(device.backend().api.ambient_pixel_norm_forward(rows, channels, eps, x.segment(),
                y.segment()), f, Checks.shapes("x", x, "y", y));
        return y;
    }

    /** Pixel normalisation with {@link #DEFAULT_EPS} into a new tensor. */
    public static Tensor forward(Tensor x) {
        return MagnitudePreserving.intoNew(x, y -> forward(x, DEFAULT_EPS, y));
    }

    /** Gradient with respect to x given dy; modifies and returns dx, which must not overlap x or dy. */
    public static Tensor backward(Tensor x, Tensor dy, float eps, Tensor dx) {
        String f = "ambient_pixel_norm_backward";
        Device device = Checks.sameDevice(f, "x", x, "dy", dy, "dx", dx);
        Checks.sameShape(f, "x", x, "dy", dy);
        Checks.sameShape(f, "x", x, "dx", dx);
        checkEps(f, eps);
        Checks.distinct(f, "dx", dx, "x", x);
        Checks.distinct(f, "dx", dx, "dy", dy);
        long channels = x.dim(-1), rows = channels == 0 ? 0 : x.size() / channels;
        device.activate();
        device.backend().check(device.backend().api.ambient_pixel_norm_backward(rows, channels, eps, x.segment(),
                dy.segment(), dx.segment()), f, Checks.shapes("x", x, "dy", dy, "dx", dx));
        return dx;
    }

    private static void checkEps(String f, float eps) {
        if (!(eps > 0) || !Float.isFinite(eps)) throw new IllegalArgumentException(f + ": eps = " + eps + " must be positive and finite");
    }
}
