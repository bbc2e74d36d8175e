package dev.ambient.kernels;

import static org.junit.jupiter.api.Assertions.fail;

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.function.IntToDoubleFunction;

/** Random inputs, poisoned outputs and the tolerance check |got - want| <= atol + rtol |want|. */
final class TestSupport {

    private TestSupport() {}

    /** Uniform in [-scale, scale), never exactly zero. */
    static float[] uniform(SplittableRandom random, int n, double scale) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            float x = (float) ((random.nextDouble() * 2 - 1) * scale);
            v[i] = x == 0 ? (float) scale / 2 : x;
        }
        return v;
    }

    static SplittableRandom freshRandom() {
        long seed = System.nanoTime();
        System.out.println("random seed " + seed);
        return new SplittableRandom(seed);
    }

    /** Fills the tensor with NaN, so that an element a kernel forgets to write stays NaN. */
    static Tensor poison(Tensor t) {
        float[] nan = new float[Math.toIntExact(t.size())];
        Arrays.fill(nan, Float.NaN);
        return t.copyFrom(nan);
    }

    static float[] toFloat(double[] v) {
        float[] f = new float[v.length];
        for (int i = 0; i < v.length; i++) f[i] = (float) v[i];
        return f;
    }

    /** Fails listing the first few and the worst element out of tolerance. */
    static void assertClose(String what, double[] want, float[] got, double atol, double rtol) {
        assertClose(what, want, got, i -> atol + rtol * Math.abs(want[i]), String.format("atol %.1e, rtol %.1e", atol, rtol));
    }

    /** As above, with each element's own bound on |got - want|; tolerance describes how the bounds were made. */
    static void assertClose(String what, double[] want, float[] got, IntToDoubleFunction bound, String tolerance) {
        if (want.length != got.length) fail(what + ": length " + got.length + ", want " + want.length);
        StringBuilder first = new StringBuilder();
        int bad = 0, worst = -1;
        double worstExcess = 0;
        for (int i = 0; i < want.length; i++) {
            double err = Math.abs(got[i] - want[i]), b = bound.applyAsDouble(i);
            if (!(err <= b)) {
                if (bad < 5) first.append(String.format("%n  [%d] got %.9g want %.9g (bound %.2e)", i, got[i], want[i], b));
                double excess = Double.isNaN(err) ? Double.POSITIVE_INFINITY : err / b;
                if (worst < 0 || excess > worstExcess) {
                    worst = i;
                    worstExcess = excess;
                }
                bad++;
            }
        }
        if (bad > 0) {
            fail(String.format("%s: %d of %d elements out of tolerance (%s)%s%n  worst [%d] got %.9g want %.9g",
                    what, bad, want.length, tolerance, first, worst, got[worst], want[worst]));
        }
    }
}
