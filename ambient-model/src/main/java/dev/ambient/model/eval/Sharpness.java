package dev.ambient.model.eval;

import dev.ambient.model.data.ImageDataset;
import java.util.Objects;

/**
 * High-frequency energy of images: the mean squared response of the 5-point discrete Laplacian
 * {@code 4x(y,x) − x(y−1,x) − x(y+1,x) − x(y,x−1) − x(y,x+1)}, per channel, over the interior
 * pixels of every image (NHWC, values in [−1, 1]), and the ratio generated / reference.
 *
 * <p>Why the Laplacian and not the energy above half Nyquist through a DFT: its frequency response
 * {@code 4 sin²(πf_y) + 4 sin²(πf_x)} weights the spectrum smoothly towards the highest
 * frequencies (it is 0 at DC and 8 at Nyquist), so it needs no cut-off to choose and no window
 * against the wrap-around edges of a DFT; interior pixels only means no boundary rule either.
 * Blur lowers it, and a blurrier generator scores a ratio below 1. It also counts noise as
 * detail: a generator that leaves residual noise scores above 1, so read the ratio next to the
 * Fréchet distances, not alone.
 */
public final class Sharpness {

    private Sharpness() {}

    /** Mean squared Laplacian over the interior pixels and channels of every image in {@code images} (NHWC). */
    public static double energy(float[] images, int height, int width, int channels) {
        int n = count(images, height, width, channels, "images");
        double sum = 0;
        for (int i = 0; i < n; i++) sum += imageSum(images, i * height * width * channels, height, width, channels);
        return sum / ((double) n * (height - 2) * (width - 2) * channels);
    }

    /** The same energy over every image of a dataset, decoded one at a time. */
    public static double energy(ImageDataset dataset) {
        Objects.requireNonNull(dataset, "dataset");
        int h = dataset.height(), w = dataset.width(), c = dataset.channels();
        checkShape(h, w, c);
        if (dataset.size() == 0) throw new IllegalArgumentException("dataset is empty");
        float[] image = new float[dataset.imageSize()];
        double sum = 0;
        for (int i = 0; i < dataset.size(); i++) {
            dataset.copyTo(i, image, 0);
            sum += imageSum(image, 0, h, w, c);
        }
        return sum / ((double) dataset.size() * (h - 2) * (w - 2) * c);
    }

    /** {@code energy(generated) / energy(reference)}; both sets have the same image shape. */
    public static double ratio(float[] generated, float[] reference, int height, int width, int channels) {
        double g = energy(generated, height, width, channels);
        double r = energy(reference, height, width, channels);
        return ratio(g, r);
    }

    /** {@code generated / reference}, refusing a reference without any high-frequency energy. */
    public static double ratio(double generatedEnergy, double referenceEnergy) {
        if (!(referenceEnergy > 0) || Double.isInfinite(referenceEnergy)) {
            throw new IllegalArgumentException("the reference images have no high-frequency energy (" + referenceEnergy + "): flat images cannot serve as a sharpness reference");
        }
        if (!(generatedEnergy >= 0) || Double.isInfinite(generatedEnergy)) throw new IllegalArgumentException("generated energy is " + generatedEnergy);
        return generatedEnergy / referenceEnergy;
    }

    private static double imageSum(float[] x, int base, int h, int w, int c) {
        double sum = 0;
        for (int y = 1; y < h - 1; y++) {
            for (int xx = 1; xx < w - 1; xx++) {
                int p = base + (y * w + xx) * c;
                for (int ch = 0; ch < c; ch++) {
                    int q = p + ch;
                    double v = x[q];
                    if (!Double.isFinite(v)) throw new IllegalArgumentException("image " + base / (h * w * c) + " has " + v + " at pixel (" + y + ", " + xx + ") channel " + ch);
                    double lap = 4 * v - x[q - w * c] - x[q + w * c] - x[q - c] - x[q + c];
                    sum += lap * lap;
                }
            }
        }
        return sum;
    }

    /** The number of images in a flat NHWC array, after checking its shape (at least 3x3 for the Laplacian). */
    static int count(float[] images, int height, int width, int channels, String what) {
        checkShape(height, width, channels);
        return countImages(images, height, width, channels, what);
    }

    /** The number of images of any positive size in a flat NHWC array. */
    static int countImages(float[] images, int height, int width, int channels, String what) {
        Objects.requireNonNull(images, what);
        if (height < 1 || width < 1 || channels < 1) throw new IllegalArgumentException(what + ": need a positive shape, got " + height + "x" + width + "x" + channels);
        long size = (long) height * width * channels;
        if (images.length == 0 || images.length % size != 0) {
            throw new IllegalArgumentException(what + ": " + images.length + " values are not a whole, non-zero number of " + height + "x" + width + "x" + channels + " images");
        }
        return (int) (images.length / size);
    }

    private static void checkShape(int height, int width, int channels) {
        if (height < 3 || width < 3) throw new IllegalArgumentException("the Laplacian needs images of at least 3x3, got " + height + "x" + width);
        if (channels < 1) throw new IllegalArgumentException("channels must be >= 1, got " + channels);
    }
}
