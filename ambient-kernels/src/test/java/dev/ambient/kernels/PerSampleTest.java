package dev.ambient.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Per-sample axpby and scale against float64, in place on x and on y, and refused arguments. */
class PerSampleTest {

    /** x shapes [N, ...]; the last is over the native parallel threshold. */
    static Stream<long[]> shapes() {
        return Stream.of(new long[] {1}, new long[] {7}, new long[] {1, 3, 5, 7}, new long[] {3, 5, 5, 3},
                new long[] {2, 9, 11, 67}, new long[] {5, 17, 3}, new long[] {4, 16, 16, 128});
    }

    private static int count(long[] shape) {
        return Math.toIntExact(Arrays.stream(shape).reduce(1, (a, b) -> a * b));
    }

    @ParameterizedTest
    @MethodSource("shapes")
    void axpbyAndScale(long[] shape) {
        Device d = Device.cpu();
        SplittableRandom random = TestSupport.freshRandom();
        int n = (int) shape[0], count = count(shape), size = count / n;
        float[] alpha = TestSupport.uniform(random, n, 2), beta = TestSupport.uniform(random, n, 2),
                x = TestSupport.uniform(random, count, 3), y = TestSupport.uniform(random, count, 3);
        double[] axpby = new double[count], scale = new double[count];
        for (int e = 0; e < count; e++) {
            int i = e / size;
            axpby[e] = (double) alpha[i] * x[e] + (double) beta[i] * y[e];
            scale[e] = (double) alpha[i] * x[e];
        }
        // alpha as [N], beta as [N, 1, ...]: any shape of N values is accepted
        long[] column = new long[shape.length];
        Arrays.fill(column, 1);
        column[0] = n;
        try (Tensor ta = Tensor.of(d, alpha, n); Tensor tb = Tensor.of(d, beta, column); Tensor tx = Tensor.of(d, x, shape);
                Tensor ty = Tensor.of(d, y, shape); Tensor out = TestSupport.poison(Tensor.allocate(d, shape))) {
            assertSame(out, PerSample.axpby(ta, tx, tb, ty, out));
            TestSupport.assertClose("sample_axpby", axpby, out.toArray(), 1e-6, 1e-6);
            try (Tensor fresh = PerSample.axpby(ta, tx, tb, ty)) {
                assertArrayEquals(out.toArray(), fresh.toArray());
            }
            TestSupport.poison(out);
            PerSample.scale(ta, tx, out);
            TestSupport.assertClose("sample scale", scale, out.toArray(), 0, 1e-7);
            try (Tensor fresh = PerSample.scale(ta, tx)) {
                assertArrayEquals(out.toArray(), fresh.toArray());
            }
            // in place: out = x, then out = y
            PerSample.axpby(ta, tx, tb, ty, tx);
            TestSupport.assertClose("sample_axpby out = x", axpby, tx.toArray(), 1e-6, 1e-6);
            tx.copyFrom(x);
            PerSample.axpby(ta, tx, tb, ty, ty);
            TestSupport.assertClose("sample_axpby out = y", axpby, ty.toArray(), 1e-6, 1e-6);
            PerSample.scale(ta, tx, tx);
            TestSupport.assertClose("sample scale out = x", scale, tx.toArray(), 0, 1e-7);
        }
    }

    @Test
    void accumulationWithSmallIntegersIsExact() {
        Device d = Device.cpu();
        float[] x = {1, 2, 3, 4, 5, 6}, y = {10, 20, 30, 40, 50, 60};
        try (Tensor ones = Tensor.of(d, new float[] {1, 1, 1}, 3); Tensor tx = Tensor.of(d, x, 3, 2);
                Tensor ty = Tensor.of(d, y, 3, 2)) {
            PerSample.axpby(ones, tx, ones, ty, ty); // y += x
            assertArrayEquals(new float[] {11, 22, 33, 44, 55, 66}, ty.toArray());
        }
    }

    @Test
    void yIsReadWhereBetaIsZero() {
        Device d = Device.cpu();
        try (Tensor a = Tensor.of(d, new float[] {2, 3}, 2); Tensor b = Tensor.of(d, new float[] {0, 0}, 2);
                Tensor x = Tensor.of(d, new float[] {1, 1}, 2, 1); Tensor y = Tensor.of(d, new float[] {Float.NaN, 5}, 2, 1)) {
            float[] out = PerSample.axpby(a, x, b, y).toArray();
            assertTrue(Float.isNaN(out[0]), "0 * NaN is NaN: " + out[0]);
            assertEquals(3f, out[1]);
        }
    }

    @Test
    void emptyBatchIsANoOp() {
        Device d = Device.cpu();
        try (Tensor a = Tensor.allocate(d, 0); Tensor x = Tensor.allocate(d, 0, 4); Tensor out = Tensor.allocate(d, 0, 4)) {
            assertSame(out, PerSample.axpby(a, x, a, x, out));
            assertSame(out, PerSample.scale(a, x, out));
        }
    }

    @Test
    void badArgumentsAreRefused() {
        Device d = Device.cpu();
        try (Tensor a = Tensor.zeros(d, 2); Tensor a3 = Tensor.zeros(d, 3); Tensor x = Tensor.zeros(d, 2, 3, 3, 4);
                Tensor y = Tensor.zeros(d, 2, 3, 3, 4); Tensor y2 = Tensor.zeros(d, 2, 3, 4, 3); Tensor out = Tensor.zeros(d, 2, 36);
                Tensor column = Tensor.zeros(d, 2, 1); Tensor other = Tensor.zeros(d, 2, 1)) {
            var length = assertThrows(IllegalArgumentException.class, () -> PerSample.axpby(a3, x, a, y, y));
            assertTrue(length.getMessage().contains("alpha must hold one value per sample, N = 2, but holds 3"), length.getMessage());
            assertTrue(length.getMessage().contains("x [2, 3, 3, 4]"), length.getMessage());
            var betaLength = assertThrows(IllegalArgumentException.class, () -> PerSample.axpby(a, x, a3, y, y));
            assertTrue(betaLength.getMessage().contains("beta must hold"), betaLength.getMessage());
            var yShape = assertThrows(IllegalArgumentException.class, () -> PerSample.axpby(a, x, a, y2, x));
            assertTrue(yShape.getMessage().contains("x [2, 3, 3, 4] and y [2, 3, 4, 3] must have the same shape"), yShape.getMessage());
            var outShape = assertThrows(IllegalArgumentException.class, () -> PerSample.scale(a, x, out));
            assertTrue(outShape.getMessage().contains("same shape"), outShape.getMessage());
            var pair = assertThrows(IllegalArgumentException.class, () -> PerSample.axpby(a, x, null, y, x));
            assertTrue(pair.getMessage().contains("both null or both given"), pair.getMessage());
            assertThrows(IllegalArgumentException.class, () -> PerSample.axpby(a, x, a, null, x));
            var alias = assertThrows(IllegalArgumentException.class, () -> PerSample.scale(column.reshape(2), column, column));
            assertTrue(alias.getMessage().contains("out and alpha share memory"), alias.getMessage());
            var betaAlias = assertThrows(IllegalArgumentException.class, () -> PerSample.axpby(a, column, column.reshape(2), other, column));
            assertTrue(betaAlias.getMessage().contains("out and beta share memory"), betaAlias.getMessage());
            var missing = assertThrows(IllegalArgumentException.class, () -> PerSample.scale(null, x, x));
            assertTrue(missing.getMessage().contains("alpha is null"), missing.getMessage());
        }
    }
}
