package dev.ambient.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * 2x2 average pooling and nearest 2x upsampling: forward against float64, backward by finite
 * differences of the reference and by the adjoint identity {@code <f(x), y> = <x, f^T(y)>}.
 */
class ResampleTest {

    /** The small tensor's [N, h, w, C]; pooling maps [N, 2h, 2w, C] onto it, upsampling maps it up. */
    static Stream<long[]> shapes() {
        return Stream.of(new long[] {1, 1, 1, 1}, new long[] {1, 3, 5, 3}, new long[] {2, 7, 3, 17},
                new long[] {1, 5, 9, 67}, new long[] {3, 8, 8, 64}, new long[] {1, 4, 4, 130});
    }

    static double[] pool(double[] x, long[] s) {
        int n = (int) s[0], h = (int) s[1], w = (int) s[2], c = (int) s[3];
        double[] y = new double[n * h * w * c];
        for (int i = 0; i < n; i++)
            for (int r = 0; r < h; r++)
                for (int q = 0; q < w; q++)
                    for (int k = 0; k < c; k++) {
                        double sum = 0;
                        for (int d = 0; d < 4; d++) sum += x[((i * 2 * h + 2 * r + d / 2) * 2 * w + 2 * q + d % 2) * c + k];
                        y[((i * h + r) * w + q) * c + k] = sum / 4;
                    }
        return y;
    }

    static double[] upsample(double[] x, long[] s) {
        int n = (int) s[0], h = (int) s[1], w = (int) s[2], c = (int) s[3];
        double[] y = new double[4 * n * h * w * c];
        for (int i = 0; i < n; i++)
            for (int r = 0; r < 2 * h; r++)
                for (int q = 0; q < 2 * w; q++)
                    for (int k = 0; k < c; k++) y[((i * 2 * h + r) * 2 * w + q) * c + k] = x[((i * h + r / 2) * w + q / 2) * c + k];
        return y;
    }

    static double[] toDouble(float[] v) {
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) d[i] = v[i];
        return d;
    }

    static double dot(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += (double) a[i] * b[i];
        return s;
    }

    /** d<dy, f(x)>/dx_j by central differences at ~200 spread indices; returns want and got side by side. */
    static void assertGradient(String what, Function<double[], double[]> f, float[] x, float[] dy, float[] got) {
        int step = x.length > 400 ? (x.length / 200) | 1 : 1, m = (x.length + step - 1) / step;
        double[] xd = toDouble(x), want = new double[m];
        float[] have = new float[m];
        double h = 1e-3;
        for (int t = 0; t < m; t++) {
            int j = t * step;
            xd[j] = x[j] + h;
            double[] plus = f.apply(xd);
            xd[j] = x[j] - h;
            double[] minus = f.apply(xd);
            xd[j] = x[j];
            double g = 0;
            for (int i = 0; i < dy.length; i++) g += dy[i] * (plus[i] - minus[i]);
            want[t] = g / (2 * h);
            have[t] = got[j];
        }
        TestSupport.assertClose(what, want, have, 1e-6, 1e-5);
    }

    @ParameterizedTest
    @MethodSource("shapes")
    void avgPool2x2(long[] small) {
        Device d = Device.cpu();
        SplittableRandom random = TestSupport.freshRandom();
        long[] big = {small[0], 2 * small[1], 2 * small[2], small[3]};
        int ns = Math.toIntExact(small[0] * small[1] * small[2] * small[3]);
        float[] x = TestSupport.uniform(random, 4 * ns, 3), dy = TestSupport.uniform(random, ns, 1);
        try (Tensor tx = Tensor.of(d, x, big); Tensor tdy = Tensor.of(d, dy, small);
                Tensor ty = TestSupport.poison(Tensor.allocate(d, small)); Tensor tdx = TestSupport.poison(Tensor.allocate(d, big))) {
            float[] y = Resample.avgPool2x2(tx, ty).toArray();
            TestSupport.assertClose("avg_pool2x2 forward", pool(toDouble(x), small), y, 1e-6, 1e-6);
            float[] dx = Resample.avgPool2x2Backward(tdy, tdx).toArray();
            assertGradient("avg_pool2x2 backward", v -> pool(v, small), x, dy, dx);
            assertEquals(dot(y, dy), dot(x, dx), 1e-5 * Math.abs(dot(y, dy)) + 1e-6, "adjoint identity");
            try (Tensor y2 = Resample.avgPool2x2(tx); Tensor dx2 = Resample.avgPool2x2Backward(tdy)) {
                assertArrayEquals(small, y2.shape());
                assertArrayEquals(y, y2.toArray());
                assertArrayEquals(big, dx2.shape());
                assertArrayEquals(dx, dx2.toArray());
            }
        }
    }

    @ParameterizedTest
    @MethodSource("shapes")
    void upsample2x(long[] small) {
        Device d = Device.cpu();
        SplittableRandom random = TestSupport.freshRandom();
        long[] big = {small[0], 2 * small[1], 2 * small[2], small[3]};
        int ns = Math.toIntExact(small[0] * small[1] * small[2] * small[3]);
        float[] x = TestSupport.uniform(random, ns, 3), dy = TestSupport.uniform(random, 4 * ns, 1);
        try (Tensor tx = Tensor.of(d, x, small); Tensor tdy = Tensor.of(d, dy, big);
                Tensor ty = TestSupport.poison(Tensor.allocate(d, big)); Tensor tdx = TestSupport.poison(Tensor.allocate(d, small))) {
            float[] y = Resample.upsample2x(tx, ty).toArray();
            TestSupport.assertClose("upsample2x forward", upsample(toDouble(x), small), y, 0, 0);
            float[] dx = Resample.upsample2xBackward(tdy, tdx).toArray();
            assertGradient("upsample2x backward", v -> upsample(v, small), x, dy, dx);
            assertEquals(dot(y, dy), dot(x, dx), 1e-5 * Math.abs(dot(y, dy)) + 1e-6, "adjoint identity");
            try (Tensor y2 = Resample.upsample2x(tx); Tensor dx2 = Resample.upsample2xBackward(tdy)) {
                assertArrayEquals(big, y2.shape());
                assertArrayEquals(y, y2.toArray());
                assertArrayEquals(small, dx2.shape());
                assertArrayEquals(dx, dx2.toArray());
            }
        }
    }

    @Test
    void badArgumentsAreRefused() {
        Device d = Device.cpu();
        try (Tensor odd = Tensor.zeros(d, 1, 5, 4, 3); Tensor x = Tensor.zeros(d, 1, 4, 4, 3); Tensor y = Tensor.zeros(d, 1, 2, 2, 3);
                Tensor wrong = Tensor.zeros(d, 1, 2, 3, 3); Tensor flat = Tensor.zeros(d, 16, 3)) {
            var h = assertThrows(IllegalArgumentException.class, () -> Resample.avgPool2x2(odd));
            assertTrue(h.getMessage().contains("H = 5") && h.getMessage().contains("even"), h.getMessage());
            var shape = assertThrows(IllegalArgumentException.class, () -> Resample.avgPool2x2(x, wrong));
            assertTrue(shape.getMessage().contains("y must be [1, 2, 2, 3]"), shape.getMessage());
            var rank = assertThrows(IllegalArgumentException.class, () -> Resample.upsample2x(flat));
            assertTrue(rank.getMessage().contains("NHWC"), rank.getMessage());
            var up = assertThrows(IllegalArgumentException.class, () -> Resample.upsample2x(y, odd));
            assertTrue(up.getMessage().contains("even") || up.getMessage().contains("must be"), up.getMessage());
            var back = assertThrows(IllegalArgumentException.class, () -> Resample.upsample2xBackward(odd));
            assertTrue(back.getMessage().contains("even"), back.getMessage());
            var nulls = assertThrows(IllegalArgumentException.class, () -> Resample.avgPool2x2(x, null));
            assertTrue(nulls.getMessage().contains("y is null"), nulls.getMessage());
        }
    }
}
