package dev.ambient.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Sum of squares, NaN guard, Adam (with and without clipping) and EMA against double references. */
class OptimizerTest {

    static Stream<Integer> counts() {
        return Stream.of(1, 7, 4097, 65537, 1_000_003);
    }

    @ParameterizedTest
    @MethodSource("counts")
    void sumSquaresAccumulatesInDoubleAndIgnoresThreads(int count) {
        Device d = Device.cpu();
        float[] x = TestSupport.uniform(TestSupport.freshRandom(), count, 3);
        double want = 0;
        for (float v : x) want += (double) v * v;
        try (Tensor t = Tensor.of(d, x, count); Tensor result = Tensor.of(d, new float[] {Float.NaN}, 1)) {
            float got = Optimizer.sumSquares(t, false, result).toArray()[0];
            TestSupport.assertClose("sum_squares", new double[] {want}, new float[] {got}, 0, 1e-6);
            result.copyFrom(new float[] {2.5f});
            TestSupport.assertClose("sum_squares accumulate", new double[] {want + 2.5},
                    Optimizer.sumSquares(t, true, result).toArray(), 0, 1e-6);
            for (int threads : new int[] {1, 3}) {
                d.setThreads(threads);
                try {
                    assertEquals(Float.floatToRawIntBits(got), Float.floatToRawIntBits(Optimizer.sumSquares(t)), threads + " threads");
                } finally {
                    d.setThreads(0);
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource("counts")
    void nanGuardZeroesNaNAndInfinities(int count) {
        Device d = Device.cpu();
        SplittableRandom random = TestSupport.freshRandom();
        float[] x = TestSupport.uniform(random, count, 1);
        float[] specials = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.intBitsToFloat(0xFFC00001)};
        long planted = 0;
        for (int i = 0; i < count; i += 1 + random.nextInt(5000)) {
            x[i] = specials[random.nextInt(specials.length)];
            planted++;
        }
        if (count > 3 && Float.isFinite(x[count - 1]) && Float.isFinite(x[count - 2])) {
            x[count - 1] = Float.MAX_VALUE;
            x[count - 2] = -Float.MIN_VALUE;
        }
        try (Tensor t = Tensor.of(d, x, count)) {
            assertEquals(planted, Optimizer.nanGuard(t));
            float[] got = t.toArray();
            for (int i = 0; i < count; i++) {
                if (Float.isFinite(x[i])) assertEquals(Float.floatToRawIntBits(x[i]), Float.floatToRawIntBits(got[i]), "element " + i);
                else assertEquals(0, Float.floatToRawIntBits(got[i]), "element " + i + " must become +0");
            }
            assertEquals(0, Optimizer.nanGuard(t));
        }
    }

    /** clip: 0 none, 1 norm above maxNorm (clipped), 2 norm below maxNorm. */
    record AdamCase(int count, int clip) {}

    static Stream<AdamCase> adamCases() {
        return Stream.of(1, 1003, 100_003).flatMap(n -> Stream.of(0, 1, 2).map(c -> new AdamCase(n, c)));
    }

    @ParameterizedTest
    @MethodSource("adamCases")
    void adamFollowsTheDoubleReferenceOverSeveralSteps(AdamCase c) {
        Device d = Device.cpu();
        SplittableRandom random = TestSupport.freshRandom();
        int n = c.count();
        float[] p0 = TestSupport.uniform(random, n, 1);
        double[] p = new double[n], m = new double[n], v = new double[n];
        for (int i = 0; i < n; i++) p[i] = p0[i];
        float lr = 1e-2f, b1 = 0.9f, b2 = 0.99f, eps = 1e-8f;
        try (Tensor param = Tensor.of(d, p0, n); Tensor grad = Tensor.allocate(d, n); Tensor tm = Tensor.zeros(d, n);
                Tensor tv = Tensor.zeros(d, n); Tensor norm2 = Tensor.allocate(d, 1)) {
            for (int step = 1; step <= 5; step++) {
                float[] g = TestSupport.uniform(random, n, 0.5);
                grad.copyFrom(g);
                double sum = Optimizer.sumSquares(grad, false, norm2).toArray()[0], norm = Math.sqrt(sum);
                float maxNorm = c.clip() == 1 ? (float) (0.3 * norm) : (float) (3 * norm + 1);
                double factor = c.clip() == 0 ? 1 : Math.min(1, maxNorm / norm);
                if (c.clip() == 1) assertTrue(factor < 1);
                Optimizer.adamStep(param, grad, tm, tv, lr, b1, b2, eps, step, c.clip() == 0 ? null : norm2, maxNorm);
                for (int i = 0; i < n; i++) {
                    double gi = g[i] * factor;
                    m[i] = b1 * m[i] + (1 - (double) b1) * gi;
                    v[i] = b2 * v[i] + (1 - (double) b2) * gi * gi;
                    double mh = m[i] / (1 - Math.pow(b1, step)), vh = v[i] / (1 - Math.pow(b2, step));
                    p[i] -= lr * mh / (Math.sqrt(vh) + eps);
                }
            }
            TestSupport.assertClose("adam param", p, param.toArray(), 2e-6, 1e-6);
            TestSupport.assertClose("adam m", m, tm.toArray(), 1e-7, 1e-5);
            TestSupport.assertClose("adam v", v, tv.toArray(), 1e-9, 1e-5);
        }
    }

    @ParameterizedTest
    @MethodSource("counts")
    void emaMovesTowardTheParameters(int count) {
        Device d = Device.cpu();
        SplittableRandom random = TestSupport.freshRandom();
        float[] p = TestSupport.uniform(random, count, 1), e = TestSupport.uniform(random, count, 1);
        for (float beta : new float[] {0f, 0.5f, 0.999f, 1f}) {
            double[] want = new double[count];
            for (int i = 0; i < count; i++) want[i] = e[i] + (1 - (double) beta) * ((double) p[i] - e[i]);
            try (Tensor tp = Tensor.of(d, p, count); Tensor te = Tensor.of(d, e, count)) {
                Optimizer.emaUpdate(tp, te, beta);
                TestSupport.assertClose("ema beta " + beta, want, te.toArray(), 1e-7, 1e-6);
            }
        }
    }

    @Test
    void badArgumentsAreRefused() {
        Device d = Device.cpu();
        try (Tensor a = Tensor.zeros(d, 4); Tensor b = Tensor.zeros(d, 4); Tensor c = Tensor.zeros(d, 4); Tensor e = Tensor.zeros(d, 4);
                Tensor other = Tensor.zeros(d, 5); Tensor two = Tensor.zeros(d, 2); Tensor one = Tensor.of(d, new float[] {4}, 1)) {
            var step = assertThrows(IllegalArgumentException.class, () -> Optimizer.adamStep(a, b, c, e, 1e-3f, 0.9f, 0.99f, 1e-8f, 0, null, 1));
            assertTrue(step.getMessage().contains("step"), step.getMessage());
            assertThrows(IllegalArgumentException.class, () -> Optimizer.adamStep(a, b, c, e, 1e-3f, 1f, 0.99f, 1e-8f, 1, null, 1));
            assertThrows(IllegalArgumentException.class, () -> Optimizer.adamStep(a, b, c, e, 1e-3f, 0.9f, 0.99f, 0f, 1, null, 1));
            assertThrows(IllegalArgumentException.class, () -> Optimizer.adamStep(a, b, c, e, -1f, 0.9f, 0.99f, 1e-8f, 1, null, 1));
            var norm = assertThrows(IllegalArgumentException.class, () -> Optimizer.adamStep(a, b, c, e, 1e-3f, 0.9f, 0.99f, 1e-8f, 1, one, 0));
            assertTrue(norm.getMessage().contains("maxNorm"), norm.getMessage());
            assertThrows(IllegalArgumentException.class, () -> Optimizer.adamStep(a, b, c, e, 1e-3f, 0.9f, 0.99f, 1e-8f, 1, two, 1));
            var alias = assertThrows(IllegalArgumentException.class, () -> Optimizer.adamStep(a, a, c, e, 1e-3f, 0.9f, 0.99f, 1e-8f, 1, null, 1));
            assertTrue(alias.getMessage().contains("share memory"), alias.getMessage());
            var shape = assertThrows(IllegalArgumentException.class, () -> Optimizer.adamStep(a, other, c, e, 1e-3f, 0.9f, 0.99f, 1e-8f, 1, null, 1));
            assertTrue(shape.getMessage().contains("same shape"), shape.getMessage());
            assertThrows(IllegalArgumentException.class, () -> Optimizer.emaUpdate(a, a, 0.5f));
            assertThrows(IllegalArgumentException.class, () -> Optimizer.emaUpdate(a, b, 1.5f));
            assertThrows(IllegalArgumentException.class, () -> Optimizer.emaUpdate(a, b, Float.NaN));
            assertThrows(IllegalArgumentException.class, () -> Optimizer.sumSquares(a, false, two));
            assertThrows(IllegalArgumentException.class, () -> Optimizer.sumSquares(a, false, a));
        }
    }
}
