package dev.ambient.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Activation clipping and dropout: forward against float64, backward by finite differences and mask identity. */
class ActivationsTest {

    static Stream<long[]> shapes() {
        return Stream.of(new long[] {1}, new long[] {1, 3, 5, 7}, new long[] {2, 9, 11, 67}, new long[] {4, 16, 16, 64},
                new long[] {3, 33, 31, 3});
    }

    private static int count(long[] shape) {
        return Math.toIntExact(Arrays.stream(shape).reduce(1, (a, b) -> a * b));
    }

    static double clip(double x, double limit) {
        return Math.min(Math.max(x, -limit), limit);
    }

    @ParameterizedTest
    @MethodSource("shapes")
    void clipForwardAndBackward(long[] shape) {
        Device d = Device.cpu();
        SplittableRandom random = TestSupport.freshRandom();
        int n = count(shape);
        float limit = 1.5f;
        float[] x = TestSupport.uniform(random, n, 3), dy = TestSupport.uniform(random, n, 1);
        double[] y = new double[n], dx = new double[n];
        double h = 1e-4;
        for (int i = 0; i < n; i++) {
            y[i] = clip(x[i], limit);
            if (Math.abs(Math.abs(x[i]) - limit) > 2 * h) {
                dx[i] = dy[i] * (clip(x[i] + h, limit) - clip(x[i] - h, limit)) / (2 * h); // central difference
            } else {
                dx[i] = Math.abs(x[i]) < limit ? dy[i] : 0; // at the kink: the stated convention
            }
        }
        try (Tensor tx = Tensor.of(d, x, shape); Tensor tdy = Tensor.of(d, dy, shape);
                Tensor ty = TestSupport.poison(Tensor.allocate(d, shape)); Tensor tdx = TestSupport.poison(Tensor.allocate(d, shape))) {
            TestSupport.assertClose("clip forward", y, Activations.clip(tx, limit, ty).toArray(), 0, 0);
            TestSupport.assertClose("clip backward", dx, Activations.clipBackward(tx, tdy, limit, tdx).toArray(), 1e-9, 1e-6);
            Activations.clip(tx, limit, tx);
            TestSupport.assertClose("clip in place", y, tx.toArray(), 0, 0);
        }
    }

    @Test
    void clipPassesNaNAndTheLimitItself() {
        Device d = Device.cpu();
        try (Tensor x = Tensor.of(d, new float[] {Float.NaN, 2f, -2f, 300f, -1000f, 0.5f}, 6)) {
            float[] y = Activations.clip(x, 2f).toArray();
            assertTrue(Float.isNaN(y[0]));
            assertArrayEquals(new float[] {2f, -2f, 2f, -2f, 0.5f}, Arrays.copyOfRange(y, 1, 6));
            try (Tensor ones = Tensor.of(d, new float[] {1, 1, 1, 1, 1, 1}, 6); Tensor dx = Tensor.allocate(d, 6)) {
                assertArrayEquals(new float[] {0, 0, 0, 0, 0, 1}, Activations.clipBackward(x, ones, 2f, dx).toArray());
            }
        }
    }

    /** {count, offset} and p. */
    record DropoutCase(int count, long offset, float p) {}

    static Stream<DropoutCase> dropoutCases() {
        return Stream.of(new DropoutCase(1, 3, 0.5f), new DropoutCase(7, 0, 0.13f), new DropoutCase(200_003, 5, 0.13f),
                new DropoutCase(100_000, 0, 0.5f), new DropoutCase(65_537, 1, 0.9f), new DropoutCase(1000, 2, 0f));
    }

    @ParameterizedTest
    @MethodSource("dropoutCases")
    void dropoutForwardAndBackward(DropoutCase c) {
        Device d = Device.cpu();
        SplittableRandom random = TestSupport.freshRandom();
        int n = c.count();
        long seed = random.nextLong(), stream = 17;
        float[] x = TestSupport.uniform(random, n, 2), dy = TestSupport.uniform(random, n, 1);
        try (Tensor tx = Tensor.of(d, x, n); Tensor tdy = Tensor.of(d, dy, n); Tensor u = RandomNumbers.uniform(d, seed, stream, c.offset(), n);
                Tensor ty = TestSupport.poison(Tensor.allocate(d, n)); Tensor tdx = TestSupport.poison(Tensor.allocate(d, n))) {
            float[] us = u.toArray();
            double scale = 1.0 / (1.0 - c.p());
            double[] y = new double[n], dx = new double[n];
            int kept = 0;
            for (int i = 0; i < n; i++) {
                boolean keep = us[i] >= c.p();
                if (keep) kept++;
                y[i] = keep ? x[i] * scale : 0;
                dx[i] = keep ? dy[i] * scale : 0;
            }
            float[] got = Activations.dropout(tx, c.p(), seed, stream, c.offset(), ty).toArray();
            TestSupport.assertClose("dropout forward", y, got, 0, 1e-6);
            TestSupport.assertClose("dropout backward (same mask)", dx,
                    Activations.dropoutBackward(tdy, c.p(), seed, stream, c.offset(), tdx).toArray(), 0, 1e-6);
            if (n >= 10_000) {
                double fraction = (double) kept / n, sd = Math.sqrt(c.p() * (1.0 - c.p()) / n);
                assertEquals(1 - c.p(), fraction, 5 * sd, "kept fraction");
            }
            if (c.p() == 0) assertArrayEquals(x, got, "p = 0 is the identity");
            // two calls with offsets are one call
            int k = n / 3 + 1;
            if (k < n) {
                try (Tensor a = Tensor.of(d, Arrays.copyOfRange(x, 0, k), k); Tensor b = Tensor.of(d, Arrays.copyOfRange(x, k, n), n - k)) {
                    float[] joined = new float[n];
                    System.arraycopy(Activations.dropout(a, c.p(), seed, stream, c.offset(), a).toArray(), 0, joined, 0, k);
                    System.arraycopy(Activations.dropout(b, c.p(), seed, stream, c.offset() + k, b).toArray(), 0, joined, k, n - k);
                    assertArrayEquals(got, joined, "split at " + k);
                }
            }
        }
    }

    @Test
    void badArgumentsAreRefused() {
        Device d = Device.cpu();
        try (Tensor x = Tensor.zeros(d, 2, 4); Tensor y = Tensor.zeros(d, 2, 4); Tensor z = Tensor.zeros(d, 4, 2)) {
            var one = assertThrows(IllegalArgumentException.class, () -> Activations.dropout(x, 1f, 0, 0, 0, y));
            assertTrue(one.getMessage().contains("p = 1.0 must be in [0, 1)"), one.getMessage());
            var nan = assertThrows(IllegalArgumentException.class, () -> Activations.dropoutBackward(x, Float.NaN, 0, 0, 0, y));
            assertTrue(nan.getMessage().contains("p = NaN"), nan.getMessage());
            var offset = assertThrows(IllegalArgumentException.class, () -> Activations.dropout(x, 0.1f, 0, 0, -4, y));
            assertTrue(offset.getMessage().contains("offset = -4"), offset.getMessage());
            var limit = assertThrows(IllegalArgumentException.class, () -> Activations.clip(x, Float.POSITIVE_INFINITY, y));
            assertTrue(limit.getMessage().contains("limit = Infinity"), limit.getMessage());
            var negative = assertThrows(IllegalArgumentException.class, () -> Activations.clip(x, -1f));
            assertTrue(negative.getMessage().contains("non-negative"), negative.getMessage());
            var shape = assertThrows(IllegalArgumentException.class, () -> Activations.clip(x, 1f, z));
            assertTrue(shape.getMessage().contains("same shape"), shape.getMessage());
        }
    }
}
