package dev.ambient.kernels;

/**
 * Elementwise regularisers of EDM2's blocks:
 * <ul>
 *   <li>activation clipping ({@code clip_act = 256}): {@code y = min(max(x, -limit), limit)},
 *       NaN passes through; gradient {@code dy} where {@code -limit < x < limit}, else 0;</li>
 *   <li>inverted dropout: element {@code e} is kept when the uniform number
 *       {@code (seed, stream, offset + e)} of {@link RandomNumbers} is {@code >= p}, and then scaled
 *       by {@code 1 / (1 - p)}; the backward pass regenerates the same mask from the same
 *       arguments, so nothing is stored. {@code 0 <= p < 1}; {@code p = 0} is the identity.</li>
 * </ul>
 * Outputs may be the inputs themselves (in place); partial overlaps are refused.
 */
public final class Activations {

    /** EDM2's clip_act. */
    public static final float EDM2_CLIP_LIMIT = 256f;

    private Activations() {}

    /** {@code y = min(max(x, -limit), limit)}, limit finite and {@code >= 0}; modifies and returns y (which may be x). */
    public static Tensor clip(Tensor x, float limit, Tensor y) {
        String f = "ambient_clip_forward";
        Device device = Checks.sameDevice(f, "x", x, "y", y);
        Checks.sameShape(f, "x", x, "y", y);
        checkLimit(f, limit);
        Checks.identicalOrDistinct(f, "x", x, "y", y);
        device.activate();
        device.backend().check(device.backend().api.ambient_clip_forward(x.size(), limit, x.segment(), y.segment()),
                f, Checks.shapes("x", x, "y", y).and("limit", limit));
        return y;
    }

    /** Clipping into a new tensor. */
    public static Tensor clip(Tensor x, float limit) {
        return MagnitudePreserving.intoNew(x, y -> clip(x, limit, y));
    }

    /**
     * {@code dx = dy} where {@code -limit < x < limit}, else 0; modifies and returns dx (which
     * may be dy or x).
     */
    public static Tensor clipBackward(Tensor x, Tensor dy, float limit, Tensor dx) {
        String f = "ambient_clip_backward";
        Device device = Checks.sameDevice(f, "x", x, "dy", dy, "dx", dx);
        Checks.sameShape(f, "x", x, "dy", dy);
        Checks.sameShape(f, "x", x, "dx", dx);
        checkLimit(f, limit);
        Checks.identicalOrDistinct(f, "dy", dy, "dx", dx);
        Checks.identicalOrDistinct(f, "x", x, "dx", dx);
        device.activate();
        device.backend().check(device.backend().api.ambient_clip_backward(x.size(), limit, x.segment(), dy.segment(),
                dx.segment()), f, Checks.shapes("x", x, "dy", dy, "dx", dx).and("limit", limit));
        return dx;
    }

    /**
     * Inverted dropout of x with probability p: {@code y[e] = x[e] / (1 - p)} when uniform
     * {@code (seed, stream, offset + e) >= p}, else 0. Modifies and returns y (which may be x).
     */
    public static Tensor dropout(Tensor x, float p, long seed, long stream, long offset, Tensor y) {
        String f = "ambient_dropout_forward";
        Device device = Checks.sameDevice(f, "x", x, "y", y);
        Checks.sameShape(f, "x", x, "y", y);
        checkDropout(f, x, p, offset);
        Checks.identicalOrDistinct(f, "x", x, "y", y);
        device.activate();
        device.backend().check(device.backend().api.ambient_dropout_forward(x.size(), p, seed, stream, offset,
                x.segment(), y.segment()), f, Checks.shapes("x", x, "y", y) + dropoutDetails(p, seed, stream, offset));
        return y;
    }

    /** Dropout into a new tensor. */
    public static Tensor dropout(Tensor x, float p, long seed, long stream, long offset) {
        return MagnitudePreserving.intoNew(x, y -> dropout(x, p, seed, stream, offset, y));
    }

    /**
     * Gradient of dropout, given the forward call's p, seed, stream and offset:
     * {@code dx = dy / (1 - p)} where the element was kept, else 0. Modifies and returns dx
     * (which may be dy).
     */
    public static Tensor dropoutBackward(Tensor dy, float p, long seed, long stream, long offset, Tensor dx) {
        String f = "ambient_dropout_backward";
        Device device = Checks.sameDevice(f, "dy", dy, "dx", dx);
        Checks.sameShape(f, "dy", dy, "dx", dx);
        checkDropout(f, dy, p, offset);
        Checks.identicalOrDistinct(f, "dy", dy, "dx", dx);
        device.activate();
        device.backend().check(device.backend().api.ambient_dropout_backward(dy.size(), p, seed, stream, offset,
                dy.segment(), dx.segment()), f, Checks.shapes("dy", dy, "dx", dx) + dropoutDetails(p, seed, stream, offset));
        return dx;
    }

    private static void checkLimit(String f, float limit) {
        if (!Float.isFinite(limit) || !(limit >= 0)) {
            throw new IllegalArgumentException(f + ": limit = " + limit + " must be finite and non-negative");
        }
    }

    private static void checkDropout(String f, Tensor t, float p, long offset) {
        if (!(p >= 0 && p < 1)) throw new IllegalArgumentException(f + ": p = " + p + " must be in [0, 1)");
        RandomNumbers.checkOffset(f, t, offset);
    }

    private static String dropoutDetails(float p, long seed, long stream, long offset) {
        return ", p " + p + ", seed " + seed + ", stream " + stream + ", offset " + offset;
    }
}
