package dev.ambient.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** ambient_gemm against a float64 reference: every transpose combination, odd sizes, batches. */
class GemmTest {

    record Case(int batch, int m, int n, int k, boolean ta, boolean tb, float alpha, float beta) {
        @Override
        public String toString() {
            return "batch " + batch + " " + m + "x" + n + "x" + k + (ta ? " A^T" : "") + (tb ? " B^T" : "")
                    + " alpha " + alpha + " beta " + beta;
        }
    }

    static Stream<Case> cases() {
        List<Case> cases = new ArrayList<>();
        int[][] sizes = {{1, 1, 1}, {1, 300, 17}, {3, 5, 7}, {17, 31, 65}, {64, 64, 64}, {65, 129, 33}, {128, 67, 257}};
        for (int[] s : sizes) {
            for (int t = 0; t < 4; t++) cases.add(new Case(1, s[0], s[1], s[2], (t & 1) != 0, (t & 2) != 0, 1f, 0f));
        }
        cases.add(new Case(3, 33, 17, 40, false, false, 0.5f, 0f));
        cases.add(new Case(2, 20, 30, 10, true, true, -1.25f, 0.75f));
        cases.add(new Case(1, 256, 256, 256, false, true, 1f, 1f));
        cases.add(new Case(4, 1, 1, 100, false, false, 2f, -1f));
        return cases.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void matchesFloat64Reference(Case c) {
        Device d = Device.cpu();
        SplittableRandom random = TestSupport.freshRandom();
        int aRows = c.ta ? c.k : c.m, aCols = c.ta ? c.m : c.k;
        int bRows = c.tb ? c.n : c.k, bCols = c.tb ? c.k : c.n;
        float[] a = TestSupport.uniform(random, c.batch * aRows * aCols, 1);
        float[] b = TestSupport.uniform(random, c.batch * bRows * bCols, 1);
        float[] c0 = TestSupport.uniform(random, c.batch * c.m * c.n, 1);
        double[] want = new double[c0.length];
        double worstScale = 0;
        for (int p = 0; p < c.batch; p++) {
            for (int i = 0; i < c.m; i++) {
                for (int j = 0; j < c.n; j++) {
                    double sum = 0;
                    for (int q = 0; q < c.k; q++) {
                        double av = a[p * aRows * aCols + (c.ta ? q * aCols + i : i * aCols + q)];
                        double bv = b[p * bRows * bCols + (c.tb ? j * bCols + q : q * bCols + j)];
                        sum += av * bv;
                    }
                    int o = p * c.m * c.n + i * c.n + j;
                    want[o] = c.alpha * sum + (c.beta == 0 ? 0 : c.beta * (double) c0[o]);
                }
            }
            worstScale = Math.max(worstScale, Math.abs(c.alpha) * c.k + Math.abs(c.beta));
        }
        try (Tensor ta = Tensor.of(d, a, shape(c.batch, aRows, aCols)); Tensor tb = Tensor.of(d, b, shape(c.batch, bRows, bCols));
                Tensor tc = Tensor.allocate(d, shape(c.batch, c.m, c.n))) {
            if (c.beta == 0) TestSupport.poison(tc);
            else tc.copyFrom(c0);
            Gemm.matmul(ta, c.ta, tb, c.tb, c.alpha, c.beta, tc);
            // float32 accumulation over k terms of size <= 1: error grows like sqrt(k) ulps
            TestSupport.assertClose(c.toString(), want, tc.toArray(), 2e-6 * Math.sqrt(worstScale), 1e-5);
        }
    }

    private static long[] shape(int batch, int rows, int cols) {
        return batch == 1 ? new long[] {rows, cols} : new long[] {batch, rows, cols};
    }

    @Test
    void smallIntegersAreExact() {
        Device d = Device.cpu();
        try (Tensor a = Tensor.of(d, new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
                Tensor b = Tensor.of(d, new float[] {7, 8, 9, 10, 11, 12}, 3, 2);
                Tensor c = Gemm.matmul(a, b)) {
            assertArrayEquals(new float[] {58, 64, 139, 154}, c.toArray());
        }
    }

    @Test
    void allocatingFormHasTheProductShape() {
        Device d = Device.cpu();
        try (Tensor a = Tensor.zeros(d, 4, 3, 5); Tensor b = Tensor.zeros(d, 4, 7, 5); Tensor c = Gemm.matmul(a, false, b, true)) {
            assertArrayEquals(new long[] {4, 3, 7}, c.shape());
        }
    }

    @Test
    void badShapesAreRefusedBeforeTheCall() {
        Device d = Device.cpu();
        try (Tensor a = Tensor.zeros(d, 2, 3); Tensor b = Tensor.zeros(d, 4, 5); Tensor c = Tensor.zeros(d, 2, 5);
                Tensor b3 = Tensor.zeros(d, 1, 3, 5); Tensor wrongC = Tensor.zeros(d, 5, 2)) {
            var inner = assertThrows(IllegalArgumentException.class, () -> Gemm.matmul(a, false, b, false, 1, 0, c));
            assertTrue(inner.getMessage().contains("inner dimensions differ") && inner.getMessage().contains("A [2, 3]"), inner.getMessage());
            var rank = assertThrows(IllegalArgumentException.class, () -> Gemm.matmul(a, false, b3, false, 1, 0, c));
            assertTrue(rank.getMessage().contains("rank"), rank.getMessage());
            try (Tensor b35 = Tensor.zeros(d, 3, 5)) {
                var out = assertThrows(IllegalArgumentException.class, () -> Gemm.matmul(a, false, b35, false, 1, 0, wrongC));
                assertTrue(out.getMessage().contains("C must be 2 x 5"), out.getMessage());
                var nan = assertThrows(IllegalArgumentException.class, () -> Gemm.matmul(a, false, b35, false, Float.NaN, 0, c));
                assertTrue(nan.getMessage().contains("alpha"), nan.getMessage());
            }
        }
    }

    @Test
    void outputSharingMemoryWithAnInputIsRefused() {
        Device d = Device.cpu();
        try (Tensor a = Tensor.zeros(d, 4, 4); Tensor b = Tensor.zeros(d, 4, 4)) {
            var e = assertThrows(IllegalArgumentException.class, () -> Gemm.matmul(a, false, b, false, 1, 0, a));
            assertTrue(e.getMessage().contains("share memory"), e.getMessage());
        }
    }

    @Test
    void closedTensorsAreRefused() {
        Device d = Device.cpu();
        Tensor a = Tensor.zeros(d, 2, 2);
        try (Tensor b = Tensor.zeros(d, 2, 2); Tensor c = Tensor.zeros(d, 2, 2)) {
            a.close();
            var e = assertThrows(IllegalStateException.class, () -> Gemm.matmul(a, false, b, false, 1, 0, c));
            assertTrue(e.getMessage().contains("closed"), e.getMessage());
        }
    }
}
