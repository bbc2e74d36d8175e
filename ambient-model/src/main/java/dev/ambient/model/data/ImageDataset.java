package dev.ambient.model.data;

import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * N images of H×W×C in memory, each with a name (its path relative to the dataset root, as
 * annotation files refer to it) and optionally an integer class label.
 *
 * <p>Pixels are kept as one uint8 code per value, NHWC, which is 4× smaller than float32 and
 * loses nothing for datasets that come from 8-bit files. Code {@code u} stands for
 * {@code x = u/127.5 − 1} in [−1, 1] (EDM's normalisation); {@link #quantize(float)} is its
 * inverse, rounding to nearest and clipping. The whole cache is one array, so a dataset holds at
 * most 2³¹−1 values (≈ 700 000 images of 32×32×3 · 3, or CIFAR-10 many times over).
 *
 * <p>Instances are immutable and safe to share between threads.
 */
public final class ImageDataset {

    private static final float[] DECODE = new float[256];
    static {
        for (int u = 0; u < 256; u++) DECODE[u] = (float) (u / 127.5 - 1);
    }

    private final int height, width, channels;
    private final byte[] pixels;
    private final int[] labels;
    private final int labelCount;
    private final String[] names;
    private volatile Map<String, Integer> byName;

    private ImageDataset(int height, int width, int channels, byte[] pixels, int[] labels, String[] names) {
        this.height = height;
        this.width = width;
        this.channels = channels;
        this.pixels = pixels;
        this.labels = labels;
        this.names = names;
        int max = -1;
        if (labels != null) for (int l : labels) max = Math.max(max, l);
        this.labelCount = max + 1;
    }

    /**
     * A dataset over the given arrays, which it takes over (callers must not change them later).
     *
     * @param pixels N·H·W·C uint8 codes, NHWC
     * @param labels N non-negative class labels, or null for an unlabelled dataset
     * @param names N distinct names
     */
    public static ImageDataset of(int height, int width, int channels, byte[] pixels, int[] labels, String[] names) {
        if (height <= 0 || width <= 0 || channels <= 0) {
            throw new IllegalArgumentException("image shape " + height + "x" + width + "x" + channels + " must be positive");
        }
        Objects.requireNonNull(pixels, "pixels");
        Objects.requireNonNull(names, "names");
        long per = (long) height * width * channels;
        if (pixels.length != per * names.length) {
            throw new IllegalArgumentException(names.length + " images of " + height + "x" + width + "x" + channels
                    + " need " + per * names.length + " values, got " + pixels.length);
        }
        if (labels != null) {
            if (labels.length != names.length) {
                throw new IllegalArgumentException(names.length + " images but " + labels.length + " labels");
            }
            for (int i = 0; i < labels.length; i++) {
                if (labels[i] < 0) throw new IllegalArgumentException("label of " + names[i] + " is negative: " + labels[i]);
            }
        }
        for (int i = 0; i < names.length; i++) {
            if (names[i] == null || names[i].isEmpty()) throw new IllegalArgumentException("image " + i + " has no name");
        }
        return new ImageDataset(height, width, channels, pixels, labels, names);
    }

    /** The uint8 code nearest to {@code x} (x clipped to [−1, 1]); NaN maps to 0 (mid-grey would hide it less, but NaN is a bug upstream). */
    public static byte quantize(float x) {
        float v = (x + 1f) * 127.5f;
        if (!(v > 0f)) return 0;
        if (v >= 255f) return (byte) 255;
        return (byte) Math.round(v);
    }

    /** The value in [−1, 1] that a uint8 code stands for. */
    public static float decode(byte code) {
        return DECODE[code & 0xff];
    }

    public int size() { return names.length; }
    public int height() { return height; }
    public int width() { return width; }
    public int channels() { return channels; }
    /** H·W·C, the number of values of one image. */
    public int imageSize() { return height * width * channels; }

    public boolean hasLabels() { return labels != null; }

    /** The class label of image {@code i}; fails on an unlabelled dataset. */
    public int label(int i) {
        if (labels == null) throw new IllegalStateException("the dataset has no labels");
        return labels[Objects.checkIndex(i, names.length)];
    }

    /** One more than the largest label (0 when unlabelled). */
    public int labelCount() { return labelCount; }

    /** The name of image {@code i}: its path relative to the dataset root, with '/' separators. */
    public String name(int i) { return names[Objects.checkIndex(i, names.length)]; }

    public List<String> names() { return List.of(names); }

    /** The index of the image with this name, or −1. */
    public int indexOf(String name) {
        Map<String, Integer> map = byName;
        if (map == null) {
            map = new HashMap<>(names.length * 2);
            for (int i = 0; i < names.length; i++) map.put(names[i], i);
            byName = map;
        }
        return map.getOrDefault(name, -1);
    }

    /** The uint8 code at (image, y, x, channel). */
    public int code(int i, int y, int x, int c) {
        Objects.checkIndex(i, names.length);
        Objects.checkIndex(y, height);
        Objects.checkIndex(x, width);
        Objects.checkIndex(c, channels);
        return pixels[(((i * height) + y) * width + x) * channels + c] & 0xff;
    }

    /** The value in [−1, 1] at (image, y, x, channel). */
    public float value(int i, int y, int x, int c) {
        return DECODE[code(i, y, x, c)];
    }

    /** Writes image {@code i} as H·W·C floats in [−1, 1] (HWC) into {@code dst} at {@code offset}. */
    public void copyTo(int i, float[] dst, int offset) {
        Objects.checkIndex(i, names.length);
        int n = imageSize();
        Objects.checkFromIndexSize(offset, n, dst.length);
        int base = i * n;
        for (int k = 0; k < n; k++) dst[offset + k] = DECODE[pixels[base + k] & 0xff];
    }

    /** Image {@code i} as a new HWC float array in [−1, 1]. */
    public float[] image(int i) {
        float[] out = new float[imageSize()];
        copyTo(i, out, 0);
        return out;
    }

    /** The uint8 codes of image {@code i} (a copy). */
    public byte[] codes(int i) {
        Objects.checkIndex(i, names.length);
        int n = imageSize();
        return Arrays.copyOfRange(pixels, i * n, (i + 1) * n);
    }

    /** Writes the images at {@code indices} one after another (NHWC) into {@code dst}. */
    public void gather(int[] indices, float[] dst) {
        int n = imageSize();
        if (dst.length < (long) indices.length * n) {
            throw new IllegalArgumentException(indices.length + " images need " + (long) indices.length * n + " floats, got " + dst.length);
        }
        for (int b = 0; b < indices.length; b++) copyTo(indices[b], dst, b * n);
    }

    /** The same names and labels over other pixels of the same shape (e.g. corrupted copies). */
    public ImageDataset withPixels(byte[] newPixels) {
        if (newPixels.length != pixels.length) {
            throw new IllegalArgumentException("expected " + pixels.length + " values, got " + newPixels.length);
        }
        return new ImageDataset(height, width, channels, newPixels, labels, names);
    }

    /** The images at {@code indices}, in that order (a repeated index repeats its name too). */
    public ImageDataset subset(int[] indices) {
        int n = imageSize();
        byte[] px = new byte[indices.length * n];
        String[] nm = new String[indices.length];
        int[] lb = labels == null ? null : new int[indices.length];
        for (int b = 0; b < indices.length; b++) {
            int i = Objects.checkIndex(indices[b], names.length);
            System.arraycopy(pixels, i * n, px, b * n, n);
            nm[b] = names[i];
            if (lb != null) lb[b] = labels[i];
        }
        return of(height, width, channels, px, lb, nm);
    }

    @Override
    public String toString() {
        return "ImageDataset[" + names.length + " x " + height + "x" + width + "x" + channels
                + (labels != null ? ", " + labelCount + " classes" : "") + "]";
    }
}
