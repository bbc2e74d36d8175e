package dev.ambient.model.corrupt;

import java.math.BigDecimal;
import java.util.SplittableRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A degradation of one image, for the paper's controlled experiments (spec §1.3). Every
 * corruption takes an HWC float image in [−1, 1] and returns a new one; the input is not
 * changed. Results are not clipped or quantised here (the reference's classifier trains on such
 * floats); {@link Corrupter} quantises them to the dataset's 8-bit cache, as the reference writes
 * its corrupted datasets back to PNG.
 *
 * <p>Names follow the reference's noise configurations, with '-' for the decimal point:
 * <table>
 * <caption>names</caption>
 * <tr><td>{@code identity}</td><td>no change</td></tr>
 * <tr><td>{@code blur0-4}, {@code blur0-6}, {@code blur0-8}, {@code blur1}</td><td>Gaussian blur of std 0.4, 0.6, 0.8, 1.0 px</td></tr>
 * <tr><td>{@code jpeg15}, {@code jpeg18}, {@code jpeg25}, {@code jpeg50}, {@code jpeg75}, {@code jpeg90}</td><td>JPEG at that quality</td></tr>
 * <tr><td>{@code motionblur3}</td><td>linear motion blur over 3 px, angle uniform per sample</td></tr>
 * <tr><td>{@code motionblur5a30}</td><td>the same over 5 px at a fixed 30°</td></tr>
 * <tr><td>{@code noise0-1}</td><td>additive Gaussian noise of std 0.1 (in [−1, 1] units)</td></tr>
 * <tr><td>{@code downsample2}</td><td>down by 2 (block mean) and back up (bilinear)</td></tr>
 * </table>
 * The last two have no name in the reference, which has the operations but no configuration
 * using them.
 */
public sealed interface Corruption {

    /** The name, as {@link #parse} reads it. */
    String name();

    /**
     * The corrupted copy of {@code image} (H·W·C floats, HWC). {@code random} supplies any
     * per-sample randomness (noise, a motion angle); pass the sample's own stream so the result
     * depends only on the seed and the sample.
     */
    float[] apply(float[] image, int height, int width, int channels, SplittableRandom random);

    /** No change (the reference's {@code identity} configuration). */
    record Identity() implements Corruption {
        public String name() { return "identity"; }
        public float[] apply(float[] image, int height, int width, int channels, SplittableRandom random) {
            check(image, height, width, channels);
            return image.clone();
        }
    }

    /**
     * Gaussian blur of std {@code sigma} pixels over H and W, separable, truncated at radius
     * {@code (int)(4σ + 0.5)}, with half-sample symmetric reflection at the borders (SciPy's
     * {@code gaussian_filter} defaults, which the reference uses).
     */
    record GaussianBlur(double sigma) implements Corruption {
        public GaussianBlur {
            if (!(sigma >= 0) || sigma > 64) throw new IllegalArgumentException("blur sigma must be in [0, 64], got " + sigma);
        }
        public String name() { return "blur" + decimal(sigma); }
        public float[] apply(float[] image, int height, int width, int channels, SplittableRandom random) {
            check(image, height, width, channels);
            return Filters.gaussianBlur(image, height, width, channels, sigma);
        }
    }

    /**
     * A real JPEG encode and decode at {@code quality} (1–100) with the JDK's JPEG codec: the
     * image is quantised to 8 bits first, as the reference does before PIL's encoder. The JDK
     * scales the standard IJG quantisation tables by quality as libjpeg does, but the two
     * encoders are not bit-identical, so results at one nominal quality are close to, not equal
     * to, PIL's.
     */
    record Jpeg(int quality) implements Corruption {
        public Jpeg {
            if (quality < 1 || quality > 100) throw new IllegalArgumentException("JPEG quality must be in 1..100, got " + quality);
        }
        public String name() { return "jpeg" + quality; }
        public float[] apply(float[] image, int height, int width, int channels, SplittableRandom random) {
            check(image, height, width, channels);
            if (channels != 1 && channels != 3) throw new IllegalArgumentException("JPEG needs 1 or 3 channels, got " + channels);
            return Filters.jpeg(image, height, width, channels, quality);
        }
    }

    /**
     * Linear motion blur: the average of the image along a straight segment of {@code length}
     * pixels through each pixel, at {@code angleDegrees} (0 = horizontal, counter-clockwise), or
     * at an angle drawn uniformly in [0°, 180°) per sample when the angle is NaN. Reflect
     * boundary. Unlike the reference, whose "motion blur" is an isotropic Gaussian blur (spec
     * §1.17, defect 10), this is directional.
     */
    record MotionBlur(int length, double angleDegrees) implements Corruption {
        public MotionBlur {
            if (length < 1 || length > 64) throw new IllegalArgumentException("motion length must be in 1..64 px, got " + length);
            if (Double.isInfinite(angleDegrees)) throw new IllegalArgumentException("motion angle must be finite or NaN (random)");
        }
        /** Motion over {@code length} pixels in a random direction per sample. */
        public MotionBlur(int length) { this(length, Double.NaN); }
        public String name() {
            return "motionblur" + length + (Double.isNaN(angleDegrees) ? "" : "a" + decimal(angleDegrees));
        }
        public float[] apply(float[] image, int height, int width, int channels, SplittableRandom random) {
            check(image, height, width, channels);
            double deg = Double.isNaN(angleDegrees) ? random.nextDouble(180) : angleDegrees;
            return Filters.convolve(image, height, width, channels, Filters.motionKernel(length, Math.toRadians(deg)));
        }
    }

    /** Additive Gaussian noise of std {@code sigma} in [−1, 1] units, i.i.d. per value. */
    record AdditiveNoise(double sigma) implements Corruption {
        public AdditiveNoise {
            if (!(sigma >= 0) || Double.isInfinite(sigma)) throw new IllegalArgumentException("noise sigma must be finite and >= 0, got " + sigma);
        }
        public String name() { return "noise" + decimal(sigma); }
        public float[] apply(float[] image, int height, int width, int channels, SplittableRandom random) {
            check(image, height, width, channels);
            float[] out = new float[image.length];
            for (int k = 0; k < out.length; k++) out[k] = (float) (image[k] + sigma * random.nextGaussian());
            return out;
        }
    }

    /**
     * Down-sampling by {@code factor} (mean of each factor×factor block) and back up to the full
     * size by bilinear interpolation. H and W must be multiples of the factor.
     */
    record DownUp(int factor) implements Corruption {
        public DownUp {
            if (factor < 1) throw new IllegalArgumentException("down-sampling factor must be >= 1, got " + factor);
        }
        public String name() { return "downsample" + factor; }
        public float[] apply(float[] image, int height, int width, int channels, SplittableRandom random) {
            check(image, height, width, channels);
            if (height % factor != 0 || width % factor != 0) {
                throw new IllegalArgumentException(height + "x" + width + " is not a multiple of the down-sampling factor " + factor);
            }
            return Filters.downUp(image, height, width, channels, factor);
        }
    }

    Pattern NAME = Pattern.compile("(identity)|(blur|noise)(\\d+(?:-\\d+)?)|(jpeg|downsample)(\\d+)|motionblur(\\d+)(?:a(\\d+(?:-\\d+)?))?");

    /** The corruption of this name (see the table above); an unknown name is an error that lists the forms. */
    static Corruption parse(String name) {
        Matcher m = NAME.matcher(name.strip());
        if (!m.matches()) {
            throw new IllegalArgumentException("unknown corruption '" + name + "'; expected identity, blur<s> (blur0-8), "
                    + "jpeg<quality> (jpeg25), motionblur<px>[a<degrees>] (motionblur3), noise<s> (noise0-1) or downsample<factor>");
        }
        if (m.group(1) != null) return new Identity();
        if (m.group(2) != null) {
            double v = Double.parseDouble(m.group(3).replace('-', '.'));
            return m.group(2).equals("blur") ? new GaussianBlur(v) : new AdditiveNoise(v);
        }
        if (m.group(4) != null) {
            int v = Integer.parseInt(m.group(5));
            return m.group(4).equals("jpeg") ? new Jpeg(v) : new DownUp(v);
        }
        int length = Integer.parseInt(m.group(6));
        return new MotionBlur(length, m.group(7) == null ? Double.NaN : Double.parseDouble(m.group(7).replace('-', '.')));
    }

    /** 0.8 → "0-8", 1.0 → "1", 0.25 → "0-25". */
    private static String decimal(double v) {
        return BigDecimal.valueOf(v).stripTrailingZeros().toPlainString().replace('.', '-');
    }

    private static void check(float[] image, int height, int width, int channels) {
        if (height <= 0 || width <= 0 || channels <= 0 || image.length != (long) height * width * channels) {
            throw new IllegalArgumentException("image of " + image.length + " values is not " + height + "x" + width + "x" + channels);
        }
    }
}
