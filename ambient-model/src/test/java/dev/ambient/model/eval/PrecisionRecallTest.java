package dev.ambient.model.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Precision and recall by hand on a line, against a sort-everything reference, and on the defining cases. */
class PrecisionRecallTest {

    static SplittableRandom freshRandom() {
        long seed = System.nanoTime();
        System.out.println("random seed " + seed);
        return new SplittableRandom(seed);
    }

    static double[][] cloud(SplittableRandom r, int n, int d, double[] centre, double spread) {
        double[][] x = new double[n][d];
        for (int i = 0; i < n; i++) for (int j = 0; j < d; j++) x[i][j] = centre[j] + spread * r.nextGaussian();
        return x;
    }

    /** Reference: sort every distance of a set to find each radius; scan for coverage. */
    static double[] referencePrecisionRecall(double[][] real, double[][] gen, int k) {
        double[] rr = radii(real, k), gr = radii(gen, k);
        return new double[] {covered(gen, real, rr), covered(real, gen, gr)};
    }

    static double[] radii(double[][] x, int k) {
        double[] out = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            double[] d = new double[x.length - 1];
            int m = 0;
            for (int j = 0; j < x.length; j++) if (j != i) d[m++] = dist(x[i], x[j]);
            Arrays.sort(d);
            out[i] = d[k - 1];
        }
        return out;
    }

    static double covered(double[][] q, double[][] ref, double[] radii) {
        int in = 0;
        for (double[] p : q) {
            for (int j = 0; j < ref.length; j++) {
                if (dist(p, ref[j]) <= radii[j]) { in++; break; }
            }
        }
        return (double) in / q.length;
    }

    static double dist(double[] a, double[] b) {
        double s = 0;
        for (int t = 0; t < a.length; t++) s += (a[t] - b[t]) * (a[t] - b[t]);
        return Math.sqrt(s);
    }

    @Test
    void aHandComputedCaseOnALine() {
        // real {0,1,2,3,10}, k = 1: radii 1,1,1,1,7. generated {1.5, 5, 20, 2.9}: radii 1.4, 2.1, 15, 1.4.
        // precision: 1.5 (near 1), 5 (within 7 of 10), 2.9 in; 20 out -> 3/4.
        // recall: 0 is 1.5 from 1.5 > 1.4, out; 1, 2, 3 near 1.5 / 2.9; 10 within 15 of 20 -> 4/5.
        double[][] real = {{0}, {1}, {2}, {3}, {10}};
        double[][] gen = {{1.5}, {5}, {20}, {2.9}};
        PrecisionRecall.Result r = PrecisionRecall.compute(real, gen, 1);
        assertEquals(0.75, r.precision());
        assertEquals(0.8, r.recall());
        assertEquals(1, r.k());
        assertEquals(5, r.realCount());
        assertEquals(4, r.generatedCount());
    }

    @Test
    void matchesASortEverythingReferenceOnRandomSets() {
        SplittableRandom random = freshRandom();
        for (int trial = 0; trial < 5; trial++) {
            int d = 1 + random.nextInt(16), k = 1 + random.nextInt(5);
            double[][] real = cloud(random, 20 + random.nextInt(80), d, new double[d], 1);
            double[] shifted = new double[d];
            Arrays.fill(shifted, random.nextDouble(0, 1.5));
            double[][] gen = cloud(random, 20 + random.nextInt(80), d, shifted, random.nextDouble(0.3, 2));
            double[] expect = referencePrecisionRecall(real, gen, k);
            PrecisionRecall.Result r = PrecisionRecall.compute(real, gen, k);
            assertEquals(expect[0], r.precision(), "precision, d = " + d + ", k = " + k);
            assertEquals(expect[1], r.recall(), "recall, d = " + d + ", k = " + k);
            float[] rf = flat(real), gf = flat(gen);
            double[][] realF = unflat(rf, d), genF = unflat(gf, d);
            double[] expectF = referencePrecisionRecall(realF, genF, k);
            PrecisionRecall.Result f = PrecisionRecall.compute(rf, gf, d, k);
            assertEquals(expectF[0], f.precision(), "float form");
            assertEquals(expectF[1], f.recall(), "float form");
        }
    }

    static float[] flat(double[][] x) {
        int d = x[0].length;
        float[] out = new float[x.length * d];
        for (int i = 0; i < x.length; i++) for (int j = 0; j < d; j++) out[i * d + j] = (float) x[i][j];
        return out;
    }

    static double[][] unflat(float[] x, int d) {
        double[][] out = new double[x.length / d][d];
        for (int i = 0; i < out.length; i++) for (int j = 0; j < d; j++) out[i][j] = x[i * d + j];
        return out;
    }

    @Test
    void identicalSetsHaveFullPrecisionAndRecall() {
        SplittableRandom random = freshRandom();
        double[][] x = cloud(random, 200, 8, new double[8], 1);
        PrecisionRecall.Result r = PrecisionRecall.compute(x, x.clone());
        assertEquals(1.0, r.precision());
        assertEquals(1.0, r.recall());
        assertEquals(PrecisionRecall.DEFAULT_K, r.k());
    }

    @Test
    void farApartSetsHaveNeither() {
        SplittableRandom random = freshRandom();
        double[] far = new double[8];
        Arrays.fill(far, 100);
        PrecisionRecall.Result r = PrecisionRecall.compute(cloud(random, 150, 8, new double[8], 1), cloud(random, 120, 8, far, 1));
        assertEquals(0.0, r.precision());
        assertEquals(0.0, r.recall());
    }

    @Test
    void collapsingOntoAFewModesKeepsPrecisionAndLosesRecall() {
        SplittableRandom random = freshRandom();
        int d = 4, modes = 10, perMode = 100;
        double[][] centres = new double[modes][d];
        for (int m = 0; m < modes; m++) {
            // well apart (unit spread, >= 15 between centres), so that no two modes overlap by chance
            boolean apart;
            do {
                for (int j = 0; j < d; j++) centres[m][j] = 20 * random.nextGaussian();
                apart = true;
                for (int o = 0; o < m; o++) apart &= dist(centres[m], centres[o]) >= 15;
            } while (!apart);
        }
        double[][] real = mixture(random, centres, modes, perMode * modes);
        // a faithful generator draws every mode; the collapsed one found 2 of the 10, with as many samples
        PrecisionRecall.Result faithful = PrecisionRecall.compute(real, mixture(random, centres, modes, perMode * modes));
        PrecisionRecall.Result collapsed = PrecisionRecall.compute(real, mixture(random, centres, 2, perMode * modes));
        System.out.println("faithful: " + faithful + "\ncollapsed onto 2 of 10 modes: " + collapsed);
        // with k = 3 the k-NN balls do not cover the whole of a 4-D Gaussian: same-distribution
        // precision is near 0.9, not 1, and the collapsed generator keeps it
        assertTrue(faithful.precision() > 0.75 && faithful.recall() > 0.75, faithful.toString());
        assertTrue(collapsed.precision() > 0.75, collapsed.toString());
        assertEquals(faithful.precision(), collapsed.precision(), 0.1);
        assertTrue(collapsed.recall() < 0.3, collapsed.toString());
    }

    /** n samples, round robin over the first {@code used} centres, unit spread. */
    static double[][] mixture(SplittableRandom r, double[][] centres, int used, int n) {
        double[][] x = new double[n][];
        for (int i = 0; i < n; i++) x[i] = cloud(r, 1, centres[0].length, centres[i % used], 1)[0];
        return x;
    }

    @Test
    void badInputsAreRefusedWithAReason() {
        double[][] four = {{0, 0}, {1, 0}, {0, 1}, {1, 1}};
        var a = assertThrows(IllegalArgumentException.class, () -> PrecisionRecall.compute(four, new double[][] {{0, 0}, {1, 1}, {2, 2}}));
        assertTrue(a.getMessage().contains("more than k"), a.getMessage());
        var b = assertThrows(IllegalArgumentException.class, () -> PrecisionRecall.compute(four, new double[][] {{0, 0, 0}, {1, 1, 1}, {2, 2, 2}, {3, 3, 3}}));
        assertTrue(b.getMessage().contains("generated vector 0 has 3 dimensions, expected 2"), b.getMessage());
        var c = assertThrows(IllegalArgumentException.class, () -> PrecisionRecall.compute(four, four, 0));
        assertTrue(c.getMessage().contains("k must be >= 1"), c.getMessage());
        var d = assertThrows(IllegalArgumentException.class, () -> PrecisionRecall.compute(new double[][] {{0, 0}, {1, Double.NaN}, {2, 2}, {3, 3}}, four));
        assertTrue(d.getMessage().contains("NaN"), d.getMessage());
        var e = assertThrows(IllegalArgumentException.class, () -> PrecisionRecall.compute(new float[9], new float[8], 2, 1));
        assertTrue(e.getMessage().contains("real: 9 values"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> PrecisionRecall.compute(new double[0][], four));
    }
}
