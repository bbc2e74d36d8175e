package dev.ambient.kernels;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * Scaling by one coefficient per sample of a batch:
 * {@code out[i, ...] = alpha[i] x[i, ...] + beta[i] y[i, ...]}, x, y and out {@code [N, ...]},
 * alpha and beta holding N values each (any shape of N elements, e.g. {@code [N]} or
 * {@code [N, 1, 1, 1]}). EDM's preconditioning {@code D = c_skip x + c_out F} with per-sample
 * coefficients, its gradients, and gradient accumulation ({@code y += x}: alpha = beta = 1,
 * out = y) are all this one call.
 */
public final class PerSample {

    private PerSample() {}

    /**
     * {@code out = alpha x + beta y} per sample; modifies and returns out. beta and y are both
     * null ({@code out = alpha x}, as {@link #scale}) or both given; y is then read even where
     * beta is 0, so a NaN in y shows through. out may be x or y itself (in place) but must not
     * partly overlap them, nor overlap alpha or beta.
     */
    public static Tensor axpby(Tensor alpha, Tensor x, Tensor beta, Tensor y, Tensor out) {
        String f = "ambient_sample_axpby";
        if ((beta == null) != (y == null)) {
            throw new IllegalArgumentException(f + ": beta and y must be both null or both given (beta "
                    + (beta == null ? "null" : Arrays.toString(beta.shape())) + ", y "
                    + (y == null ? "null" : Arrays.toString(y.shape())) + ")");
        }
        boolean withY = y != null;
        Device device = withY ? Checks.sameDevice(f, "alpha", alpha, "x", x, "beta", beta, "y", y, "out", out)
                : Checks.sameDevice(f, "alpha", alpha, "x", x, "out", out);
        Checks.Shapes shapes = withY ? Checks.shapes("alpha", alpha, "x", x, "beta", beta, "y", y, "out", out)
                : Checks.shapes("alpha", alpha, "x", x, "out", out);
        long n = x.dim(0); // tensors have at least one dimension: the samples
        requireN(f, shapes, "alpha", alpha, n);
        Checks.sameShape(f, "x", x, "out", out);
        Checks.identicalOrDistinct(f, "x", x, "out", out);
        Checks.distinct(f, "out", out, "alpha", alpha);
        if (withY) {
            requireN(f, shapes, "beta", beta, n);
            Checks.sameShape(f, "x", x, "y", y);
            Checks.identicalOrDistinct(f, "y", y, "out", out);
            Checks.distinct(f, "out", out, "beta", beta);
        }
        long size = n == 0 ? 0 : x.size() / n;
        device.activate();
        device.backend().check(device.backend().api.ambient_sample_axpby(n, size, alpha.segment(), x.segment(),
                withY ? beta.segment() : MemorySegment.NULL, withY ? y.segment() : MemorySegment.NULL, out.segment()),
                f, shapes);
        return out;
    }

    /** {@code alpha x + beta y} per sample into a new tensor shaped like x. */
    public static Tensor axpby(Tensor alpha, Tensor x, Tensor beta, Tensor y) {
        return MagnitudePreserving.intoNew(x, out -> axpby(alpha, x, beta, y, out));
    }

    /** {@code out = alpha x} per sample; modifies and returns out, which may be x itself. */
    public static Tensor scale(Tensor alpha, Tensor x, Tensor out) {
        return axpby(alpha, x, null, null, out);
    }

    /** {@code alpha x} per sample into a new tensor shaped like x. */
    public static Tensor scale(Tensor alpha, Tensor x) {
        return MagnitudePreserving.intoNew(x, out -> axpby(alpha, x, null, null, out));
    }

    private static void requireN(String f, Checks.Shapes shapes, String name, Tensor t, long n) {
        if (t.size() != n) {
            throw new IllegalArgumentException(f + ": " + shapes + ": " + name + " must hold one value per sample, N = "
                    + n + ", but holds " + t.size());
        }
    }
}
