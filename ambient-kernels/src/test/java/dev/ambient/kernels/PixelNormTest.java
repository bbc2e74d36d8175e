package dev.ambient.kernels;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Pixel normalisation over the channels of NHWC tensors; backward by finite differences. */
class PixelNormTest {

    static Stream<long[]> shapes() {
        return Stream.of(new long[] {1, 1, 1, 1}, new long[] {1, 3, 5, 7}, new long[] {2, 9, 11, 67},
                new long[] {3, 8, 8, 128}, new long[] {1, 33, 31, 3});
    }

    private static double[] normalizeRow(double[] x, double eps) {
        double sum = 0;
        for (double v : x) sum += v * v;
        double d = eps + Math.sqrt(sum / x.length);
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) y[i] = x[i] / d;
        return y;
    }

    @ParameterizedTest
    @MethodSource("shapes")
    void forwardAndBackward(long[] shape) {
        Device d = Device.cpu();
        SplittableRandom random = TestSupport.freshRandom();
        int c = (int) shape[3], rows = Math.toIntExact(shape[0] * shape[1] * shape[2]);
        float[] x = TestSupport.uniform(random, rows * c, 3), dy = TestSupport.uniform(random, rows * c, 1);
        double eps = PixelNorm.DEFAULT_EPS;
        double[] y = new double[rows * c], dx = new double[rows * c];
        double[] row = new double[c];
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < c; j++) row[j] = x[r * c + j];
            System.arraycopy(normalizeRow(row, eps), 0, y, r * c, c);
            for (int j = 0; j < c; j++) {
                double h = 1e-5, keep = row[j];
                row[j] = keep + h;
                double[] plus = normalizeRow(row, eps);
                row[j] = keep - h;
                double[] minus = normalizeRow(row, eps);
                row[j] = keep;
                double g = 0;
                for (int i = 0; i < c; i++) g += dy[r * c + i] * (plus[i] - minus[i]) / (2 * h);
                dx[r * c + j] = g;
            }
        }
        try (Tensor tx = Tensor.of(d, x, shape); Tensor tdy = Tensor.of(d, dy, shape);
                Tensor ty = TestSupport.poison(Tensor.allocate(d, shape)); Tensor tdx = TestSupport.poison(Tensor.allocate(d, shape))) {
            TestSupport.assertClose("pixel_norm forward", y, PixelNorm.forward(tx, PixelNorm.DEFAULT_EPS, ty).toArray(), 1e-6, 1e-5);
            TestSupport.assertClose("pixel_norm backward", dx, PixelNorm.backward(tx, tdy, PixelNorm.DEFAULT_EPS, tdx).toArray(),
                    1e-5, 1e-4);
        }
    }

    @Test
    void badArgumentsAreRefused() {
        Device d = Device.cpu();
        try (Tensor x = Tensor.zeros(d, 2, 4); Tensor y = Tensor.zeros(d, 2, 4)) {
            var eps = assertThrows(IllegalArgumentException.class, () -> PixelNorm.forward(x, 0f, y));
            assertTrue(eps.getMessage().contains("eps"), eps.getMessage());
            var alias = assertThrows(IllegalArgumentException.class, () -> PixelNorm.backward(x, y, 1e-4f, x));
            assertTrue(alias.getMessage().contains("share memory"), alias.getMessage());
        }
    }
}
