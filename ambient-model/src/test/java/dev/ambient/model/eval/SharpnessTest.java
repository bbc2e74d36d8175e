package dev.ambient.model.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.model.corrupt.Corruption;
import dev.ambient.model.data.ImageDataset;
import dev.ambient.model.data.ProceduralShapes;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The Laplacian energy on images whose value is known by hand, under blur, and against a float64 reference. */
class SharpnessTest {

    static SplittableRandom freshRandom() {
        long seed = System.nanoTime();
        System.out.println("random seed " + seed);
        return new SplittableRandom(seed);
    }

    static float[] randomImages(SplittableRandom r, int n) {
        float[] x = new float[n];
        for (int k = 0; k < n; k++) x[k] = (float) r.nextDouble(-1, 1);
        return x;
    }

    /** Direct definition over (n, y, x, c) with explicit neighbours, in float64. */
    static double reference(float[] x, int n, int h, int w, int c) {
        double s = 0;
        long count = 0;
        for (int i = 0; i < n; i++) for (int y = 1; y < h - 1; y++) for (int xx = 1; xx < w - 1; xx++) for (int ch = 0; ch < c; ch++) {
            double l = 4.0 * x[at(i, y, xx, ch, h, w, c)] - x[at(i, y - 1, xx, ch, h, w, c)] - x[at(i, y + 1, xx, ch, h, w, c)]
                    - x[at(i, y, xx - 1, ch, h, w, c)] - x[at(i, y, xx + 1, ch, h, w, c)];
            s += l * l;
            count++;
        }
        return s / count;
    }

    static int at(int i, int y, int x, int ch, int h, int w, int c) { return ((i * h + y) * w + x) * c + ch; }

    @Test
    void matchesTheDefinitionOnRandomImages() {
        SplittableRandom random = freshRandom();
        int n = 1 + random.nextInt(5), h = 3 + random.nextInt(14), w = 3 + random.nextInt(14), c = 1 + random.nextInt(3);
        float[] x = randomImages(random, n * h * w * c);
        assertEquals(reference(x, n, h, w, c), Sharpness.energy(x, h, w, c), 1e-12);
    }

    @Test
    void checkerboardsRampsAndConstantsByHand() {
        SplittableRandom random = freshRandom();
        int h = 5 + random.nextInt(8), w = 5 + random.nextInt(8);
        float a = (float) random.nextDouble(0.1, 1);
        float[] board = new float[h * w], ramp = new float[h * w], flat = new float[h * w];
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) {
            board[y * w + x] = (y + x) % 2 == 0 ? a : -a; // Laplacian 8a everywhere
            ramp[y * w + x] = (float) (0.05 * y - 0.03 * x);  // linear: Laplacian 0
            flat[y * w + x] = a;
        }
        assertEquals(64.0 * a * a, Sharpness.energy(board, h, w, 1), 1e-9);
        assertEquals(0.0, Sharpness.energy(ramp, h, w, 1), 1e-12);
        assertEquals(0.0, Sharpness.energy(flat, h, w, 1));
    }

    @Test
    void blurLowersTheEnergyMonotonically() {
        SplittableRandom random = freshRandom();
        int h = 16, w = 16, c = 3, n = 8;
        ImageDataset shapes = ProceduralShapes.generate(n, h, random.nextLong());
        float[] noise = randomImages(random, n * h * w * c);
        for (float[] images : new float[][] {noise, all(shapes)}) {
            double previous = Double.POSITIVE_INFINITY;
            for (double sigma : new double[] {0, 0.5, 0.8, 1.2, 2, 3}) {
                float[] blurred = new float[images.length];
                for (int i = 0; i < n; i++) {
                    float[] one = java.util.Arrays.copyOfRange(images, i * h * w * c, (i + 1) * h * w * c);
                    System.arraycopy(new Corruption.GaussianBlur(sigma).apply(one, h, w, c, random), 0, blurred, i * h * w * c, one.length);
                }
                double e = Sharpness.energy(blurred, h, w, c);
                System.out.println("blur " + sigma + ": energy " + e);
                assertTrue(e < previous, "blur " + sigma + " gives " + e + ", not below " + previous);
                previous = e;
            }
        }
    }

    static float[] all(ImageDataset d) {
        float[] x = new float[d.size() * d.imageSize()];
        for (int i = 0; i < d.size(); i++) d.copyTo(i, x, i * d.imageSize());
        return x;
    }

    @Test
    void identicalSetsHaveRatioOneAndTheDatasetFormAgrees() {
        SplittableRandom random = freshRandom();
        ImageDataset shapes = ProceduralShapes.generate(6, 16, random.nextLong());
        float[] x = all(shapes);
        assertEquals(1.0, Sharpness.ratio(x, x.clone(), 16, 16, shapes.channels()));
        assertEquals(Sharpness.energy(x, 16, 16, shapes.channels()), Sharpness.energy(shapes), 1e-12);
        float[] half = x.clone();
        for (int k = 0; k < half.length; k++) half[k] *= 0.5f; // the Laplacian is linear: energy / 4
        assertEquals(0.25, Sharpness.ratio(half, x, 16, 16, shapes.channels()), 1e-12);
    }

    @Test
    void badInputsAreRefusedWithAReason() {
        var a = assertThrows(IllegalArgumentException.class, () -> Sharpness.energy(new float[2 * 2 * 3], 2, 2, 3));
        assertTrue(a.getMessage().contains("at least 3x3"), a.getMessage());
        var b = assertThrows(IllegalArgumentException.class, () -> Sharpness.energy(new float[4 * 4 * 3 + 1], 4, 4, 3));
        assertTrue(b.getMessage().contains("not a whole"), b.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Sharpness.energy(new float[0], 4, 4, 3));
        var c = assertThrows(IllegalArgumentException.class, () -> Sharpness.ratio(new float[16], new float[16], 4, 4, 1));
        assertTrue(c.getMessage().contains("no high-frequency energy"), c.getMessage());
        float[] nan = new float[16];
        nan[5] = Float.NaN;
        assertThrows(IllegalArgumentException.class, () -> Sharpness.energy(nan, 4, 4, 1));
    }
}
