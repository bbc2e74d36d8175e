package dev.ambient.kernels;

import java.util.Arrays;

/**
 * The weight normalisation of EDM2's MPConv, per output filter. A weight tensor {@code w} is
 * {@code [filters, ...]}: each filter is a row of {@code fanIn} values, the product of the other
 * dimensions ({@code k * k * Cin} for an OHWI convolution weight, {@code Cin} for a linear layer).
 * With {@code d = eps + |w| / sqrt(fanIn)} per row:
 * <ul>
 *   <li>{@link #forward}: {@code wHat = gain * w / (d * sqrt(fanIn))}, so each filter of
 *       {@code wHat} has L2 norm about {@code gain} (what the convolution uses);</li>
 *   <li>{@link #backward}: the gradient of that with respect to {@code w} (and {@code gain});</li>
 *   <li>{@link #force}: {@code w = w / d} in place, the "forced" normalisation of the stored
 *       weights that EDM2 applies at every training step, so that their norm never grows.</li>
 * </ul>
 */
public final class WeightNorm {

    /** EDM2's epsilon for normalize(). */
    public static final float DEFAULT_EPS = 1e-4f;

    private WeightNorm() {}

    /**
     * {@code wHat = gain * w / ((eps + |w| / sqrt(fanIn)) * sqrt(fanIn))} per filter; modifies
     * and returns {@code wHat}, which may be {@code w} itself (partial overlaps are refused).
     */
    public static Tensor forward(Tensor w, float gain, float eps, Tensor wHat) {
        String f = "ambient_weight_norm_forward";
        Device device = Checks.sameDevice(f, "w", w, "wHat", wHat);
        Checks.sameShape(f, "w", w, "wHat", wHat);
        Checks.finite(f, "gain", gain);
        checkEps(f, eps);
        Checks.identicalOrDistinct(f, "w", w, "wHat", wHat);
        device.activate();
        device.backend().check(device.backend().api.ambient_weight_norm_forward(w.dim(0), fanIn(w), eps, gain,
                w.segment(), wHat.segment()), f, Checks.shapes("w", w, "wHat", wHat).and("gain", gain, "eps", eps));
        return wHat;
    }

    /** The normalised weight with {@link #DEFAULT_EPS} into a new tensor. */
    public static Tensor forward(Tensor w, float gain) {
        return MagnitudePreserving.intoNew(w, out -> forward(w, gain, DEFAULT_EPS, out));
    }

    /**
     * Gradient of {@link #forward} given {@code dwHat}: modifies and returns {@code dw} (which must
     * not overlap {@code w} or {@code dwHat}); when {@code dgain} (a one-element tensor) is not null
     * it is overwritten with {@code sum(dwHat * wHat) / gain}, computed without dividing by gain
     * (so {@code gain = 0} is fine).
     */
    public static Tensor backward(Tensor w, Tensor dwHat, float gain, float eps, Tensor dw, Tensor dgain) {
        String f = "ambient_weight_norm_backward";
        Device device = dgain == null ? Checks.sameDevice(f, "w", w, "dwHat", dwHat, "dw", dw)
                : Checks.sameDevice(f, "w", w, "dwHat", dwHat, "dw", dw, "dgain", dgain);
        Checks.sameShape(f, "w", w, "dwHat", dwHat);
        Checks.sameShape(f, "w", w, "dw", dw);
        Checks.finite(f, "gain", gain);
        checkEps(f, eps);
        Checks.distinct(f, "dw", dw, "w", w);
        Checks.distinct(f, "dw", dw, "dwHat", dwHat);
        if (dgain != null) {
            if (dgain.size() != 1) {
                throw new IllegalArgumentException(f + ": dgain " + Arrays.toString(dgain.shape()) + " must hold exactly one element");
            }
            Checks.distinct(f, "dgain", dgain, "w", w);
            Checks.distinct(f, "dgain", dgain, "dwHat", dwHat);
            Checks.distinct(f, "dgain", dgain, "dw", dw);
        }
        device.activate();
        device.backend().check(device.backend().api.ambient_weight_norm_backward(w.dim(0), fanIn(w), eps, gain,
                w.segment(), dwHat.segment(), dw.segment(), dgain == null ? java.lang.foreign.MemorySegment.NULL
                        : dgain.segment()), f,
                Checks.shapes("w", w, "dwHat", dwHat, "dw", dw, "dgain", dgain).and("gain", gain, "eps", eps));
        return dw;
    }

    /** {@code w = w / (eps + |w| / sqrt(fanIn))} per filter, in place; returns {@code w}. */
    public static Tensor force(Tensor w, float eps) {
        String f = "ambient_weight_norm_force";
        Device device = Checks.sameDevice(f, "w", w);
        checkEps(f, eps);
        device.activate();
        device.backend().check(device.backend().api.ambient_weight_norm_force(w.dim(0), fanIn(w), eps, w.segment()), f,
                Checks.shapes("w", w).and("eps", eps));
        return w;
    }

    /** The product of all dimensions but the first. */
    static long fanIn(Tensor w) {
        long n = 1;
        try {
            for (int i = 1; i < w.rank(); i++) n = Math.multiplyExact(n, w.dim(i));
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException("weight " + Arrays.toString(w.shape()) + ": fan-in overflows", e);
        }
        return n;
    }

    static void checkEps(String f, float eps) {
        if (!(eps > 0) || !Float.isFinite(eps)) throw new IllegalArgumentException(f + ": eps = " + eps + " must be positive and finite");
    }
}
