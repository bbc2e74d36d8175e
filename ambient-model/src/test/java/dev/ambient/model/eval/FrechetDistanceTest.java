package dev.ambient.model.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.factory.DecompositionFactory_DDRM;
import org.ejml.interfaces.decomposition.EigenDecomposition_F64;
import org.junit.jupiter.api.Test;

/** FD against closed forms on Gaussians, an independent eigenvalue path, and its invariances. */
class FrechetDistanceTest {

    static SplittableRandom freshRandom() {
        long seed = System.nanoTime();
        System.out.println("random seed " + seed);
        return new SplittableRandom(seed);
    }

    /** A random orthogonal d×d matrix (Gram-Schmidt on a Gaussian matrix), row-major. */
    static double[] randomOrthogonal(SplittableRandom r, int d) {
        double[] q = new double[d * d];
        for (int k = 0; k < d * d; k++) q[k] = r.nextGaussian();
        for (int c = 0; c < d; c++) {
            for (int p = 0; p < c; p++) {
                double dot = 0;
                for (int i = 0; i < d; i++) dot += q[i * d + c] * q[i * d + p];
                for (int i = 0; i < d; i++) q[i * d + c] -= dot * q[i * d + p];
            }
            double norm = 0;
            for (int i = 0; i < d; i++) norm += q[i * d + c] * q[i * d + c];
            norm = Math.sqrt(norm);
            for (int i = 0; i < d; i++) q[i * d + c] /= norm;
        }
        return q;
    }

    /** Q diag(a) Qᵀ. */
    static double[] rotate(double[] q, double[] a) {
        int d = a.length;
        double[] s = new double[d * d];
        for (int i = 0; i < d; i++) for (int j = 0; j < d; j++) {
            double v = 0;
            for (int k = 0; k < d; k++) v += q[i * d + k] * a[k] * q[j * d + k];
            s[i * d + j] = v;
        }
        for (int i = 0; i < d; i++) for (int j = i + 1; j < d; j++) s[j * d + i] = s[i * d + j];
        return s;
    }

    static double[] randomVector(SplittableRandom r, int d, double lo, double hi) {
        double[] v = new double[d];
        for (int i = 0; i < d; i++) v[i] = r.nextDouble(lo, hi);
        return v;
    }

    static FrechetDistance.Statistics stats(double[] mean, double[] cov) {
        return new FrechetDistance.Statistics(mean, cov, 1000);
    }

    static double meanTerm(double[] m1, double[] m2) {
        double s = 0;
        for (int i = 0; i < m1.length; i++) s += (m1[i] - m2[i]) * (m1[i] - m2[i]);
        return s;
    }

    /** n samples of N(mean, L Lᵀ) as rows. */
    static double[][] sample(SplittableRandom r, int n, double[] mean, double[] l) {
        int d = mean.length;
        double[][] x = new double[n][d];
        double[] z = new double[d];
        for (int s = 0; s < n; s++) {
            for (int i = 0; i < d; i++) z[i] = r.nextGaussian();
            for (int i = 0; i < d; i++) {
                double v = mean[i];
                for (int k = 0; k < d; k++) v += l[i * d + k] * z[k];
                x[s][i] = v;
            }
        }
        return x;
    }

    @Test
    void diagonalCovariancesGiveTheSumOfSquaredRootDifferences() {
        SplittableRandom random = freshRandom();
        for (int trial = 0; trial < 20; trial++) {
            int d = 1 + random.nextInt(12);
            double[] m1 = randomVector(random, d, -3, 3), m2 = randomVector(random, d, -3, 3);
            double[] a = randomVector(random, d, 0.01, 5), b = randomVector(random, d, 0.01, 5);
            double expect = meanTerm(m1, m2);
            double[] s1 = new double[d * d], s2 = new double[d * d];
            for (int i = 0; i < d; i++) {
                s1[i * d + i] = a[i];
                s2[i * d + i] = b[i];
                expect += Math.pow(Math.sqrt(a[i]) - Math.sqrt(b[i]), 2);
            }
            double fd = FrechetDistance.distance(stats(m1, s1), stats(m2, s2));
            assertEquals(expect, fd, 1e-10 * (1 + expect), "d = " + d);
        }
    }

    @Test
    void commutingRotatedCovariancesGiveTheSameClosedForm() {
        SplittableRandom random = freshRandom();
        for (int trial = 0; trial < 20; trial++) {
            int d = 2 + random.nextInt(16);
            double[] q = randomOrthogonal(random, d);
            double[] m1 = randomVector(random, d, -1, 1), m2 = randomVector(random, d, -1, 1);
            double[] a = randomVector(random, d, 0.05, 4), b = randomVector(random, d, 0.05, 4);
            double expect = meanTerm(m1, m2);
            for (int i = 0; i < d; i++) expect += Math.pow(Math.sqrt(a[i]) - Math.sqrt(b[i]), 2);
            double fd = FrechetDistance.distance(stats(m1, rotate(q, a)), stats(m2, rotate(q, b)));
            assertEquals(expect, fd, 1e-9 * (1 + expect), "d = " + d);
        }
    }

    @Test
    void nonCommutingTwoByTwoMatchesTheClosedFormOfTheTraceOfTheRoot() {
        // for a 2x2 matrix with non-negative eigenvalues, Tr sqrt(M) = sqrt(Tr M + 2 sqrt(det M))
        SplittableRandom random = freshRandom();
        for (int trial = 0; trial < 50; trial++) {
            double[] s1 = rotate(randomOrthogonal(random, 2), randomVector(random, 2, 0.01, 3));
            double[] s2 = rotate(randomOrthogonal(random, 2), randomVector(random, 2, 0.01, 3));
            double trProduct = s1[0] * s2[0] + s1[1] * s2[2] + s1[2] * s2[1] + s1[3] * s2[3];
            double det1 = s1[0] * s1[3] - s1[1] * s1[2], det2 = s2[0] * s2[3] - s2[1] * s2[2];
            double trRoot = Math.sqrt(trProduct + 2 * Math.sqrt(det1 * det2));
            double expect = s1[0] + s1[3] + s2[0] + s2[3] - 2 * trRoot;
            double[] zero = {0, 0};
            double fd = FrechetDistance.distance(stats(zero, s1), stats(zero, s2));
            assertEquals(expect, fd, 1e-10 * (1 + s1[0] + s1[3] + s2[0] + s2[3]));
        }
    }

    @Test
    void traceTermMatchesTheEigenvaluesOfTheNonSymmetricProduct() {
        // independent path: the eigenvalues of Σ1 Σ2 (real, >= 0) from EJML's general eigen-solver
        SplittableRandom random = freshRandom();
        for (int trial = 0; trial < 10; trial++) {
            int d = 2 + random.nextInt(30);
            double[] s1 = rotate(randomOrthogonal(random, d), randomVector(random, d, 0.1, 3));
            double[] s2 = rotate(randomOrthogonal(random, d), randomVector(random, d, 0.1, 3));
            DMatrixRMaj product = new DMatrixRMaj(d, d);
            org.ejml.dense.row.CommonOps_DDRM.mult(DMatrixRMaj.wrap(d, d, s1), DMatrixRMaj.wrap(d, d, s2), product);
            EigenDecomposition_F64<DMatrixRMaj> eig = DecompositionFactory_DDRM.eig(d, false, false);
            assertTrue(eig.decompose(product));
            double trRoot = 0, tr = 0;
            for (int i = 0; i < d; i++) {
                assertEquals(0, eig.getEigenvalue(i).imaginary, 1e-8);
                trRoot += Math.sqrt(eig.getEigenvalue(i).real);
                tr += s1[i * d + i] + s2[i * d + i];
            }
            double[] zero = new double[d];
            FrechetDistance.Terms t = FrechetDistance.terms(stats(zero, s1), stats(zero, s2));
            assertEquals(0, t.meanTerm());
            assertEquals(tr - 2 * trRoot, t.covarianceTerm(), 1e-9 * tr, "d = " + d);
        }
    }

    @Test
    void samplesOfKnownGaussiansEstimateTheirDistance() {
        SplittableRandom random = freshRandom();
        int d = 3, n = 20_000;
        double[] m1 = {0.5, -1, 0}, m2 = {-0.5, 0.5, 1};
        double[] l1 = {1, 0, 0, 0.5, 0.8, 0, -0.3, 0.2, 0.6};
        double[] l2 = {0.6, 0, 0, -0.2, 1.2, 0, 0.4, 0.1, 0.9};
        double[] s1 = outer(l1, d), s2 = outer(l2, d);
        double exact = FrechetDistance.distance(stats(m1, s1), stats(m2, s2));
        double estimate = FrechetDistance.distance(sample(random, n, m1, l1), sample(random, n, m2, l2));
        System.out.println("FD exact " + exact + ", from " + n + " samples each " + estimate);
        assertEquals(exact, estimate, 0.1 + 0.03 * exact);
    }

    static double[] outer(double[] l, int d) {
        double[] s = new double[d * d];
        for (int i = 0; i < d; i++) for (int j = 0; j < d; j++) {
            double v = 0;
            for (int k = 0; k < d; k++) v += l[i * d + k] * l[j * d + k];
            s[i * d + j] = v;
        }
        return s;
    }

    @Test
    void statisticsAreTheMeanAndUnbiasedCovariance() {
        SplittableRandom random = freshRandom();
        int n = 3 + random.nextInt(40), d = 1 + random.nextInt(9);
        double[][] x = new double[n][d];
        float[] flat = new float[n * d];
        for (int i = 0; i < n; i++) for (int j = 0; j < d; j++) {
            flat[i * d + j] = (float) random.nextDouble(-2, 5);
            x[i][j] = flat[i * d + j];
        }
        FrechetDistance.Statistics s = FrechetDistance.statistics(x);
        assertEquals(d, s.dim());
        assertEquals(n, s.count());
        for (int j = 0; j < d; j++) {
            double m = 0;
            for (int i = 0; i < n; i++) m += x[i][j];
            assertEquals(m / n, s.mean()[j], 1e-12);
        }
        for (int a = 0; a < d; a++) for (int b = 0; b < d; b++) {
            double ma = 0, mb = 0, c = 0;
            for (int i = 0; i < n; i++) { ma += x[i][a] / n; mb += x[i][b] / n; }
            for (int i = 0; i < n; i++) c += (x[i][a] - ma) * (x[i][b] - mb);
            assertEquals(c / (n - 1), s.covariance()[a * d + b], 1e-12, "[" + a + "][" + b + "]");
        }
        assertEquals(s, FrechetDistance.statistics(flat, d), "the flat float form gives the same statistics");
    }

    @Test
    void distanceIsSymmetricAndZeroOnItself() {
        SplittableRandom random = freshRandom();
        int d = 2 + random.nextInt(20);
        double[][] x = sample(random, 50 + random.nextInt(100), randomVector(random, d, -1, 1), randomOrthogonal(random, d));
        double[][] y = sample(random, 50 + random.nextInt(100), randomVector(random, d, -1, 1), rotate(randomOrthogonal(random, d), randomVector(random, d, 0.2, 2)));
        double xy = FrechetDistance.distance(x, y), yx = FrechetDistance.distance(y, x);
        assertTrue(xy > 0);
        assertEquals(xy, yx, 1e-9 * xy);
        FrechetDistance.Statistics sx = FrechetDistance.statistics(x);
        double tr = 0;
        for (int i = 0; i < d; i++) tr += sx.covariance()[i * d + i];
        assertEquals(0, FrechetDistance.distance(x, x), 1e-9 * tr);
        // one point stays a point: no negative distance from rounding
        assertTrue(FrechetDistance.distance(sx, sx) >= 0);
    }

    @Test
    void aCommonRotationAndTranslationLeaveTheDistanceUnchanged() {
        SplittableRandom random = freshRandom();
        int d = 2 + random.nextInt(10), n = 40 + random.nextInt(40);
        double[][] x = sample(random, n, randomVector(random, d, -1, 1), randomOrthogonal(random, d));
        double[][] y = sample(random, n + 7, randomVector(random, d, -1, 1), rotate(randomOrthogonal(random, d), randomVector(random, d, 0.2, 2)));
        double[] q = randomOrthogonal(random, d), t = randomVector(random, d, -10, 10);
        double fd = FrechetDistance.distance(x, y);
        double moved = FrechetDistance.distance(transform(x, q, t), transform(y, q, t));
        assertEquals(fd, moved, 1e-9 * (1 + fd));
    }

    static double[][] transform(double[][] x, double[] q, double[] t) {
        int d = t.length;
        double[][] out = new double[x.length][d];
        for (int s = 0; s < x.length; s++) for (int i = 0; i < d; i++) {
            double v = t[i];
            for (int k = 0; k < d; k++) v += q[i * d + k] * x[s][k];
            out[s][i] = v;
        }
        return out;
    }

    @Test
    void singularCovariancesFromFewerSamplesThanDimensionsStayFiniteAndExact() {
        SplittableRandom random = freshRandom();
        int d = 64, n = 10; // rank <= 9: 55 zero eigenvalues, some of them rounded below zero
        double[][] x = sample(random, n, new double[d], randomOrthogonal(random, d));
        double[] shift = randomVector(random, d, -1, 1);
        double[][] y = transform(x, identity(d), shift);
        FrechetDistance.Statistics sx = FrechetDistance.statistics(x);
        double tr = 0;
        for (int i = 0; i < d; i++) tr += sx.covariance()[i * d + i];
        double self = FrechetDistance.distance(x, x);
        assertTrue(Double.isFinite(self) && self >= 0);
        // sqrt of a rounded zero eigenvalue is ~1e-8 of the largest: the trace term keeps that much
        assertEquals(0, self, 1e-5 * tr);
        // equal covariances: only the translation is left
        assertEquals(meanTerm(new double[d], shift), FrechetDistance.distance(x, y), 1e-5 * tr);
        double[][] z = sample(random, n, new double[d], randomOrthogonal(random, d));
        double xz = FrechetDistance.distance(x, z);
        assertTrue(Double.isFinite(xz) && xz > 0, "FD " + xz);
        assertEquals(xz, FrechetDistance.distance(z, x), 1e-6 * xz);
    }

    static double[] identity(int d) {
        double[] q = new double[d * d];
        for (int i = 0; i < d; i++) q[i * d + i] = 1;
        return q;
    }

    @Test
    void rankDeficientCovariancesOnDifferentAxesMatchByHand() {
        // Σ1 = diag(1, 0, 0), Σ2 = diag(0, 4, 0): Σ1 Σ2 = 0, so FD = 1 + 4; rotated alike, the same
        SplittableRandom random = freshRandom();
        double[] q = randomOrthogonal(random, 3);
        double[] zero = new double[3];
        double fd = FrechetDistance.distance(stats(zero, rotate(q, new double[] {1, 0, 0})), stats(zero, rotate(q, new double[] {0, 4, 0})));
        assertEquals(5, fd, 1e-7);
        double same = FrechetDistance.distance(stats(zero, rotate(q, new double[] {2, 0, 0})), stats(zero, rotate(q, new double[] {2, 0, 0})));
        assertEquals(0, same, 1e-7);
    }

    @Test
    void badInputsAreRefusedWithAReason() {
        double[] zero2 = {0, 0};
        var a = assertThrows(IllegalArgumentException.class, () -> FrechetDistance.distance(stats(zero2, new double[] {1, 0, 0, 1}), stats(new double[3], identity(3))));
        assertTrue(a.getMessage().contains("2 and 3 dimensions"), a.getMessage());
        var b = assertThrows(IllegalArgumentException.class, () -> FrechetDistance.distance(stats(zero2, new double[] {1, 0, 0, -1}), stats(zero2, identity(2))));
        assertTrue(b.getMessage().contains("not positive semi-definite"), b.getMessage());
        var c = assertThrows(IllegalArgumentException.class, () -> stats(zero2, new double[] {1, 0.5, 0, 1}));
        assertTrue(c.getMessage().contains("not symmetric"), c.getMessage());
        assertThrows(IllegalArgumentException.class, () -> stats(zero2, new double[] {1, 0, 0}));
        assertThrows(IllegalArgumentException.class, () -> new FrechetDistance.Statistics(zero2, identity(2), 1));
        var d = assertThrows(IllegalArgumentException.class, () -> FrechetDistance.statistics(new double[][] {{1, 2}}));
        assertTrue(d.getMessage().contains("at least 2"), d.getMessage());
        var e = assertThrows(IllegalArgumentException.class, () -> FrechetDistance.statistics(new double[][] {{1, 2}, {3}}));
        assertTrue(e.getMessage().contains("vector 1 has 1 dimensions"), e.getMessage());
        var f = assertThrows(IllegalArgumentException.class, () -> FrechetDistance.statistics(new double[][] {{1, 2}, {3, Double.NaN}}));
        assertTrue(f.getMessage().contains("NaN"), f.getMessage());
        var g = assertThrows(IllegalArgumentException.class, () -> FrechetDistance.statistics(new float[7], 2));
        assertTrue(g.getMessage().contains("not a whole number"), g.getMessage());
        assertThrows(IllegalArgumentException.class, () -> FrechetDistance.statistics(new float[8], 0));
    }
}
