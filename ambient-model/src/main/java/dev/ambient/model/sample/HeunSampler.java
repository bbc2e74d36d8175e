package dev.ambient.model.sample;

import java.util.SplittableRandom;

/**
 * EDM's deterministic second-order sampler (Karras et al. 2022, Algorithm 1 with S_churn = 0):
 * the noise levels
 * <pre>  sigma_i = (sigma_max^(1/rho) + i/(N-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho,  sigma_N = 0</pre>
 * an Euler step {@code x += (sigma_{i+1} - sigma_i) d(x, sigma_i)} with
 * {@code d = (x - D(x; sigma)) / sigma}, then, except at the last step, the trapezoidal
 * correction with the slope at sigma_{i+1}. 2N - 1 denoiser calls. The state is kept in double
 * precision, as EDM does.
 */
public final class HeunSampler {

    /** A denoiser over a batch: writes D(x; sigma) for {@code batch} rows of x into out. */
    @FunctionalInterface
    public interface Denoiser {
        void denoise(double[] x, int batch, double sigma, double[] out);
    }

    private final double[] sigmas;

    /** EDM's defaults for pixels: 18 steps, sigma from 80 to 0.002, rho = 7. */
    public static HeunSampler edm() {
        return new HeunSampler(18, 0.002, 80, 7);
    }

    public HeunSampler(int steps, double sigmaMin, double sigmaMax, double rho) {
        if (steps < 1) throw new IllegalArgumentException("steps = " + steps + " must be at least 1");
        if (!(sigmaMin > 0) || !(sigmaMax > sigmaMin)) {
            throw new IllegalArgumentException("need 0 < sigma_min < sigma_max, got " + sigmaMin + ", " + sigmaMax);
        }
        if (!(rho > 0)) throw new IllegalArgumentException("rho = " + rho + " must be positive");
        sigmas = new double[steps + 1];
        double a = Math.pow(sigmaMax, 1 / rho), b = Math.pow(sigmaMin, 1 / rho);
        for (int i = 0; i < steps; i++) sigmas[i] = Math.pow(a + (steps == 1 ? 0 : (double) i / (steps - 1)) * (b - a), rho);
        sigmas[steps] = 0;
    }

    /** The noise levels, the last one 0. */
    public double[] sigmas() {
        return sigmas.clone();
    }

    /** Samples from standard-normal {@code noise} (batch rows, modified into the result). */
    public double[] sample(Denoiser denoiser, double[] noise, int batch) {
        if (batch <= 0 || noise.length % batch != 0) throw new IllegalArgumentException("noise of " + noise.length + " values is not " + batch + " rows");
        int n = noise.length;
        double[] x = noise;
        for (int i = 0; i < n; i++) x[i] *= sigmas[0];
        double[] denoised = new double[n], slope = new double[n], next = new double[n];
        for (int step = 0; step + 1 < sigmas.length; step++) {
            double s = sigmas[step], sNext = sigmas[step + 1];
            denoiser.denoise(x, batch, s, denoised);
            for (int i = 0; i < n; i++) {
                slope[i] = (x[i] - denoised[i]) / s;
                next[i] = x[i] + (sNext - s) * slope[i];
            }
            if (sNext > 0) {
                denoiser.denoise(next, batch, sNext, denoised);
                for (int i = 0; i < n; i++) {
                    double slopeNext = (next[i] - denoised[i]) / sNext;
                    next[i] = x[i] + (sNext - s) * (0.5 * slope[i] + 0.5 * slopeNext);
                }
            }
            double[] t = x;
            x = next;
            next = t;
        }
        if (x != noise) System.arraycopy(x, 0, noise, 0, n);
        return noise;
    }

    /**
     * Standard-normal starting noise, one row of {@code size} per seed: each sample depends on
     * its own seed only, so it is the same whatever batch it is drawn in (as EDM's per-image
     * generators).
     */
    public static double[] noise(long[] seeds, int size) {
        double[] z = new double[Math.multiplyExact(seeds.length, size)];
        for (int row = 0; row < seeds.length; row++) {
            SplittableRandom random = new SplittableRandom(seeds[row]);
            for (int i = 0; i < size; i++) z[row * size + i] = random.nextGaussian();
        }
        return z;
    }
}
