package dev.ambient.model.eval;

import dev.ambient.model.data.ImageDataset;
import java.util.Objects;

/**
 * FD_pix: the Fréchet distance between sets of images in the space of their downsampled pixels.
 * Each image (NHWC) is average-pooled per channel to {@code size × size} and flattened to
 * {@code size·size·C} features, then {@link FrechetDistance} compares the two sets. It needs no
 * trained network, so it is a check on the feature-space distance, and at 8×8 it sees layout,
 * colour and coarse shape but not fine detail (that is {@link Sharpness}'s job).
 *
 * <p>Pooling is by area, as a box filter: output cell {@code (i, j)} is the mean of the input
 * over the rectangle {@code [i·H/s, (i+1)·H/s) × [j·W/s, (j+1)·W/s)}, pixels cut by its edge
 * counted by the fraction inside. When {@code s} divides the size this is the plain block mean.
 */
public final class FdPixels {

    /** 8×8 per channel: 192 features for RGB, a covariance that a few thousand images estimate well. */
    public static final int DEFAULT_SIZE = 8;

    private FdPixels() {}

    /** FD_pix between two sets of NHWC images of one shape, pooled to {@code size × size}. */
    public static double distance(float[] generated, float[] reference, int height, int width, int channels, int size) {
        return FrechetDistance.distance(statistics(generated, height, width, channels, size), statistics(reference, height, width, channels, size));
    }

    /** Statistics of the pooled images, for caching a reference set. */
    public static FrechetDistance.Statistics statistics(float[] images, int height, int width, int channels, int size) {
        return FrechetDistance.statistics(features(images, height, width, channels, size), size * size * channels);
    }

    /** Statistics of the pooled images of a dataset. */
    public static FrechetDistance.Statistics statistics(ImageDataset dataset, int size) {
        Objects.requireNonNull(dataset, "dataset");
        int h = dataset.height(), w = dataset.width(), c = dataset.channels();
        checkSize(h, w, size);
        int dim = size * size * c;
        float[] features = new float[Math.multiplyExact(dataset.size(), dim)];
        float[] image = new float[dataset.imageSize()];
        double[][] wy = weights(h, size), wx = weights(w, size);
        for (int i = 0; i < dataset.size(); i++) {
            dataset.copyTo(i, image, 0);
            pool(image, 0, h, w, c, size, wy, wx, features, i * dim);
        }
        return FrechetDistance.statistics(features, dim);
    }

    /** The pooled, flattened images: {@code n × (size·size·C)} row after row, in (y, x, channel) order. */
    public static float[] features(float[] images, int height, int width, int channels, int size) {
        int n = Sharpness.countImages(images, height, width, channels, "images"); // pooling needs no 3x3 minimum
        checkSize(height, width, size);
        int dim = size * size * channels;
        float[] out = new float[Math.multiplyExact(n, dim)];
        double[][] wy = weights(height, size), wx = weights(width, size);
        for (int i = 0; i < n; i++) pool(images, i * height * width * channels, height, width, channels, size, wy, wx, out, i * dim);
        return out;
    }

    private static void pool(float[] x, int base, int h, int w, int c, int s, double[][] wy, double[][] wx, float[] out, int outBase) {
        double[] acc = new double[c];
        for (int oy = 0; oy < s; oy++) {
            for (int ox = 0; ox < s; ox++) {
                java.util.Arrays.fill(acc, 0);
                for (int y = 0; y < h; y++) {
                    double fy = wy[oy][y];
                    if (fy == 0) continue;
                    for (int xx = 0; xx < w; xx++) {
                        double f = fy * wx[ox][xx];
                        if (f == 0) continue;
                        int p = base + (y * w + xx) * c;
                        for (int ch = 0; ch < c; ch++) acc[ch] += f * x[p + ch];
                    }
                }
                for (int ch = 0; ch < c; ch++) out[outBase + (oy * s + ox) * c + ch] = (float) acc[ch];
            }
        }
    }

    /**
     * {@code weights[o][i]}: the fraction of input pixel {@code i} inside output cell {@code o},
     * divided by the cell's length {@code n/s}, so each row sums to 1.
     */
    static double[][] weights(int n, int s) {
        double[][] out = new double[s][n];
        double cell = (double) n / s;
        for (int o = 0; o < s; o++) {
            // integer bounds in units of 1/s pixel keep the edges exact: cell o is [o·n, (o+1)·n) / s
            long lo = (long) o * n, hi = (long) (o + 1) * n;
            for (int i = (int) (lo / s); i < n && (long) i * s < hi; i++) {
                long a = Math.max(lo, (long) i * s), b = Math.min(hi, (long) (i + 1) * s);
                if (b > a) out[o][i] = (double) (b - a) / s / cell;
            }
        }
        return out;
    }

    private static void checkSize(int height, int width, int size) {
        if (size < 1 || size > height || size > width) {
            throw new IllegalArgumentException("pooled size must be in [1, min(height, width)] = [1, " + Math.min(height, width) + "], got " + size);
        }
    }
}
