package dev.ambient.model.corrupt;

import dev.ambient.model.data.ImageDataset;
import dev.ambient.model.data.Images;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageWriteParam;
import javax.imageio.ImageWriter;
import javax.imageio.stream.MemoryCacheImageOutputStream;

/** The image operations behind the corruptions, on one HWC float image. */
final class Filters {

    private Filters() {}

    /**
     * Index {@code i} mapped into [0, n) by half-sample symmetric reflection
     * ({@code d c b a | a b c d | d c b a}, SciPy's "reflect"), repeated for any distance.
     */
    static int reflect(int i, int n) {
        int period = 2 * n;
        int m = Math.floorMod(i, period);
        return m < n ? m : period - 1 - m;
    }

    /** The normalised 1-D Gaussian of std {@code sigma}, radius {@code (int) (4σ + 0.5)} as SciPy truncates it. */
    static double[] gaussianKernel(double sigma) {
        int radius = (int) (4 * sigma + 0.5);
        double[] k = new double[2 * radius + 1];
        double sum = 0;
        for (int t = -radius; t <= radius; t++) sum += k[t + radius] = Math.exp(-0.5 * t * t / (sigma * sigma));
        for (int t = 0; t < k.length; t++) k[t] /= sum;
        return k;
    }

    /** Separable Gaussian blur over H and W (not channels), reflect boundary; σ = 0 is a copy. */
    static float[] gaussianBlur(float[] img, int h, int w, int c, double sigma) {
        if (sigma == 0) return img.clone();
        double[] k = gaussianKernel(sigma);
        int r = k.length / 2;
        float[] tmp = new float[img.length], out = new float[img.length];
        double[] acc = new double[c];
        for (int y = 0; y < h; y++) { // along W
            for (int x = 0; x < w; x++) {
                java.util.Arrays.fill(acc, 0);
                for (int t = -r; t <= r; t++) {
                    int src = (y * w + reflect(x + t, w)) * c;
                    for (int ch = 0; ch < c; ch++) acc[ch] += k[t + r] * img[src + ch];
                }
                for (int ch = 0; ch < c; ch++) tmp[(y * w + x) * c + ch] = (float) acc[ch];
            }
        }
        for (int y = 0; y < h; y++) { // along H
            for (int x = 0; x < w; x++) {
                java.util.Arrays.fill(acc, 0);
                for (int t = -r; t <= r; t++) {
                    int src = (reflect(y + t, h) * w + x) * c;
                    for (int ch = 0; ch < c; ch++) acc[ch] += k[t + r] * tmp[src + ch];
                }
                for (int ch = 0; ch < c; ch++) out[(y * w + x) * c + ch] = (float) acc[ch];
            }
        }
        return out;
    }

    /**
     * The kernel of a linear motion of {@code length} pixels at {@code angleRad} (0 = along +x,
     * counter-clockwise with y pointing down the image): the segment from −L/2 to L/2 through the
     * centre, sampled finely, each sample counted in the cell that contains it, normalised. At 0°
     * and 90° it is exactly a box of L pixels (L odd); at other angles, the rasterised line.
     * Returned as a (2R+1)² row-major array.
     */
    static double[] motionKernel(int length, double angleRad) {
        int radius = (length + 1) / 2 + 1;
        int side = 2 * radius + 1;
        double[] k = new double[side * side];
        int samples = 64 * length;
        double cos = Math.cos(angleRad), sin = -Math.sin(angleRad); // image y grows downwards
        for (int s = 0; s < samples; s++) {
            double t = -length / 2.0 + (s + 0.5) * length / samples;
            int dx = (int) Math.round(t * cos), dy = (int) Math.round(t * sin);
            k[(dy + radius) * side + (dx + radius)] += 1.0 / samples;
        }
        return k;
    }

    /** 2-D correlation with a square kernel (side odd), reflect boundary. */
    static float[] convolve(float[] img, int h, int w, int c, double[] kernel) {
        int side = (int) Math.round(Math.sqrt(kernel.length)), r = side / 2;
        float[] out = new float[img.length];
        double[] acc = new double[c];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                java.util.Arrays.fill(acc, 0);
                for (int dy = -r; dy <= r; dy++) {
                    for (int dx = -r; dx <= r; dx++) {
                        double kv = kernel[(dy + r) * side + dx + r];
                        if (kv == 0) continue;
                        int src = (reflect(y + dy, h) * w + reflect(x + dx, w)) * c;
                        for (int ch = 0; ch < c; ch++) acc[ch] += kv * img[src + ch];
                    }
                }
                for (int ch = 0; ch < c; ch++) out[(y * w + x) * c + ch] = (float) acc[ch];
            }
        }
        return out;
    }

    /**
     * A real JPEG round trip: quantise to 8 bits, encode with the JDK's JPEG writer at
     * {@code quality} (1–100, scaled to ImageIO's 0–1 compression quality), decode, back to [−1, 1].
     * Grey images (C = 1) are coded as grey JPEGs; RGB as YCbCr with the writer's default
     * chroma subsampling.
     */
    static float[] jpeg(float[] img, int h, int w, int c, int quality) {
        byte[] codes = new byte[img.length];
        for (int k = 0; k < img.length; k++) codes[k] = ImageDataset.quantize(img[k]);
        BufferedImage in = Images.toImage(codes, 0, h, w, c);
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        ImageWriter writer = ImageIO.getImageWritersByFormatName("jpeg").next();
        try (MemoryCacheImageOutputStream out = new MemoryCacheImageOutputStream(bytes)) {
            ImageWriteParam param = writer.getDefaultWriteParam();
            param.setCompressionMode(ImageWriteParam.MODE_EXPLICIT);
            param.setCompressionQuality(quality / 100f);
            writer.setOutput(out);
            writer.write(null, new IIOImage(in, null, null), param);
        } catch (IOException e) {
            throw new UncheckedIOException("JPEG encoding failed", e);
        } finally {
            writer.dispose();
        }
        BufferedImage decoded;
        try {
            decoded = ImageIO.read(new ByteArrayInputStream(bytes.toByteArray()));
        } catch (IOException e) {
            throw new UncheckedIOException("JPEG decoding of our own output failed", e);
        }
        byte[] back = Images.codesOf(decoded, c);
        float[] result = new float[img.length];
        for (int k = 0; k < img.length; k++) result[k] = ImageDataset.decode(back[k]);
        return result;
    }

    /**
     * Down-sampling by {@code f} (mean of each f×f block) and back up to H×W by bilinear
     * interpolation (pixel centres aligned, edges clamped), the loss of resolution of a small
     * image shown large. H and W must be multiples of f.
     */
    static float[] downUp(float[] img, int h, int w, int c, int f) {
        int sh = h / f, sw = w / f;
        float[] small = new float[sh * sw * c];
        for (int y = 0; y < sh; y++) {
            for (int x = 0; x < sw; x++) {
                for (int ch = 0; ch < c; ch++) {
                    double s = 0;
                    for (int dy = 0; dy < f; dy++) {
                        for (int dx = 0; dx < f; dx++) s += img[((y * f + dy) * w + x * f + dx) * c + ch];
                    }
                    small[(y * sw + x) * c + ch] = (float) (s / (f * f));
                }
            }
        }
        float[] out = new float[img.length];
        for (int y = 0; y < h; y++) {
            double sy = Math.clamp((y + 0.5) / f - 0.5, 0, sh - 1);
            int y0 = (int) Math.floor(sy), y1 = Math.min(y0 + 1, sh - 1);
            double ty = sy - y0;
            for (int x = 0; x < w; x++) {
                double sx = Math.clamp((x + 0.5) / f - 0.5, 0, sw - 1);
                int x0 = (int) Math.floor(sx), x1 = Math.min(x0 + 1, sw - 1);
                double tx = sx - x0;
                for (int ch = 0; ch < c; ch++) {
                    double top = (1 - tx) * small[(y0 * sw + x0) * c + ch] + tx * small[(y0 * sw + x1) * c + ch];
                    double bottom = (1 - tx) * small[(y1 * sw + x0) * c + ch] + tx * small[(y1 * sw + x1) * c + ch];
                    out[(y * w + x) * c + ch] = (float) ((1 - ty) * top + ty * bottom);
                }
            }
        }
        return out;
    }
}
