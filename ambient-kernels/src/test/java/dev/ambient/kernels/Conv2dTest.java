package dev.ambient.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * NHWC convolution (kernel 1 and 3) against a direct float64 convolution; both gradients also
 * against finite differences of the float64 forward and the adjoint identities; beta = 0 over
 * NaN and beta != 0 accumulation; MPConv's normalised forward; argument checks.
 */
class Conv2dTest {

    /** N, H, W, Cin, Cout, kernel. */
    record Shape(int n, int h, int w, int cin, int cout, int k) {
        int pixels() { return n * h * w; }
        int weights() { return cout * k * k * cin; }
        long[] x() { return new long[] {n, h, w, cin}; }
        long[] y() { return new long[] {n, h, w, cout}; }
        long[] weight() { return new long[] {cout, k, k, cin}; }
    }

    static Stream<Shape> shapes() {
        return Stream.of(new Shape(1, 5, 7, 3, 17, 1), new Shape(1, 5, 7, 3, 17, 3), new Shape(2, 9, 11, 67, 33, 1),
                new Shape(2, 9, 11, 67, 33, 3), new Shape(1, 1, 1, 4, 5, 3), new Shape(2, 16, 16, 64, 40, 3));
    }

    /** Visits (output pixel p, input pixel q, tap t) for every tap that lands inside the image. */
    interface TapVisitor {
        void visit(int p, int q, int t);
    }

    static void forEachTap(Shape s, TapVisitor v) {
        int pad = s.k / 2;
        for (int img = 0; img < s.n; img++)
            for (int y = 0; y < s.h; y++)
                for (int x = 0; x < s.w; x++)
                    for (int a = 0; a < s.k; a++)
                        for (int b = 0; b < s.k; b++) {
                            int yy = y + a - pad, xx = x + b - pad;
                            if (yy < 0 || yy >= s.h || xx < 0 || xx >= s.w) continue;
                            v.visit((img * s.h + y) * s.w + x, (img * s.h + yy) * s.w + xx, a * s.k + b);
                        }
    }

    /** out[0] = conv(x, w), out[1] = sum of |terms| per output (the scale of rounding errors). */
    static double[][] forwardRef(Shape s, double[] x, double[] w) {
        double[] y = new double[s.pixels() * s.cout], mag = new double[y.length];
        int kk = s.k * s.k;
        forEachTap(s, (p, q, t) -> {
            for (int o = 0; o < s.cout; o++)
                for (int i = 0; i < s.cin; i++) {
                    double term = x[q * s.cin + i] * w[(o * kk + t) * s.cin + i];
                    y[p * s.cout + o] += term;
                    mag[p * s.cout + o] += Math.abs(term);
                }
        });
        return new double[][] {y, mag};
    }

    /** dx scattered from every output pixel (the kernel gathers). */
    static double[][] backwardInputRef(Shape s, float[] dy, float[] w) {
        double[] dx = new double[s.pixels() * s.cin], mag = new double[dx.length];
        int kk = s.k * s.k;
        forEachTap(s, (p, q, t) -> {
            for (int o = 0; o < s.cout; o++)
                for (int i = 0; i < s.cin; i++) {
                    double term = (double) dy[p * s.cout + o] * w[(o * kk + t) * s.cin + i];
                    dx[q * s.cin + i] += term;
                    mag[q * s.cin + i] += Math.abs(term);
                }
        });
        return new double[][] {dx, mag};
    }

    static double[][] backwardWeightRef(Shape s, float[] x, float[] dy) {
        double[] dw = new double[s.weights()], mag = new double[dw.length];
        int kk = s.k * s.k;
        forEachTap(s, (p, q, t) -> {
            for (int o = 0; o < s.cout; o++)
                for (int i = 0; i < s.cin; i++) {
                    double term = (double) dy[p * s.cout + o] * x[q * s.cin + i];
                    dw[(o * kk + t) * s.cin + i] += term;
                    mag[(o * kk + t) * s.cin + i] += Math.abs(term);
                }
        });
        return new double[][] {dw, mag};
    }

    static double[] toDouble(float[] v) {
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) d[i] = v[i];
        return d;
    }

    /**
     * want + beta * old, within a fraction of the sum of |terms|: 2e-6 for the direct sums (long
     * float32 sums), 1e-5 for 3x3 kernels, where the library may take Winograd F(4x4), whose
     * transforms scale by up to 8 (worst seen ~3.3e-6; test_cpu_conv2d.c allows the same).
     */
    static void assertSum(String what, Shape s, double[][] wantAndMag, float[] old, float beta, float[] got) {
        double[] want = wantAndMag[0].clone();
        double maxMag = 0;
        for (int i = 0; i < want.length; i++) {
            double prior = beta == 0 ? 0 : (double) beta * old[i];
            want[i] += prior;
            maxMag = Math.max(maxMag, wantAndMag[1][i] + Math.abs(prior));
        }
        double perMag = s.k == 3 ? 1e-5 : 2e-6;
        TestSupport.assertClose(what, want, got, perMag * maxMag + 1e-6, 1e-5);
    }

    @ParameterizedTest
    @MethodSource("shapes")
    void passesMatchFloat64WithBetaZero(Shape s) {
        checkPasses(s, 0f);
    }

    @ParameterizedTest
    @MethodSource("shapes")
    void passesAccumulateWithBeta(Shape s) {
        checkPasses(s, 0.75f);
    }

    private void checkPasses(Shape s, float beta) {
        Device d = Device.cpu();
        SplittableRandom random = TestSupport.freshRandom();
        float[] x = TestSupport.uniform(random, s.pixels() * s.cin, 1), w = TestSupport.uniform(random, s.weights(), 1);
        float[] dy = TestSupport.uniform(random, s.pixels() * s.cout, 1);
        float[] y0 = TestSupport.uniform(random, dy.length, 1), dx0 = TestSupport.uniform(random, x.length, 1);
        float[] dw0 = TestSupport.uniform(random, w.length, 1);
        try (Tensor tx = Tensor.of(d, x, s.x()); Tensor tw = Tensor.of(d, w, s.weight()); Tensor tdy = Tensor.of(d, dy, s.y());
                Tensor ty = Tensor.of(d, y0, s.y()); Tensor tdx = Tensor.of(d, dx0, s.x()); Tensor tdw = Tensor.of(d, dw0, s.weight())) {
            if (beta == 0) {
                TestSupport.poison(ty);
                TestSupport.poison(tdx);
                TestSupport.poison(tdw);
            }
            String label = s + " beta " + beta;
            assertSum("forward " + label, s, forwardRef(s, toDouble(x), toDouble(w)), y0, beta,
                    Conv2d.forward(tx, tw, beta, ty).toArray());
            assertSum("backward_input " + label, s, backwardInputRef(s, dy, w), dx0, beta,
                    Conv2d.backwardInput(tdy, tw, beta, tdx).toArray());
            assertSum("backward_weight " + label, s, backwardWeightRef(s, x, dy), dw0, beta,
                    Conv2d.backwardWeight(tx, tdy, beta, tdw).toArray());
        }
    }

    static Stream<Shape> smallShapes() {
        return Stream.of(new Shape(1, 3, 4, 3, 5, 3), new Shape(2, 2, 3, 4, 3, 1), new Shape(1, 1, 2, 2, 2, 3));
    }

    @ParameterizedTest
    @MethodSource("smallShapes")
    void gradientsMatchFiniteDifferences(Shape s) {
        Device d = Device.cpu();
        SplittableRandom random = TestSupport.freshRandom();
        float[] x = TestSupport.uniform(random, s.pixels() * s.cin, 1), w = TestSupport.uniform(random, s.weights(), 1);
        float[] dy = TestSupport.uniform(random, s.pixels() * s.cout, 1);
        double[] xd = toDouble(x), wd = toDouble(w), dyd = toDouble(dy);
        double step = 1e-3;
        double[] wantDx = new double[x.length], wantDw = new double[w.length];
        for (int i = 0; i < x.length; i++) {
            double keep = xd[i];
            xd[i] = keep + step;
            double plus = loss(s, xd, wd, dyd);
            xd[i] = keep - step;
            double minus = loss(s, xd, wd, dyd);
            xd[i] = keep;
            wantDx[i] = (plus - minus) / (2 * step);
        }
        for (int i = 0; i < w.length; i++) {
            double keep = wd[i];
            wd[i] = keep + step;
            double plus = loss(s, xd, wd, dyd);
            wd[i] = keep - step;
            double minus = loss(s, xd, wd, dyd);
            wd[i] = keep;
            wantDw[i] = (plus - minus) / (2 * step);
        }
        try (Tensor tx = Tensor.of(d, x, s.x()); Tensor tw = Tensor.of(d, w, s.weight()); Tensor tdy = Tensor.of(d, dy, s.y());
                Tensor tdx = TestSupport.poison(Tensor.allocate(d, s.x()));
                Tensor tdw = TestSupport.poison(Tensor.allocate(d, s.weight()))) {
            TestSupport.assertClose("dx vs finite differences " + s, wantDx, Conv2d.backwardInput(tdy, tw, 0f, tdx).toArray(),
                    1e-5, 1e-5);
            TestSupport.assertClose("dw vs finite differences " + s, wantDw, Conv2d.backwardWeight(tx, tdy, 0f, tdw).toArray(),
                    1e-5, 1e-5);
        }
    }

    /** {@code <conv(x, w), dy>} in float64. */
    private static double loss(Shape s, double[] x, double[] w, double[] dy) {
        double[] y = forwardRef(s, x, w)[0];
        double l = 0;
        for (int i = 0; i < y.length; i++) l += y[i] * dy[i];
        return l;
    }

    @ParameterizedTest
    @MethodSource("shapes")
    void adjointIdentities(Shape s) {
        Device d = Device.cpu();
        SplittableRandom random = TestSupport.freshRandom();
        float[] x = TestSupport.uniform(random, s.pixels() * s.cin, 1), w = TestSupport.uniform(random, s.weights(), 1);
        float[] dy = TestSupport.uniform(random, s.pixels() * s.cout, 1);
        try (Tensor tx = Tensor.of(d, x, s.x()); Tensor tw = Tensor.of(d, w, s.weight()); Tensor tdy = Tensor.of(d, dy, s.y());
                Tensor ty = Conv2d.forward(tx, tw); Tensor tdx = Tensor.allocate(d, s.x());
                Tensor tdw = Tensor.allocate(d, s.weight())) {
            float[] y = ty.toArray(), dx = Conv2d.backwardInput(tdy, tw, 0f, tdx).toArray();
            float[] dw = Conv2d.backwardWeight(tx, tdy, 0f, tdw).toArray();
            double yDy = 0, scale = 0, xDx = 0, wDw = 0;
            for (int i = 0; i < y.length; i++) {
                yDy += (double) y[i] * dy[i];
                scale += Math.abs((double) y[i] * dy[i]);
            }
            for (int i = 0; i < x.length; i++) xDx += (double) x[i] * dx[i];
            for (int i = 0; i < w.length; i++) wDw += (double) w[i] * dw[i];
            assertEquals(yDy, xDx, 1e-5 * scale + 1e-6, "<conv(x), dy> = <x, backward_input(dy)> for " + s);
            assertEquals(yDy, wDw, 1e-5 * scale + 1e-6, "<conv(x), dy> = <w, backward_weight(x, dy)> for " + s);
        }
    }

    @Test
    void forwardNormalizedIsWeightNormThenConv() {
        Device d = Device.cpu();
        SplittableRandom random = TestSupport.freshRandom();
        Shape s = new Shape(2, 6, 5, 7, 9, 3);
        float gain = 0.8f;
        float[] x = TestSupport.uniform(random, s.pixels() * s.cin, 1), w = TestSupport.uniform(random, s.weights(), 2);
        int fanIn = s.k * s.k * s.cin;
        double[] wHat = new double[w.length];
        for (int o = 0; o < s.cout; o++) {
            double sum = 0;
            for (int i = 0; i < fanIn; i++) sum += (double) w[o * fanIn + i] * w[o * fanIn + i];
            double scale = gain / ((WeightNorm.DEFAULT_EPS + Math.sqrt(sum / fanIn)) * Math.sqrt(fanIn));
            for (int i = 0; i < fanIn; i++) wHat[o * fanIn + i] = w[o * fanIn + i] * scale;
        }
        try (Tensor tx = Tensor.of(d, x, s.x()); Tensor tw = Tensor.of(d, w, s.weight());
                Tensor scratch = TestSupport.poison(Tensor.allocate(d, s.weight()));
                Tensor ty = TestSupport.poison(Tensor.allocate(d, s.y()))) {
            Conv2d.forwardNormalized(tx, tw, gain, scratch, ty);
            TestSupport.assertClose("normalised weight", wHat, scratch.toArray(), 1e-7, 1e-5);
            assertSum("forwardNormalized", s, forwardRef(s, toDouble(x), wHat), null, 0f, ty.toArray());
            assertArrayEquals(w, tw.toArray(), "the raw weight is not modified");
        }
    }

    @Test
    void allocatingForwardHasTheOutputShape() {
        Device d = Device.cpu();
        try (Tensor x = Tensor.zeros(d, 2, 3, 4, 5); Tensor w = Tensor.zeros(d, 6, 1, 1, 5); Tensor y = Conv2d.forward(x, w)) {
            assertArrayEquals(new long[] {2, 3, 4, 6}, y.shape());
            for (float v : y.toArray()) assertEquals(0f, v);
        }
    }

    @Test
    void badArgumentsAreRefused() {
        Device d = Device.cpu();
        try (Tensor x = Tensor.zeros(d, 1, 4, 4, 3); Tensor y = Tensor.zeros(d, 1, 4, 4, 5);
                Tensor w2 = Tensor.zeros(d, 5, 2, 2, 3); Tensor wRect = Tensor.zeros(d, 5, 3, 1, 3);
                Tensor wOther = Tensor.zeros(d, 5, 3, 3, 4); Tensor w = Tensor.zeros(d, 5, 3, 3, 3);
                Tensor square = Tensor.zeros(d, 1, 4, 4, 3); Tensor wSquare = Tensor.zeros(d, 3, 3, 3, 3);
                Tensor flat = Tensor.zeros(d, 16, 3)) {
            assertMessage(() -> Conv2d.forward(x, w2, 0f, y), "not supported");
            assertMessage(() -> Conv2d.forward(x, wRect, 0f, y), "square");
            assertMessage(() -> Conv2d.forward(x, wOther, 0f, y), "channels");
            assertMessage(() -> Conv2d.backwardInput(y, wOther, 0f, x), "must be");
            assertMessage(() -> Conv2d.backwardInput(x, w, 0f, x), "channels");
            assertMessage(() -> Conv2d.backwardWeight(x, x, 0f, w), "dy must be");
            assertMessage(() -> Conv2d.forward(flat, w, 0f, y), "rank 4");
            assertMessage(() -> Conv2d.forward(x, w, Float.NaN, y), "beta");
            assertMessage(() -> Conv2d.forward(x, w, 0f, x), "must be");
            assertMessage(() -> Conv2d.forward(square, wSquare, 0f, square), "share memory");
            assertMessage(() -> Conv2d.backwardInput(square, wSquare, 1f, square), "share memory");
            assertMessage(() -> Conv2d.forwardNormalized(x, w, 1f, w, y), "share memory");
        }
    }

    private static void assertMessage(org.junit.jupiter.api.function.Executable call, String part) {
        var e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(part), e.getMessage());
    }
}
