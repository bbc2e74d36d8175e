package dev.ambient.model.data;

import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

/**
 * A built-in dataset that needs no download: one coloured shape per image, with hard (aliased)
 * edges, on a smoothly shaded background. The class label is the kind of shape. Sharp edges and
 * fine stripes are exactly what blur, JPEG and down-sampling destroy, so a corrupted copy is
 * easy to tell from a clean one by eye and by a classifier, which makes the set a fair small
 * stand-in for the paper's controlled experiments.
 *
 * <p>Image {@code i} depends only on {@code (seed, i)} and the size, never on {@code n} or on
 * other images: the first 100 images of a 1 000-image set are the 100-image set.
 */
public final class ProceduralShapes {

    /** The kinds of shape, in label order. */
    public enum Shape { CIRCLE, SQUARE, TRIANGLE, STRIPES, RING, CROSS }

    public static final List<String> CLASS_NAMES = List.of("circle", "square", "triangle", "stripes", "ring", "cross");

    private static final double MIN_CONTRAST = 0.35;

    private ProceduralShapes() {}

    /** {@code n} RGB images of {@code size}×{@code size} (8 to 512; the intended sizes are 16 and 32). */
    public static ImageDataset generate(int n, int size, long seed) {
        if (n <= 0) throw new IllegalArgumentException("need at least one image, got n = " + n);
        if (size < 8 || size > 512) throw new IllegalArgumentException("size " + size + " is outside 8..512");
        if ((long) n * size * size * 3 > Integer.MAX_VALUE - 8) throw new IllegalArgumentException(n + " images of " + size + "² do not fit");
        int per = size * size * 3;
        byte[] pixels = new byte[n * per];
        int[] labels = new int[n];
        String[] names = new String[n];
        IntStream.range(0, n).parallel().forEach(i -> {
            labels[i] = draw(size, sampleRandom(seed, i), pixels, i * per);
            names[i] = String.format("%05d/img%08d.png", i / 1000, i);
        });
        return ImageDataset.of(size, size, 3, pixels, labels, names);
    }

    /** An independent random stream for image {@code i} of the set with this seed. */
    static SplittableRandom sampleRandom(long seed, int i) {
        return new SplittableRandom(seed * 0x9E3779B97F4A7C15L + i).split();
    }

    /** Draws one image into {@code out} at {@code offset} (HWC uint8 codes) and returns its label. */
    private static int draw(int s, SplittableRandom rnd, byte[] out, int offset) {
        Shape shape = Shape.values()[rnd.nextInt(Shape.values().length)];
        double[] bg = colour(rnd), fg;
        do {
            fg = colour(rnd);
        } while (Math.abs(luma(fg) - luma(bg)) < MIN_CONTRAST && rnd.nextInt(64) != 0);
        // background: a gentle linear shade across the image, so only the shape has edges
        double shadeAngle = rnd.nextDouble(2 * Math.PI), shade = rnd.nextDouble(0.05, 0.2);
        double gx = Math.cos(shadeAngle) * shade / s, gy = Math.sin(shadeAngle) * shade / s;

        double cx = s * rnd.nextDouble(0.35, 0.65), cy = s * rnd.nextDouble(0.35, 0.65);
        double r = s * rnd.nextDouble(0.2, 0.34);
        double angle = rnd.nextDouble(Math.PI);
        double cos = Math.cos(angle), sin = Math.sin(angle);
        double period = Math.max(3, s * rnd.nextDouble(0.12, 0.25)); // stripes at least 3 px apart
        double thickness = r * rnd.nextDouble(0.3, 0.5);

        for (int y = 0; y < s; y++) {
            for (int x = 0; x < s; x++) {
                // pixel centres, in the shape's rotated frame
                double px = x + 0.5 - cx, py = y + 0.5 - cy;
                double u = cos * px + sin * py, v = -sin * px + cos * py;
                boolean inside = switch (shape) {
                    case CIRCLE -> u * u + v * v <= r * r;
                    case SQUARE -> Math.abs(u) <= r * 0.8 && Math.abs(v) <= r * 0.8;
                    case TRIANGLE -> inTriangle(u, v, r);
                    case STRIPES -> Math.floorMod((long) Math.floor(u / (period / 2)), 2) == 0;
                    case RING -> { double d = Math.sqrt(u * u + v * v); yield d <= r && d >= r - thickness; }
                    case CROSS -> (Math.abs(u) <= thickness / 2 && Math.abs(v) <= r) || (Math.abs(v) <= thickness / 2 && Math.abs(u) <= r);
                };
                int o = offset + (y * s + x) * 3;
                double t = (x - s / 2.0) * gx + (y - s / 2.0) * gy;
                for (int c = 0; c < 3; c++) {
                    double value = inside ? fg[c] : bg[c] + t;
                    out[o + c] = (byte) Math.round(255 * Math.clamp(value, 0.0, 1.0));
                }
            }
        }
        return shape.ordinal();
    }

    /** An upward-pointing equilateral triangle of circumradius r centred at the origin. */
    private static boolean inTriangle(double u, double v, double r) {
        // inside three half-planes whose outward normals are 120° apart, each edge at the inradius r/2
        for (int k = 0; k < 3; k++) {
            double a = Math.PI / 2 + k * 2 * Math.PI / 3;
            if (u * Math.cos(a) + v * Math.sin(a) > r / 2) return false;
        }
        return true;
    }

    /** A saturated-enough colour in [0, 1]³ from a random hue, saturation and value. */
    private static double[] colour(SplittableRandom rnd) {
        double h = rnd.nextDouble(6), sat = rnd.nextDouble(0.3, 1), val = rnd.nextDouble(0.15, 1);
        double c = val * sat, xx = c * (1 - Math.abs(h % 2 - 1)), m = val - c;
        double[] rgb = switch ((int) h) {
            case 0 -> new double[] {c, xx, 0};
            case 1 -> new double[] {xx, c, 0};
            case 2 -> new double[] {0, c, xx};
            case 3 -> new double[] {0, xx, c};
            case 4 -> new double[] {xx, 0, c};
            default -> new double[] {c, 0, xx};
        };
        for (int k = 0; k < 3; k++) rgb[k] += m;
        return rgb;
    }

    private static double luma(double[] rgb) {
        return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];
    }
}
