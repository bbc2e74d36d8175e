package dev.ambient.model;

/**
 * EDM's preconditioning (Karras et al. 2022, used unchanged by EDM2): the denoiser is
 * {@code D(x; sigma) = c_skip x + c_out F(c_in x; c_noise)} with
 * <pre>
 *   c_skip  = sigma_data^2 / (sigma^2 + sigma_data^2)
 *   c_out   = sigma sigma_data / sqrt(sigma^2 + sigma_data^2)
 *   c_in    = 1 / sqrt(sigma^2 + sigma_data^2)
 *   c_noise = ln(sigma) / 4
 * </pre>
 * and the training weight {@code w(sigma) = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2}.
 */
public record Precond(double sigmaData) {

    /** EDM2's (and EDM's) data standard deviation for images in [-1, 1]. */
    public static final Precond EDM = new Precond(0.5);

    public Precond {
        if (!(sigmaData > 0) || !Double.isFinite(sigmaData)) throw new IllegalArgumentException("sigma_data = " + sigmaData + " must be positive");
    }

    public double cSkip(double sigma) {
        return sigmaData * sigmaData / (sigma * sigma + sigmaData * sigmaData);
    }

    public double cOut(double sigma) {
        return sigma * sigmaData / Math.sqrt(sigma * sigma + sigmaData * sigmaData);
    }

    public double cIn(double sigma) {
        return 1 / Math.sqrt(sigma * sigma + sigmaData * sigmaData);
    }

    public double cNoise(double sigma) {
        return Math.log(sigma) / 4;
    }

    /** The EDM loss weight that makes the network's target unit-variance at every sigma. */
    public double lossWeight(double sigma) {
        return (sigma * sigma + sigmaData * sigmaData) / (sigma * sigmaData * sigma * sigmaData);
    }
}
