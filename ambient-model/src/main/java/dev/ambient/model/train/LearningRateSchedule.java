package dev.ambient.model.train;

/**
 * EDM2's learning-rate schedule: inverse square-root decay after {@code refBatches} batches
 * and a linear ramp-up over the first {@code rampupImages} images,
 * <pre>  lr(n) = refLr / sqrt(max(n / (refBatches * batch), 1)) * min(n / rampupImages, 1)</pre>
 * with n the images seen so far. {@code refBatches = 0} turns the decay off (EDM's constant
 * rate), {@code rampupImages = 0} the ramp.
 */
public record LearningRateSchedule(double refLr, double refBatches, double rampupImages) {

    /** EDM2-XS on ImageNet-512: 0.0120, 70k batches, 10 Mimg ramp-up. */
    public static LearningRateSchedule edm2(double refLr) {
        return new LearningRateSchedule(refLr, 70_000, 10_000_000);
    }

    public LearningRateSchedule {
        if (!(refLr >= 0) || !(refBatches >= 0) || !(rampupImages >= 0)) {
            throw new IllegalArgumentException("learning-rate schedule needs non-negative refLr, refBatches and rampupImages");
        }
    }

    /** The rate for the step that starts after {@code imagesSeen} images in batches of {@code batch}. */
    public double at(long imagesSeen, int batch) {
        if (imagesSeen < 0 || batch <= 0) throw new IllegalArgumentException("imagesSeen " + imagesSeen + ", batch " + batch);
        double lr = refLr;
        if (refBatches > 0) lr /= Math.sqrt(Math.max(imagesSeen / (refBatches * batch), 1));
        if (rampupImages > 0) lr *= Math.min(imagesSeen / rampupImages, 1);
        return lr;
    }
}
