package dev.ambient.model.sample;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;

/**
 * The sampler run with the exact denoiser of Gaussian data, D(x; s) = mu + S (S + s^2 I)^-1 (x - mu),
 * must reproduce the data's mean and covariance within sampling error.
 */
class HeunSamplerTest {

    private static final double[] MU = {0.3, -0.5};
    private static final double[][] COV = {{0.25, 0.1}, {0.1, 0.09}};

    private static void gaussianDenoiser(double[] x, int batch, double sigma, double[] out) {
        double s2 = sigma * sigma;
        double a = COV[0][0] + s2, b = COV[0][1], d = COV[1][1] + s2, det = a * d - b * b;
        double[][] inv = {{d / det, -b / det}, {-b / det, a / det}};
        for (int r = 0; r < batch; r++) {
            double u = x[2 * r] - MU[0], v = x[2 * r + 1] - MU[1];
            double p = inv[0][0] * u + inv[0][1] * v, q = inv[1][0] * u + inv[1][1] * v;
            out[2 * r] = MU[0] + COV[0][0] * p + COV[0][1] * q;
            out[2 * r + 1] = MU[1] + COV[1][0] * p + COV[1][1] * q;
        }
    }

    @Test
    void reproducesTheMeanAndCovarianceOfGaussianData() {
        int n = 40_000;
        long[] seeds = LongStream.range(0, n).toArray();
        // 256 steps: with EDM's 18 the discretisation itself inflates this covariance by ~11%
        // (a property of Heun at 18 steps, checked against the closed form in 1-D), which would
        // hide a real error in the sampler
        double[] x = new HeunSampler(256, 0.002, 80, 7).sample(HeunSamplerTest::gaussianDenoiser, HeunSampler.noise(seeds, 2), n);
        double[] mean = new double[2];
        for (int r = 0; r < n; r++) {
            mean[0] += x[2 * r] / n;
            mean[1] += x[2 * r + 1] / n;
        }
        double[][] cov = new double[2][2];
        for (int r = 0; r < n; r++) {
            for (int i = 0; i < 2; i++) {
                for (int j = 0; j < 2; j++) cov[i][j] += (x[2 * r + i] - mean[i]) * (x[2 * r + j] - mean[j]) / (n - 1);
            }
        }
        for (int i = 0; i < 2; i++) {
            double standardError = Math.sqrt(COV[i][i] / n);
            assertEquals(MU[i], mean[i], 5 * standardError, "mean[" + i + "]");
            for (int j = 0; j < 2; j++) {
                // the standard error of a sample covariance is about sqrt((S_ii S_jj + S_ij^2) / n)
                double se = Math.sqrt((COV[i][i] * COV[j][j] + COV[i][j] * COV[i][j]) / n);
                assertEquals(COV[i][j], cov[i][j], 5 * se + 2e-3, "cov[" + i + "][" + j + "]");
            }
        }
    }

    @Test
    void scheduleFollowsEdm() {
        double[] s = HeunSampler.edm().sigmas();
        assertEquals(19, s.length);
        assertEquals(80, s[0], 1e-12);
        assertEquals(0.002, s[17], 1e-12);
        assertEquals(0, s[18]);
        for (int i = 1; i < 18; i++) assertTrue(s[i] < s[i - 1]);
    }

    @Test
    void samplesDependOnTheirSeedOnly() {
        double[] together = HeunSampler.edm().sample(HeunSamplerTest::gaussianDenoiser, HeunSampler.noise(new long[] {5, 9}, 2), 2);
        double[] alone = HeunSampler.edm().sample(HeunSamplerTest::gaussianDenoiser, HeunSampler.noise(new long[] {9}, 2), 1);
        assertArrayEquals(new double[] {together[2], together[3]}, alone, 1e-12);
    }

    @Test
    void badSettingsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> new HeunSampler(0, 0.002, 80, 7));
        assertThrows(IllegalArgumentException.class, () -> new HeunSampler(18, 80, 0.002, 7));
        assertThrows(IllegalArgumentException.class, () -> HeunSampler.edm().sample(HeunSamplerTest::gaussianDenoiser, new double[5], 2));
    }
}
