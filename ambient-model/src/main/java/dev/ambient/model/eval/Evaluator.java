package dev.ambient.model.eval;

import dev.ambient.model.data.ImageDataset;

import java.util.Objects;

/**
 * Compares generated images with a reference set on every metric of {@link EvaluationReport}:
 * FD_feat and precision/recall in a {@link FeatureNetwork}'s features, FD_pix on pooled pixels,
 * and the sharpness ratio. The reference's statistics are computed once, here.
 *
 * <p>Generated images are first rounded as a PNG would store them (clamped to [-1, 1], 8 bits),
 * so a set evaluated straight from the sampler scores what the same set written to a folder
 * scores.
 */
public final class Evaluator {

    private final FeatureNetwork features;
    private final int height, width, channels, referenceCount;
    private final FrechetDistance.Statistics referenceFeatures, referencePixels;
    private final float[] referenceFeatureRows;
    private final double referenceEnergy;

    public Evaluator(FeatureNetwork features, ImageDataset reference) {
        this.features = Objects.requireNonNull(features, "features");
        features.checkShape(reference.height(), reference.width(), reference.channels());
        if (reference.size() <= PrecisionRecall.DEFAULT_K) throw new IllegalArgumentException("the reference set needs more than " + PrecisionRecall.DEFAULT_K + " images");
        height = reference.height();
        width = reference.width();
        channels = reference.channels();
        referenceCount = reference.size();
        referenceFeatureRows = features.features(reference);
        referenceFeatures = FrechetDistance.statistics(referenceFeatureRows, features.dim());
        referencePixels = FdPixels.statistics(reference, Math.min(FdPixels.DEFAULT_SIZE, Math.min(height, width)));
        referenceEnergy = Sharpness.energy(reference);
    }

    /** All metrics of {@code count} generated NHWC images against the reference. */
    public EvaluationReport evaluate(String label, float[] generated, int count) {
        if (generated.length != (long) count * height * width * channels) {
            throw new IllegalArgumentException(generated.length + " floats are not " + count + " images of " + height + "x" + width + "x" + channels);
        }
        if (count <= PrecisionRecall.DEFAULT_K) throw new IllegalArgumentException("evaluation needs more than " + PrecisionRecall.DEFAULT_K + " generated images, got " + count);
        float[] images = asStored(generated);
        float[] f = features.features(images, count);
        int pixelSize = Math.min(FdPixels.DEFAULT_SIZE, Math.min(height, width));
        return EvaluationReport.of(label, count, referenceCount)
                .withFdFeat(FrechetDistance.distance(FrechetDistance.statistics(f, features.dim()), referenceFeatures), features.accuracy())
                .withFdPix(FrechetDistance.distance(FdPixels.statistics(images, height, width, channels, pixelSize), referencePixels))
                .withPrecisionRecall(PrecisionRecall.compute(referenceFeatureRows, f, features.dim(), PrecisionRecall.DEFAULT_K))
                .withSharpnessRatio(Sharpness.ratio(Sharpness.energy(images, height, width, channels), referenceEnergy));
    }

    /** The images as 8-bit codes would give them back. */
    static float[] asStored(float[] images) {
        float[] out = new float[images.length];
        for (int i = 0; i < images.length; i++) {
            if (!Float.isFinite(images[i])) throw new IllegalArgumentException("generated image values must be finite: element " + i + " is " + images[i]);
            out[i] = ImageDataset.decode(ImageDataset.quantize(images[i]));
        }
        return out;
    }

    public int referenceCount() {
        return referenceCount;
    }
}
