package dev.ambient.model.eval;

import java.util.Arrays;
import java.util.Objects;
import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.CommonOps_DDRM;
import org.ejml.dense.row.factory.DecompositionFactory_DDRM;
import org.ejml.interfaces.decomposition.EigenDecomposition_F64;

/**
 * The Fréchet distance between two sets of feature vectors, each summarised by the Gaussian fitted
 * to it (the formula of FID, Heusel et al. 2017; the distance between Gaussians is Dowson and
 * Landau's):
 *
 * <pre>FD = |μ1 − μ2|² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^½)</pre>
 *
 * with the mean and the unbiased covariance ({@code 1/(n−1)}) of each set. {@code Σ1 Σ2} is not
 * symmetric, so its square root is not taken directly: it has the same eigenvalues as the
 * symmetric positive semi-definite {@code Σ1^½ Σ2 Σ1^½}, hence {@code Tr (Σ1 Σ2)^½ =
 * Σ_i sqrt(λ_i(Σ1^½ Σ2 Σ1^½))}. Both square roots come from EJML's symmetric eigendecomposition,
 * so no complex intermediate appears and nothing needs the imaginary parts discarded.
 *
 * <p><b>Singular covariances.</b> With fewer samples than dimensions (or features that are
 * constant or linearly dependent) a covariance is singular, and rounding turns some of its zero
 * eigenvalues into tiny negative ones. Eigenvalues down to {@code −1e-8} times the matrix's scale
 * (its trace, or {@code Tr Σ1 · Tr Σ2} for the product) are clamped to 0 before their square root
 * is taken; a more negative one means the input is not a covariance and is refused (the check on
 * {@code Σ1^½ Σ2 Σ1^½} catches a non-PSD {@code Σ2} wherever {@code Σ1} is not singular). The result is the distance between the two (degenerate) Gaussians, which is well
 * defined; it is only a poor estimate of the distance between the distributions, as always with
 * too few samples. Rounding can also leave the total a hair below zero for two equal sets: the
 * returned distance is clamped at 0.
 */
public final class FrechetDistance {

    /** Eigenvalues above {@code −CLAMP · scale} count as rounding of a zero and become 0. */
    static final double CLAMP = 1e-8;

    private FrechetDistance() {}

    /**
     * Mean and unbiased covariance of a set of {@code count} feature vectors of {@code dim}
     * dimensions; {@code covariance} is row-major {@code dim × dim}. These are what a reference
     * set is reduced to, so that it can be computed once and cached.
     */
    public record Statistics(double[] mean, double[] covariance, long count) {
        public Statistics {
            Objects.requireNonNull(mean, "mean");
            Objects.requireNonNull(covariance, "covariance");
            int d = mean.length;
            if (d == 0) throw new IllegalArgumentException("statistics need at least one dimension");
            if (covariance.length != (long) d * d) {
                throw new IllegalArgumentException("covariance has " + covariance.length + " entries, expected " + d + "x" + d + " for a mean of " + d);
            }
            if (count < 2) throw new IllegalArgumentException("an unbiased covariance needs at least 2 samples, got " + count);
            for (int i = 0; i < d; i++) if (!Double.isFinite(mean[i])) throw new IllegalArgumentException("mean[" + i + "] is " + mean[i]);
            for (int i = 0; i < d; i++) {
                for (int j = 0; j < d; j++) {
                    double v = covariance[i * d + j];
                    if (!Double.isFinite(v)) throw new IllegalArgumentException("covariance[" + i + "][" + j + "] is " + v);
                    double t = covariance[j * d + i];
                    if (Math.abs(v - t) > 1e-9 * (Math.abs(v) + Math.abs(t)) + 1e-300) {
                        throw new IllegalArgumentException("covariance is not symmetric at [" + i + "][" + j + "]: " + v + " vs " + t);
                    }
                }
            }
            mean = mean.clone();
            covariance = covariance.clone();
        }

        /** The number of dimensions. */
        public int dim() { return mean.length; }

        @Override public double[] mean() { return mean.clone(); }

        @Override public double[] covariance() { return covariance.clone(); }

        @Override public boolean equals(Object o) {
            return o instanceof Statistics s && count == s.count && Arrays.equals(mean, s.mean) && Arrays.equals(covariance, s.covariance);
        }

        @Override public int hashCode() { return Arrays.hashCode(mean) * 31 + Long.hashCode(count); }

        @Override public String toString() { return "Statistics[dim=" + mean.length + ", count=" + count + "]"; }
    }

    /** The two parts of the distance: {@code |μ1 − μ2|²} and {@code Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^½)}. */
    public record Terms(double meanTerm, double covarianceTerm) {
        /** The Fréchet distance, clamped at 0 (see the class comment). */
        public double total() { return Math.max(0, meanTerm + covarianceTerm); }
    }

    /** Statistics of {@code features[n][dim]} (every row the same length, at least 2 rows). */
    public static Statistics statistics(double[][] features) {
        Objects.requireNonNull(features, "features");
        if (features.length < 2) throw new IllegalArgumentException("need at least 2 feature vectors, got " + features.length);
        int d = Objects.requireNonNull(features[0], "features[0]").length;
        if (d == 0) throw new IllegalArgumentException("feature vectors are empty");
        DMatrixRMaj x = new DMatrixRMaj(features.length, d);
        for (int i = 0; i < features.length; i++) {
            double[] row = Objects.requireNonNull(features[i], "features[" + i + "]");
            if (row.length != d) throw new IllegalArgumentException("feature vector " + i + " has " + row.length + " dimensions, vector 0 has " + d);
            System.arraycopy(row, 0, x.data, i * d, d);
        }
        return fromRows(x);
    }

    /** Statistics of {@code n = features.length / dim} vectors stored row after row. */
    public static Statistics statistics(float[] features, int dim) {
        Objects.requireNonNull(features, "features");
        if (dim < 1) throw new IllegalArgumentException("dim must be >= 1, got " + dim);
        if (features.length % dim != 0) throw new IllegalArgumentException(features.length + " values are not a whole number of " + dim + "-dimensional vectors");
        int n = features.length / dim;
        if (n < 2) throw new IllegalArgumentException("need at least 2 feature vectors, got " + n);
        DMatrixRMaj x = new DMatrixRMaj(n, dim);
        for (int k = 0; k < features.length; k++) x.data[k] = features[k];
        return fromRows(x);
    }

    /** Mean and {@code XᵀX/(n−1)} of the centred rows; two passes, so large means cost no precision. */
    private static Statistics fromRows(DMatrixRMaj x) {
        int n = x.numRows, d = x.numCols;
        double[] mean = new double[d];
        for (int i = 0; i < n; i++) for (int j = 0; j < d; j++) mean[j] += x.data[i * d + j];
        for (int j = 0; j < d; j++) mean[j] /= n;
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < d; j++) {
                double v = x.data[i * d + j];
                if (!Double.isFinite(v)) throw new IllegalArgumentException("feature " + j + " of vector " + i + " is " + v);
                x.data[i * d + j] = v - mean[j];
            }
        }
        DMatrixRMaj cov = new DMatrixRMaj(d, d);
        CommonOps_DDRM.multInner(x, cov);
        CommonOps_DDRM.scale(1.0 / (n - 1), cov);
        symmetrize(cov);
        return new Statistics(mean, cov.data, n);
    }

    /** FD between two sets of feature vectors {@code [n][dim]}. */
    public static double distance(double[][] a, double[][] b) {
        return distance(statistics(a), statistics(b));
    }

    /** FD between two sets of {@code dim}-dimensional vectors stored row after row. */
    public static double distance(float[] a, float[] b, int dim) {
        return distance(statistics(a, dim), statistics(b, dim));
    }

    /** FD between two fitted Gaussians. */
    public static double distance(Statistics a, Statistics b) {
        return terms(a, b).total();
    }

    /** The two terms of FD between two fitted Gaussians, unclamped. */
    public static Terms terms(Statistics a, Statistics b) {
        Objects.requireNonNull(a, "a");
        Objects.requireNonNull(b, "b");
        int d = a.dim();
        if (b.dim() != d) throw new IllegalArgumentException("statistics have " + d + " and " + b.dim() + " dimensions");
        double meanTerm = 0;
        for (int j = 0; j < d; j++) {
            double diff = a.mean[j] - b.mean[j];
            meanTerm += diff * diff;
        }
        DMatrixRMaj s1 = DMatrixRMaj.wrap(d, d, a.covariance.clone());
        DMatrixRMaj s2 = DMatrixRMaj.wrap(d, d, b.covariance.clone());

        double tr1 = CommonOps_DDRM.trace(s1), tr2 = CommonOps_DDRM.trace(s2);
        DMatrixRMaj root1 = sqrtSymmetric(s1, tr1, "the first covariance");
        DMatrixRMaj tmp = new DMatrixRMaj(d, d);
        DMatrixRMaj m = new DMatrixRMaj(d, d);
        CommonOps_DDRM.mult(root1, s2, tmp);
        CommonOps_DDRM.mult(tmp, root1, m);
        symmetrize(m); // exact arithmetic gives a symmetric product; rounding does not
        double traceRoot = 0;
        // Tr(Σ1)·Tr(Σ2) bounds the product's norm: its zeros are rounded on that scale, not its own
        for (double lambda : eigenvaluesSymmetric(m, tr1 * tr2, "Σ1^½ Σ2 Σ1^½")) traceRoot += Math.sqrt(lambda);
        return new Terms(meanTerm, tr1 + tr2 - 2 * traceRoot);
    }

    /**
     * The symmetric positive semi-definite square root {@code V diag(sqrt λ) Vᵀ} of a symmetric
     * matrix, with its tiny negative eigenvalues clamped to 0; {@code s} is left unchanged.
     * {@code scale} is an upper bound of its norm that the clamp is relative to.
     */
    static DMatrixRMaj sqrtSymmetric(DMatrixRMaj s, double scale, String what) {
        int d = s.numRows;
        EigenDecomposition_F64<DMatrixRMaj> eig = DecompositionFactory_DDRM.eig(d, true, true);
        if (!eig.decompose(s.copy())) throw new ArithmeticException("eigendecomposition of " + what + " did not converge");
        double[] lambda = clampedEigenvalues(eig, d, scale, what);
        // W's column i is v_i λ_i^¼, so W Wᵀ = Σ sqrt(λ_i) v_i v_iᵀ is symmetric by construction
        DMatrixRMaj w = new DMatrixRMaj(d, d);
        for (int i = 0; i < d; i++) {
            DMatrixRMaj v = eig.getEigenVector(i);
            if (v == null) throw new ArithmeticException("no eigenvector " + i + " for " + what);
            double f = Math.sqrt(Math.sqrt(lambda[i]));
            for (int r = 0; r < d; r++) w.data[r * d + i] = v.data[r] * f;
        }
        DMatrixRMaj root = new DMatrixRMaj(d, d);
        CommonOps_DDRM.multOuter(w, root);
        return root;
    }

    /** The eigenvalues of a symmetric matrix, tiny negative ones clamped to 0. */
    static double[] eigenvaluesSymmetric(DMatrixRMaj s, double scale, String what) {
        int d = s.numRows;
        EigenDecomposition_F64<DMatrixRMaj> eig = DecompositionFactory_DDRM.eig(d, false, true);
        if (!eig.decompose(s.copy())) throw new ArithmeticException("eigendecomposition of " + what + " did not converge");
        return clampedEigenvalues(eig, d, scale, what);
    }

    private static double[] clampedEigenvalues(EigenDecomposition_F64<DMatrixRMaj> eig, int d, double scale, String what) {
        double[] lambda = new double[d];
        double max = Math.abs(scale);
        for (int i = 0; i < d; i++) {
            lambda[i] = eig.getEigenvalue(i).real;
            if (!Double.isFinite(lambda[i])) throw new ArithmeticException("eigenvalue " + i + " of " + what + " is " + lambda[i]);
            max = Math.max(max, Math.abs(lambda[i]));
        }
        for (int i = 0; i < d; i++) {
            if (lambda[i] < 0) {
                if (lambda[i] < -CLAMP * max) {
                    throw new IllegalArgumentException(what + " is not positive semi-definite: eigenvalue " + lambda[i] + " (scale " + max + ")");
                }
                lambda[i] = 0;
            }
        }
        return lambda;
    }

    private static void symmetrize(DMatrixRMaj m) {
        int d = m.numRows;
        for (int i = 0; i < d; i++) {
            for (int j = i + 1; j < d; j++) {
                double v = 0.5 * (m.data[i * d + j] + m.data[j * d + i]);
                m.data[i * d + j] = v;
                m.data[j * d + i] = v;
            }
        }
    }
}
