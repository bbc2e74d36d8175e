package dev.ambient.model.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.model.data.ImageDataset;
import dev.ambient.model.data.ProceduralShapes;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Area pooling by hand and as block means, and FD_pix as FD on the pooled features. */
class FdPixelsTest {

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

    @Test
    void divisibleSizesPoolToBlockMeans() {
        SplittableRandom random = freshRandom();
        int n = 3, c = 1 + random.nextInt(3), s = 2 + random.nextInt(4), f = 1 + random.nextInt(4), h = s * f, w = s * f;
        float[] x = randomImages(random, n * h * w * c);
        float[] p = FdPixels.features(x, h, w, c, s);
        assertEquals(n * s * s * c, p.length);
        for (int i = 0; i < n; i++) for (int oy = 0; oy < s; oy++) for (int ox = 0; ox < s; ox++) for (int ch = 0; ch < c; ch++) {
            double sum = 0;
            for (int dy = 0; dy < f; dy++) for (int dx = 0; dx < f; dx++) sum += x[((i * h + oy * f + dy) * w + ox * f + dx) * c + ch];
            assertEquals(sum / (f * f), p[((i * s + oy) * s + ox) * c + ch], 1e-6, "cell " + oy + "," + ox);
        }
    }

    @Test
    void imagesSmallerThanTheLaplaciansPoolToo() {
        // pooling has no 3x3 minimum (only Sharpness has): 2x2 to 2x2 and 2x2 to 1x1
        float[] x = randomImages(freshRandom(), 2 * 2 * 2 * 3);
        assertArrayEquals(x, FdPixels.features(x, 2, 2, 3, 2), 1e-7f);
        float[] mean = FdPixels.features(x, 2, 2, 3, 1);
        for (int i = 0; i < 2; i++) for (int ch = 0; ch < 3; ch++) {
            double sum = 0;
            for (int q = 0; q < 4; q++) sum += x[(i * 4 + q) * 3 + ch];
            assertEquals(sum / 4, mean[i * 3 + ch], 1e-6);
        }
    }

    @Test
    void threePixelsPoolToTwoByHand() {
        // rows a, b, c into 2 cells of 1.5 pixels: (a + b/2) / 1.5 and (b/2 + c) / 1.5; likewise along x
        SplittableRandom random = freshRandom();
        float[] x = randomImages(random, 9);
        float[] p = FdPixels.features(x, 3, 3, 1, 2);
        double[][] wgt = {{1 / 1.5, 0.5 / 1.5, 0}, {0, 0.5 / 1.5, 1 / 1.5}};
        for (int oy = 0; oy < 2; oy++) for (int ox = 0; ox < 2; ox++) {
            double v = 0;
            for (int y = 0; y < 3; y++) for (int xx = 0; xx < 3; xx++) v += wgt[oy][y] * wgt[ox][xx] * x[y * 3 + xx];
            assertEquals(v, p[oy * 2 + ox], 1e-6);
        }
        // any size: every weight row sums to 1 and every input pixel is spread in full
        int n = 5 + random.nextInt(40), s = 1 + random.nextInt(n);
        double[][] weights = FdPixels.weights(n, s);
        double[] column = new double[n];
        for (double[] row : weights) {
            double sum = 0;
            for (int i = 0; i < n; i++) { sum += row[i]; column[i] += row[i]; }
            assertEquals(1, sum, 1e-12, n + " -> " + s);
        }
        for (int i = 0; i < n; i++) assertEquals((double) s / n, column[i], 1e-12, "pixel " + i + " of " + n + " -> " + s);
    }

    @Test
    void fdPixIsTheFrechetDistanceOfThePooledImages() {
        SplittableRandom random = freshRandom();
        ImageDataset a = ProceduralShapes.generate(300, 16, random.nextLong());
        ImageDataset b = ProceduralShapes.generate(300, 16, random.nextLong());
        int c = a.channels();
        float[] xa = SharpnessTest.all(a), xb = SharpnessTest.all(b);
        double fd = FdPixels.distance(xa, xb, 16, 16, c, 4);
        double direct = FrechetDistance.distance(FdPixels.features(xa, 16, 16, c, 4), FdPixels.features(xb, 16, 16, c, 4), 4 * 4 * c);
        assertEquals(direct, fd, 1e-12 * (1 + direct));
        assertEquals(FdPixels.statistics(xa, 16, 16, c, 4), FdPixels.statistics(a, 4), "the dataset form gives the same statistics");
        assertEquals(0, FdPixels.distance(xa, xa.clone(), 16, 16, c, 4), 1e-9);
        // a brightness shift moves every pooled feature alike: FD grows by |shift|^2 * dim
        float[] shifted = xa.clone();
        for (int k = 0; k < shifted.length; k++) shifted[k] += 0.25f;
        assertEquals(0.0625 * 4 * 4 * c, FdPixels.distance(shifted, xa, 16, 16, c, 4), 1e-4);
        System.out.println("FD_pix between two draws of the built-in data at 4x4: " + fd);
    }

    @Test
    void badInputsAreRefusedWithAReason() {
        var a = assertThrows(IllegalArgumentException.class, () -> FdPixels.features(new float[16 * 3], 4, 4, 3, 8));
        assertTrue(a.getMessage().contains("pooled size"), a.getMessage());
        assertThrows(IllegalArgumentException.class, () -> FdPixels.features(new float[16 * 3], 4, 4, 3, 0));
        var b = assertThrows(IllegalArgumentException.class, () -> FdPixels.distance(new float[16 * 3], new float[32 * 3], 4, 4, 3, 2));
        assertTrue(b.getMessage().contains("at least 2"), b.getMessage());
    }
}
