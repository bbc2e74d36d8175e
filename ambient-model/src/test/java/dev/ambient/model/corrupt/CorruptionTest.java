package dev.ambient.model.corrupt;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.model.data.ImageDataset;
import dev.ambient.model.data.ProceduralShapes;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Each corruption against a float64 reference or a defining property, and the seeded selection. */
class CorruptionTest {

    static SplittableRandom freshRandom() {
        long seed = System.nanoTime();
        System.out.println("random seed " + seed);
        return new SplittableRandom(seed);
    }

    static float[] randomImage(SplittableRandom random, int n) {
        float[] x = new float[n];
        for (int k = 0; k < n; k++) x[k] = (float) random.nextDouble(-1, 1);
        return x;
    }

    /** Direct 2-D Gaussian over every (dy, dx) in float64, reflect boundary, SciPy's radius. */
    static double[] referenceBlur(float[] x, int h, int w, int c, double sigma) {
        int r = (int) (4 * sigma + 0.5);
        double norm = 0;
        for (int t = -r; t <= r; t++) norm += Math.exp(-0.5 * t * t / (sigma * sigma));
        double[] out = new double[x.length];
        for (int y = 0; y < h; y++) for (int xx = 0; xx < w; xx++) for (int ch = 0; ch < c; ch++) {
            double s = 0;
            for (int dy = -r; dy <= r; dy++) for (int dx = -r; dx <= r; dx++) {
                double wgt = Math.exp(-0.5 * (dy * dy + dx * dx) / (sigma * sigma)) / (norm * norm);
                s += wgt * x[(Filters.reflect(y + dy, h) * w + Filters.reflect(xx + dx, w)) * c + ch];
            }
            out[(y * w + xx) * c + ch] = s;
        }
        return out;
    }

    @Test
    void reflectIsHalfSampleSymmetric() {
        int[] expect = {2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0, 0}; // d c b a | a b c d | d c b a ... for n = 4, i = -3..8
        for (int i = -3; i <= 8; i++) assertEquals(expect[i + 3], Filters.reflect(i, 4), "i = " + i);
        assertEquals(0, Filters.reflect(-1, 1));
        assertEquals(0, Filters.reflect(5, 1));
    }

    @Test
    void gaussianBlurMatchesADirectFloat64Convolution() {
        SplittableRandom random = freshRandom();
        for (double sigma : new double[] {0.4, 0.6, 0.8, 1.0, 2.5}) {
            int h = 5 + random.nextInt(12), w = 5 + random.nextInt(12), c = 1 + random.nextInt(3);
            float[] x = randomImage(random, h * w * c);
            float[] y = new Corruption.GaussianBlur(sigma).apply(x, h, w, c, random);
            double[] ref = referenceBlur(x, h, w, c, sigma);
            for (int k = 0; k < y.length; k++) assertEquals(ref[k], y[k], 1e-5 * (1 + Math.abs(ref[k])), "sigma " + sigma + " at " + k);
        }
        float[] x = randomImage(random, 4 * 4 * 3);
        assertArrayEquals(x, new Corruption.GaussianBlur(0).apply(x, 4, 4, 3, random));
    }

    @Test
    void blurKeepsAConstantImageAndTheMeanOfAPeriodicOne() {
        SplittableRandom random = freshRandom();
        float v = (float) random.nextDouble(-1, 1);
        float[] flat = new float[6 * 7 * 3];
        java.util.Arrays.fill(flat, v);
        for (Corruption c : List.of(new Corruption.GaussianBlur(1.3), new Corruption.MotionBlur(5), new Corruption.DownUp(1))) {
            for (float out : c.apply(flat, 6, 7, 3, random)) assertEquals(v, out, 1e-6, c.name());
        }
        float[] sixBy8 = new float[6 * 8];
        java.util.Arrays.fill(sixBy8, v);
        for (float out : new Corruption.DownUp(2).apply(sixBy8, 6, 8, 1, random)) assertEquals(v, out, 1e-6);
    }

    @Test
    void motionKernelIsALineOfTheGivenLengthAndAngle() {
        // horizontal and vertical: exactly a box of L pixels
        double[] k = Filters.motionKernel(5, 0);
        int side = (int) Math.sqrt(k.length), r = side / 2;
        for (int dy = -r; dy <= r; dy++) for (int dx = -r; dx <= r; dx++) {
            double want = dy == 0 && Math.abs(dx) <= 2 ? 0.2 : 0;
            assertEquals(want, k[(dy + r) * side + dx + r], 1e-12, dx + "," + dy);
        }
        double[] v = Filters.motionKernel(3, Math.PI / 2);
        side = (int) Math.sqrt(v.length);
        r = side / 2;
        for (int dy = -1; dy <= 1; dy++) assertEquals(1.0 / 3, v[(dy + r) * side + r], 1e-12);
        // 45 degrees: mass only on the rising diagonal (image y down), symmetric, sums to one
        double[] d = Filters.motionKernel(7, Math.PI / 4);
        side = (int) Math.sqrt(d.length);
        r = side / 2;
        double sum = 0;
        for (int dy = -r; dy <= r; dy++) for (int dx = -r; dx <= r; dx++) {
            double w = d[(dy + r) * side + dx + r];
            sum += w;
            if (dx != -dy) assertEquals(0, w, 0, "off the diagonal at " + dx + "," + dy);
            assertEquals(w, d[(-dy + r) * side - dx + r], 1e-12, "point symmetry");
        }
        assertEquals(1, sum, 1e-12);
    }

    @Test
    void motionBlurSmearsAlongItsDirectionOnly() {
        SplittableRandom random = freshRandom();
        int h = 9, w = 9;
        float[] dot = new float[h * w];
        java.util.Arrays.fill(dot, -1);
        dot[4 * w + 4] = 1;
        float[] out = new Corruption.MotionBlur(5, 0).apply(dot, h, w, 1, random);
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) {
            boolean onLine = y == 4 && Math.abs(x - 4) <= 2;
            assertEquals(onLine ? -1 + 2 / 5.0 : -1, out[y * w + x], 1e-6, x + "," + y);
        }
        // against the direct float64 correlation with the kernel, at a random angle and length
        int len = 2 + random.nextInt(8);
        double deg = random.nextDouble(180);
        int c = 3;
        h = 11;
        w = 13;
        float[] x = randomImage(random, h * w * c);
        float[] y = new Corruption.MotionBlur(len, deg).apply(x, h, w, c, random);
        double[] k = Filters.motionKernel(len, Math.toRadians(deg));
        int side = (int) Math.sqrt(k.length), r = side / 2;
        for (int yy = 0; yy < h; yy++) for (int xx = 0; xx < w; xx++) for (int ch = 0; ch < c; ch++) {
            double s = 0;
            for (int dy = -r; dy <= r; dy++) for (int dx = -r; dx <= r; dx++) {
                s += k[(dy + r) * side + dx + r] * x[(Filters.reflect(yy + dy, h) * w + Filters.reflect(xx + dx, w)) * c + ch];
            }
            assertEquals(s, y[(yy * w + xx) * c + ch], 1e-5);
        }
    }

    @Test
    void jpegIsARealLossyRoundTripThatImprovesWithQuality() {
        long seed = freshRandom().nextLong();
        ImageDataset shapes = ProceduralShapes.generate(8, 32, seed);
        double previous = Double.POSITIVE_INFINITY;
        for (int q : new int[] {15, 25, 50, 90}) {
            double err = 0;
            for (int i = 0; i < shapes.size(); i++) {
                float[] x = shapes.image(i);
                float[] y = new Corruption.Jpeg(q).apply(x, 32, 32, 3, null);
                for (int k = 0; k < x.length; k++) {
                    err += (x[k] - y[k]) * (x[k] - y[k]);
                    assertTrue(y[k] >= -1 && y[k] <= 1);
                }
            }
            assertTrue(err > 0, "JPEG " + q + " changed nothing");
            assertTrue(err < previous, "quality " + q + " is not better than the one before: " + err + " vs " + previous);
            previous = err;
        }
        // grey images too, and the output is already on the 8-bit grid
        float[] grey = randomImage(new SplittableRandom(seed), 16 * 16);
        for (float v : new Corruption.Jpeg(50).apply(grey, 16, 16, 1, null)) {
            assertEquals(v, ImageDataset.decode(ImageDataset.quantize(v)), 0);
        }
    }

    @Test
    void downUpReproducesARampAwayFromTheBordersAndBlursDetail() {
        SplittableRandom random = freshRandom();
        int h = 8, w = 12, f = 2 + 2 * random.nextInt(2);
        // block means of a linear ramp sit on the ramp, and bilinear interpolation reproduces it exactly
        double a = random.nextDouble(-0.05, 0.05), b = random.nextDouble(-0.05, 0.05), c0 = random.nextDouble(-0.3, 0.3);
        float[] ramp = new float[h * w];
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) ramp[y * w + x] = (float) (a * x + b * y + c0);
        float[] back = new Corruption.DownUp(f).apply(ramp, h, w, 1, random);
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) {
            boolean unclamped = x >= f / 2.0 - 0.5 && x <= w - f / 2.0 - 0.5 && y >= f / 2.0 - 0.5 && y <= h - f / 2.0 - 0.5;
            if (unclamped) assertEquals(ramp[y * w + x], back[y * w + x], 1e-6, x + "," + y);
        }
        // a checkerboard of period 2 averages to its mean inside every block
        float[] checker = new float[h * w];
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) checker[y * w + x] = (x + y) % 2 == 0 ? 0.8f : -0.4f;
        for (float v : new Corruption.DownUp(2).apply(checker, h, w, 1, random)) assertEquals(0.2f, v, 1e-6);
        float[] x = randomImage(random, h * w);
        assertThrows(IllegalArgumentException.class, () -> new Corruption.DownUp(5).apply(x, h, w, 1, random));
    }

    @Test
    void additiveNoiseHasTheRequestedStd() {
        SplittableRandom random = freshRandom();
        int n = 64 * 64 * 3;
        float[] x = randomImage(random, n);
        double sigma = 0.2;
        float[] y = new Corruption.AdditiveNoise(sigma).apply(x, 64, 64, 3, random);
        double s = 0, s2 = 0;
        for (int k = 0; k < n; k++) {
            double d = y[k] - x[k];
            s += d;
            s2 += d * d;
        }
        double mean = s / n, std = Math.sqrt(s2 / n - mean * mean);
        assertEquals(0, mean, 6 * sigma / Math.sqrt(n));
        assertEquals(sigma, std, 6 * sigma / Math.sqrt(2.0 * n));
    }

    @Test
    void namesRoundTripThroughParse() {
        for (String name : List.of("identity", "blur0-4", "blur0-6", "blur0-8", "blur1", "jpeg15", "jpeg18", "jpeg25",
                "jpeg50", "jpeg75", "jpeg90", "motionblur3", "motionblur5a30", "motionblur5a22-5", "noise0-1", "downsample2")) {
            assertEquals(name, Corruption.parse(name).name());
        }
        assertEquals(new Corruption.GaussianBlur(0.8), Corruption.parse("blur0-8"));
        assertEquals(new Corruption.Jpeg(25), Corruption.parse("jpeg25"));
        assertInstanceOf(Corruption.MotionBlur.class, Corruption.parse("motionblur3"));
        var e = assertThrows(IllegalArgumentException.class, () -> Corruption.parse("sharpen2"));
        assertTrue(e.getMessage().contains("sharpen2"));
        assertThrows(IllegalArgumentException.class, () -> Corruption.parse("jpeg0"));
        assertThrows(IllegalArgumentException.class, () -> new Corruption.GaussianBlur(-1));
    }

    @Test
    void cleanFractionKeepsExactlyThatManyCleanAndNests() {
        long seed = freshRandom().nextLong();
        ImageDataset d = ProceduralShapes.generate(200, 16, seed);
        List<Corruption> blur = List.of(new Corruption.GaussianBlur(0.8));
        var tenth = Corrupter.withCleanFraction(d, blur, 0.1, seed);
        var half = Corrupter.withCleanFraction(d, blur, 0.5, seed);
        assertEquals(180, tenth.corruptedCount());
        assertEquals(100, half.corruptedCount());
        for (int i = 0; i < d.size(); i++) {
            if (!tenth.corrupted(i)) assertFalse(half.corrupted(i), "clean at 10% must be clean at 50%");
            if (tenth.corrupted(i)) {
                assertEquals("blur0-8", tenth.corruptionName(i));
                assertEquals(1, tenth.corruptionLabel(i));
                assertFalse(java.util.Arrays.equals(d.codes(i), tenth.dataset().codes(i)), "blurred sample " + i + " changed");
            } else {
                assertNull(tenth.corruptionName(i));
                assertArrayEquals(d.codes(i), tenth.dataset().codes(i));
            }
            assertEquals(d.name(i), tenth.dataset().name(i));
            assertEquals(d.label(i), tenth.dataset().label(i));
        }
        var again = Corrupter.withCleanFraction(d, blur, 0.1, seed);
        for (int i = 0; i < d.size(); i++) assertArrayEquals(tenth.dataset().codes(i), again.dataset().codes(i));
        assertNotEquals(java.util.Arrays.toString(tenth.corruptedMask()),
                java.util.Arrays.toString(Corrupter.withCleanFraction(d, blur, 0.1, seed + 1).corruptedMask()));
    }

    @Test
    void probabilityModeIsPerIndexNestedAndMixesCorruptions() {
        long seed = freshRandom().nextLong();
        ImageDataset d = ProceduralShapes.generate(400, 16, seed);
        List<Corruption> mix = List.of(Corruption.parse("blur1"), Corruption.parse("jpeg25"), Corruption.parse("motionblur3"));
        var p9 = Corrupter.withProbability(d, mix, 0.9, seed);
        var p5 = Corrupter.withProbability(d, mix, 0.5, seed);
        int[] uses = new int[3];
        for (int i = 0; i < d.size(); i++) {
            if (!p9.corrupted(i)) assertFalse(p5.corrupted(i));
            if (p9.corrupted(i)) uses[mix.indexOf(p9.applied()[i])]++;
        }
        // binomial(400, 0.9): 6 standard deviations either side
        assertEquals(360, p9.corruptedCount(), 6 * Math.sqrt(400 * 0.09));
        for (int u : uses) assertTrue(u > 60, "each corruption is chosen: " + java.util.Arrays.toString(uses));
        // the result does not depend on which samples are corrupted alongside
        var sub = Corrupter.withProbability(d.subset(java.util.stream.IntStream.range(0, 50).toArray()), mix, 0.9, seed);
        for (int i = 0; i < 50; i++) assertArrayEquals(p9.dataset().codes(i), sub.dataset().codes(i));
    }
}
