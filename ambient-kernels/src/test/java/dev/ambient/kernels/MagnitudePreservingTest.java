package dev.ambient.kernels;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import java.util.function.DoubleUnaryOperator;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** mp_silu and mp_sum, forward against float64, backward against finite differences. */
class MagnitudePreservingTest {

    static Stream<long[]> shapes() {
        return Stream.of(new long[] {1}, new long[] {1, 3, 5, 7}, new long[] {2, 9, 11, 67}, new long[] {4, 16, 16, 128},
                new long[] {3, 33, 31, 3});
    }

    private static int count(long[] shape) {
        long n = 1;
        for (long s : shape) n *= s;
        return Math.toIntExact(n);
    }

    static double mpSilu(double x) {
        return x / (1 + Math.exp(-x)) / 0.596;
    }

    /** Central difference of f at x. */
    static double derivative(DoubleUnaryOperator f, double x) {
        double h = 1e-5 * Math.max(1, Math.abs(x));
        return (f.applyAsDouble(x + h) - f.applyAsDouble(x - h)) / (2 * h);
    }

    @ParameterizedTest
    @MethodSource("shapes")
    void siluForwardAndBackward(long[] shape) {
        Device d = Device.cpu();
        SplittableRandom random = TestSupport.freshRandom();
        int n = count(shape);
        float[] x = TestSupport.uniform(random, n, 6), dy = TestSupport.uniform(random, n, 1);
        double[] y = new double[n], dx = new double[n];
        for (int i = 0; i < n; i++) {
            y[i] = mpSilu(x[i]);
            dx[i] = dy[i] * derivative(MagnitudePreservingTest::mpSilu, x[i]);
        }
        try (Tensor tx = Tensor.of(d, x, shape); Tensor tdy = Tensor.of(d, dy, shape);
                Tensor ty = TestSupport.poison(Tensor.allocate(d, shape)); Tensor tdx = TestSupport.poison(Tensor.allocate(d, shape))) {
            TestSupport.assertClose("mp_silu forward", y, MagnitudePreserving.silu(tx, ty).toArray(), 1e-6, 2e-6);
            TestSupport.assertClose("mp_silu backward", dx, MagnitudePreserving.siluBackward(tx, tdy, tdx).toArray(), 1e-5, 1e-5);
            // in place: the output is the input
            MagnitudePreserving.silu(tx, tx);
            TestSupport.assertClose("mp_silu in place", y, tx.toArray(), 1e-6, 2e-6);
        }
    }

    @ParameterizedTest
    @MethodSource("shapes")
    void sumForwardAndBackward(long[] shape) {
        Device d = Device.cpu();
        SplittableRandom random = TestSupport.freshRandom();
        int n = count(shape);
        float t = (float) random.nextDouble();
        float[] a = TestSupport.uniform(random, n, 2), b = TestSupport.uniform(random, n, 2), dy = TestSupport.uniform(random, n, 1);
        double s = Math.sqrt((1 - t) * (1 - t) + (double) t * t);
        double[] y = new double[n], da = new double[n], db = new double[n];
        for (int i = 0; i < n; i++) {
            int j = i;
            y[i] = ((1 - t) * a[i] + (double) t * b[i]) / s;
            // gradients of dy * mp_sum by finite differences in each argument
            da[i] = dy[i] * derivative(v -> ((1 - t) * v + (double) t * b[j]) / s, a[i]);
            db[i] = dy[i] * derivative(v -> ((1 - t) * a[j] + (double) t * v) / s, b[i]);
        }
        try (Tensor ta = Tensor.of(d, a, shape); Tensor tb = Tensor.of(d, b, shape); Tensor tdy = Tensor.of(d, dy, shape);
                Tensor ty = TestSupport.poison(Tensor.allocate(d, shape)); Tensor tda = TestSupport.poison(Tensor.allocate(d, shape));
                Tensor tdb = TestSupport.poison(Tensor.allocate(d, shape))) {
            TestSupport.assertClose("mp_sum forward t=" + t, y, MagnitudePreserving.sum(ta, tb, t, ty).toArray(), 1e-6, 1e-6);
            MagnitudePreserving.sumBackward(tdy, t, tda, tdb);
            TestSupport.assertClose("mp_sum backward da", da, tda.toArray(), 1e-6, 1e-5);
            TestSupport.assertClose("mp_sum backward db", db, tdb.toArray(), 1e-6, 1e-5);
        }
    }

    @Test
    void badArgumentsAreRefused() {
        Device d = Device.cpu();
        try (Tensor a = Tensor.zeros(d, 2, 3); Tensor b = Tensor.zeros(d, 3, 2); Tensor c = Tensor.zeros(d, 2, 3)) {
            var shape = assertThrows(IllegalArgumentException.class, () -> MagnitudePreserving.silu(a, b));
            assertTrue(shape.getMessage().contains("same shape"), shape.getMessage());
            var t = assertThrows(IllegalArgumentException.class, () -> MagnitudePreserving.sum(a, c, Float.NaN, c));
            assertTrue(t.getMessage().contains("t = NaN"), t.getMessage());
            var same = assertThrows(IllegalArgumentException.class, () -> MagnitudePreserving.sumBackward(a, 0.3f, c, c));
            assertTrue(same.getMessage().contains("share memory"), same.getMessage());
            var nulls = assertThrows(IllegalArgumentException.class, () -> MagnitudePreserving.silu(a, null));
            assertTrue(nulls.getMessage().contains("y is null"), nulls.getMessage());
            // a view of the same memory works in place
            try (Tensor big = Tensor.zeros(d, 8); Tensor view = big.reshape(2, 4)) {
                MagnitudePreserving.silu(view, view);
            }
        }
    }
}
