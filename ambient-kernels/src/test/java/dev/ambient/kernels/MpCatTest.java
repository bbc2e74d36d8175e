package dev.ambient.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** mp_cat along channels: forward against float64, backward by finite differences and the adjoint identity. */
class MpCatTest {

    /** a's shape, b's channels and t. */
    record Case(long[] a, long cb, float t) {
        long[] b() {
            long[] s = a.clone();
            s[s.length - 1] = cb;
            return s;
        }

        long[] y() {
            long[] s = a.clone();
            s[s.length - 1] += cb;
            return s;
        }

        @Override
        public String toString() {
            return Arrays.toString(a) + " + " + cb + " channels, t " + t;
        }
    }

    static Stream<Case> cases() {
        return Stream.of(new Case(new long[] {1, 1, 1, 1}, 1, 0.5f), new Case(new long[] {2, 3, 5, 7}, 9, 0.3f),
                new Case(new long[] {1, 5, 3, 67}, 13, 0f), new Case(new long[] {4, 8, 8, 64}, 64, 0.5f),
                new Case(new long[] {7, 3}, 5, 1f), new Case(new long[] {3, 9, 7, 17}, 33, 0.7f));
    }

    private static int count(long[] shape) {
        return Math.toIntExact(Arrays.stream(shape).reduce(1, (x, y) -> x * y));
    }

    /** y of the double reference, rows of a and b side by side. */
    static double[] reference(float[] a, float[] b, int ca, int cb, double t) {
        double s = Math.sqrt((ca + cb) / ((1 - t) * (1 - t) + t * t));
        double wa = s * (1 - t) / Math.sqrt(ca), wb = s * t / Math.sqrt(cb);
        int rows = a.length / ca;
        double[] y = new double[rows * (ca + cb)];
        for (int r = 0; r < rows; r++) {
            for (int k = 0; k < ca; k++) y[r * (ca + cb) + k] = wa * a[r * ca + k];
            for (int k = 0; k < cb; k++) y[r * (ca + cb) + ca + k] = wb * b[r * cb + k];
        }
        return y;
    }

    @ParameterizedTest
    @MethodSource("cases")
    void forwardAndBackward(Case c) {
        Device d = Device.cpu();
        SplittableRandom random = TestSupport.freshRandom();
        int ca = (int) c.a()[c.a().length - 1], cb = (int) c.cb(), na = count(c.a()), nb = count(c.b()), ny = count(c.y());
        float[] a = TestSupport.uniform(random, na, 2), b = TestSupport.uniform(random, nb, 2), dy = TestSupport.uniform(random, ny, 1);
        double[] want = reference(a, b, ca, cb, c.t());
        // gradients of <dy, y(a, b)> by central differences, on up to ~200 elements of each input
        double[] da = new double[na], db = new double[nb];
        double h = 1e-3;
        for (int j = 0; j < na; j += Math.max(1, na / 200 | 1)) {
            float keep = a[j];
            a[j] = keep + (float) h;
            double plus = dot(dy, reference(a, b, ca, cb, c.t()));
            a[j] = keep - (float) h;
            double minus = dot(dy, reference(a, b, ca, cb, c.t()));
            a[j] = keep;
            da[j] = (plus - minus) / (((double) (keep + (float) h)) - (keep - (float) h));
        }
        for (int j = 0; j < nb; j += Math.max(1, nb / 200 | 1)) {
            float keep = b[j];
            b[j] = keep + (float) h;
            double plus = dot(dy, reference(a, b, ca, cb, c.t()));
            b[j] = keep - (float) h;
            double minus = dot(dy, reference(a, b, ca, cb, c.t()));
            b[j] = keep;
            db[j] = (plus - minus) / (((double) (keep + (float) h)) - (keep - (float) h));
        }
        try (Tensor ta = Tensor.of(d, a, c.a()); Tensor tb = Tensor.of(d, b, c.b()); Tensor tdy = Tensor.of(d, dy, c.y());
                Tensor ty = TestSupport.poison(Tensor.allocate(d, c.y())); Tensor tda = TestSupport.poison(Tensor.allocate(d, c.a()));
                Tensor tdb = TestSupport.poison(Tensor.allocate(d, c.b()))) {
            float[] y = MagnitudePreserving.cat(ta, tb, c.t(), ty).toArray();
            TestSupport.assertClose("mp_cat forward " + c, want, y, 1e-6, 1e-6);
            try (Tensor allocated = MagnitudePreserving.cat(ta, tb, c.t())) {
                assertTrue(Arrays.equals(c.y(), allocated.shape()));
                TestSupport.assertClose("mp_cat allocating", want, allocated.toArray(), 1e-6, 1e-6);
            }
            MagnitudePreserving.catBackward(tdy, c.t(), tda, tdb);
            float[] ga = tda.toArray(), gb = tdb.toArray();
            TestSupport.assertClose("mp_cat backward da", sampled(da, ga, na), sampledGot(ga, na), 1e-5, 1e-5);
            TestSupport.assertClose("mp_cat backward db", sampled(db, gb, nb), sampledGot(gb, nb), 1e-5, 1e-5);
            // linear: <y, dy> = <a, da> + <b, db>
            double left = dot(dy, y), right = dot(a, ga) + dot(b, gb);
            assertEquals(left, right, 1e-5 * Math.abs(left) + 1e-6, "adjoint identity");
        }
    }

    private static double[] sampled(double[] want, float[] got, int n) {
        int step = Math.max(1, n / 200 | 1), m = (n + step - 1) / step;
        double[] out = new double[m];
        for (int i = 0; i < m; i++) out[i] = want[i * step];
        return out;
    }

    private static float[] sampledGot(float[] got, int n) {
        int step = Math.max(1, n / 200 | 1), m = (n + step - 1) / step;
        float[] out = new float[m];
        for (int i = 0; i < m; i++) out[i] = got[i * step];
        return out;
    }

    private static double dot(float[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += a[i] * b[i];
        return s;
    }

    private static double dot(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += (double) a[i] * b[i];
        return s;
    }

    @Test
    void badArgumentsAreRefused() {
        Device d = Device.cpu();
        try (Tensor a = Tensor.zeros(d, 2, 3, 4); Tensor b = Tensor.zeros(d, 2, 3, 5); Tensor y = Tensor.zeros(d, 2, 3, 9);
                Tensor wrong = Tensor.zeros(d, 2, 4, 5); Tensor narrow = Tensor.zeros(d, 2, 3, 8);
                Tensor empty = Tensor.zeros(d, 2, 3, 0); Tensor four = Tensor.zeros(d, 2, 3, 4)) {
            var rows = assertThrows(IllegalArgumentException.class, () -> MagnitudePreserving.cat(a, wrong, 0.5f));
            assertTrue(rows.getMessage().contains("all dimensions but the last"), rows.getMessage());
            var channels = assertThrows(IllegalArgumentException.class, () -> MagnitudePreserving.cat(a, b, 0.5f, narrow));
            assertTrue(channels.getMessage().contains("Ca + Cb = 9"), channels.getMessage());
            var t = assertThrows(IllegalArgumentException.class, () -> MagnitudePreserving.cat(a, b, Float.NaN, y));
            assertTrue(t.getMessage().contains("t = NaN"), t.getMessage());
            var none = assertThrows(IllegalArgumentException.class, () -> MagnitudePreserving.cat(a, empty, 0.5f));
            assertTrue(none.getMessage().contains("no channels"), none.getMessage());
            try (Tensor view = four.reshape(2, 3, 4)) {
                var alias = assertThrows(IllegalArgumentException.class, () -> MagnitudePreserving.catBackward(narrow, 0.5f, four, view));
                assertTrue(alias.getMessage().contains("share memory"), alias.getMessage());
            }
            var nulls = assertThrows(IllegalArgumentException.class, () -> MagnitudePreserving.cat(a, null, 0.5f, y));
            assertTrue(nulls.getMessage().contains("b is null"), nulls.getMessage());
        }
    }
}
