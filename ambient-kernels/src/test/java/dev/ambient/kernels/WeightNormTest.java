package dev.ambient.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** MPConv's weight normalisation: forward, force, and backward by finite differences (w and gain). */
class WeightNormTest {

    static Stream<Arguments> cases() {
        return Stream.of(Arguments.of(new long[] {1, 1}, 1f), Arguments.of(new long[] {3, 5}, 1f),
                Arguments.of(new long[] {17, 3, 3, 3}, 0.7f), Arguments.of(new long[] {33, 3, 3, 67}, -1.3f),
                Arguments.of(new long[] {128, 3, 3, 128}, 1f), Arguments.of(new long[] {5, 1, 1, 12}, 0f));
    }

    /** gain * w / ((eps + |w| / sqrt(F)) * sqrt(F)) for one row. */
    private static double[] normalize(double[] w, double eps, double gain) {
        double sum = 0;
        for (double v : w) sum += v * v;
        double root = Math.sqrt(w.length), scale = gain / ((eps + Math.sqrt(sum) / root) * root);
        double[] out = new double[w.length];
        for (int i = 0; i < w.length; i++) out[i] = w[i] * scale;
        return out;
    }

    @ParameterizedTest
    @MethodSource("cases")
    void forwardBackwardAndForce(long[] shape, float gain) {
        Device d = Device.cpu();
        SplittableRandom random = TestSupport.freshRandom();
        int filters = (int) shape[0], fanIn = fanIn(shape);
        int n = filters * fanIn;
        float eps = WeightNorm.DEFAULT_EPS;
        float[] w = TestSupport.uniform(random, n, 2), g = TestSupport.uniform(random, n, 1);
        double[] wHat = new double[n], forced = new double[n], dw = new double[n];
        double dgain = 0, dgainScale = 0;
        double[] row = new double[fanIn];
        for (int r = 0; r < filters; r++) {
            for (int i = 0; i < fanIn; i++) row[i] = w[r * fanIn + i];
            System.arraycopy(normalize(row, eps, gain), 0, wHat, r * fanIn, fanIn);
            System.arraycopy(normalize(row, eps, Math.sqrt(fanIn)), 0, forced, r * fanIn, fanIn);
            for (int j = 0; j < fanIn; j++) {
                double keep = row[j], h = 1e-6 * Math.max(1, Math.abs(keep));
                row[j] = keep + h;
                double[] plus = normalize(row, eps, gain);
                row[j] = keep - h;
                double[] minus = normalize(row, eps, gain);
                row[j] = keep;
                double s = 0;
                for (int i = 0; i < fanIn; i++) s += g[r * fanIn + i] * (plus[i] - minus[i]);
                dw[r * fanIn + j] = s / (2 * h);
            }
            double[] plus = normalize(row, eps, gain + 1e-3), minus = normalize(row, eps, gain - 1e-3);
            for (int i = 0; i < fanIn; i++) {
                double term = g[r * fanIn + i] * (plus[i] - minus[i]) / 2e-3;
                dgain += term;
                dgainScale += Math.abs(term);
            }
        }
        try (Tensor tw = Tensor.of(d, w, shape); Tensor tg = Tensor.of(d, g, shape);
                Tensor out = TestSupport.poison(Tensor.allocate(d, shape)); Tensor tdw = TestSupport.poison(Tensor.allocate(d, shape));
                Tensor tdgain = TestSupport.poison(Tensor.allocate(d, 1))) {
            TestSupport.assertClose("weight_norm forward", wHat, WeightNorm.forward(tw, gain, eps, out).toArray(), 1e-7, 1e-5);
            if (gain != 0) {
                float[] got = out.toArray();
                for (int r = 0; r < filters; r++) {
                    // |w_hat| = |gain| rms / (eps + rms): |gain| up to eps, whatever the size of w
                    double sum = 0, sumW = 0;
                    for (int i = 0; i < fanIn; i++) {
                        sum += (double) got[r * fanIn + i] * got[r * fanIn + i];
                        sumW += (double) w[r * fanIn + i] * w[r * fanIn + i];
                    }
                    double rms = Math.sqrt(sumW / fanIn);
                    assertEquals(Math.abs(gain) * rms / (eps + rms), Math.sqrt(sum), 1e-5 * Math.abs(gain), "|w_hat| of filter " + r);
                }
            }
            WeightNorm.backward(tw, tg, gain, eps, tdw, tdgain);
            TestSupport.assertClose("weight_norm backward dw", dw, tdw.toArray(), 1e-6, 1e-4);
            assertEquals(dgain, tdgain.toArray()[0], 1e-5 * dgainScale + 1e-6, "dgain");
            TestSupport.poison(tdw);
            WeightNorm.backward(tw, tg, gain, eps, tdw, null);
            TestSupport.assertClose("weight_norm backward without dgain", dw, tdw.toArray(), 1e-6, 1e-4);

            out.copyFrom(tw);
            TestSupport.assertClose("weight_norm in place", wHat, WeightNorm.forward(out, gain, eps, out).toArray(), 1e-7, 1e-5);
            TestSupport.assertClose("weight_norm force", forced, WeightNorm.force(tw, eps).toArray(), 1e-7, 1e-5);
        }
    }

    private static int fanIn(long[] shape) {
        long f = 1;
        for (int i = 1; i < shape.length; i++) f *= shape[i];
        return (int) f;
    }

    @Test
    void allocatingForwardUsesTheDefaultEps() {
        Device d = Device.cpu();
        try (Tensor w = Tensor.of(d, new float[] {3, 4}, 1, 2); Tensor out = WeightNorm.forward(w, 2f)) {
            double scale = 2 / ((WeightNorm.DEFAULT_EPS + 5 / Math.sqrt(2)) * Math.sqrt(2));
            TestSupport.assertClose("forward", new double[] {3 * scale, 4 * scale}, out.toArray(), 1e-7, 1e-6);
        }
    }

    @Test
    void badArgumentsAreRefused() {
        Device d = Device.cpu();
        try (Tensor w = Tensor.zeros(d, 4, 3); Tensor g = Tensor.zeros(d, 4, 3); Tensor dw = Tensor.zeros(d, 4, 3);
                Tensor two = Tensor.zeros(d, 2); Tensor other = Tensor.zeros(d, 3, 4)) {
            assertMessage(() -> WeightNorm.forward(w, 1f, 0f, dw), "eps");
            assertMessage(() -> WeightNorm.forward(w, 1f, -1e-4f, dw), "eps");
            assertMessage(() -> WeightNorm.force(w, Float.NaN), "eps");
            assertMessage(() -> WeightNorm.forward(w, Float.POSITIVE_INFINITY, 1e-4f, dw), "gain");
            assertMessage(() -> WeightNorm.forward(w, 1f, 1e-4f, other), "same shape");
            assertMessage(() -> WeightNorm.backward(w, g, 1f, 1e-4f, w, null), "share memory");
            assertMessage(() -> WeightNorm.backward(w, g, 1f, 1e-4f, g, null), "share memory");
            assertMessage(() -> WeightNorm.backward(w, g, 1f, 1e-4f, dw, two), "one element");
            assertMessage(() -> WeightNorm.backward(w, g, 1f, 0f, dw, null), "eps");
        }
    }

    private static void assertMessage(org.junit.jupiter.api.function.Executable call, String part) {
        var e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(part), e.getMessage());
    }
}
