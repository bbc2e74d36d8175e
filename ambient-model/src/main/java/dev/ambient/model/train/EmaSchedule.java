package dev.ambient.model.train;

/**
 * How much of the old average an EMA keeps after a step: {@code ema += (1 - beta) (param - ema)}.
 * Two schedules, as in EDM and EDM2:
 * <ul>
 *   <li>{@link #halfLife}: EDM's, a half-life of {@code halfLifeImages} images, shortened to
 *       {@code rampupRatio * n} early in training: {@code beta = 0.5^(batch / h)};</li>
 *   <li>{@link #powerFunction}: EDM2's power-function profile of relative width {@code std}:
 *       {@code beta = (1 - batch / n)^(gamma + 1)}, n the images seen after the step, gamma
 *       from std (Karras et al. 2024, eq. 3 and its inverse).</li>
 * </ul>
 */
public sealed interface EmaSchedule {

    /** beta for the step that ends with {@code imagesAfter} images seen, in batches of {@code batch}. */
    double beta(long imagesAfter, int batch);

    /** EDM's half-life EMA (its CIFAR default: 500k images, ramp-up ratio 0.05). */
    record HalfLife(double halfLifeImages, double rampupRatio) implements EmaSchedule {
        @Override
        public double beta(long imagesAfter, int batch) {
            double h = halfLifeImages;
            if (rampupRatio > 0) h = Math.min(h, imagesAfter * rampupRatio);
            return Math.pow(0.5, batch / Math.max(h, 1e-8));
        }
    }

    /** EDM2's power-function EMA of relative standard deviation {@code std}. */
    record PowerFunction(double std, double gamma) implements EmaSchedule {
        @Override
        public double beta(long imagesAfter, int batch) {
            if (imagesAfter <= 0) throw new IllegalArgumentException("imagesAfter must be positive");
            return Math.pow(1 - (double) batch / imagesAfter, gamma + 1);
        }
    }

    static EmaSchedule halfLife(double halfLifeImages, double rampupRatio) {
        return new HalfLife(halfLifeImages, rampupRatio);
    }

    static PowerFunction powerFunction(double std) {
        return new PowerFunction(std, gammaOf(std));
    }

    /** The relative standard deviation of a power-function profile with exponent gamma. */
    static double stdOf(double gamma) {
        return Math.sqrt((gamma + 1) / ((gamma + 2) * (gamma + 2) * (gamma + 3)));
    }

    /**
     * The exponent whose profile has relative std {@code std}: the largest real root of
     * {@code g^3 + 7 g^2 + (16 - std^-2) g + (12 - std^-2)}, found by bisection on the
     * decreasing {@link #stdOf} (valid for 0 < std < stdOf(0) = sqrt(1/12)).
     */
    static double gammaOf(double std) {
        double max = stdOf(0);
        if (!(std > 0) || !(std < max)) throw new IllegalArgumentException("EMA std " + std + " must be in (0, " + max + ")");
        double lo = 0, hi = 1;
        while (stdOf(hi) > std) hi *= 2;
        for (int i = 0; i < 200; i++) {
            double mid = (lo + hi) / 2;
            if (stdOf(mid) > std) lo = mid;
            else hi = mid;
        }
        return (lo + hi) / 2;
    }
}
