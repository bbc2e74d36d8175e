package dev.ambient.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The Ambient noising against a Java port of Philox 4x32-10 and Box-Muller (native/cpu/philox.h),
 * and the Ambient loss against a double reference whose gradients are checked by finite
 * differences; both must be bit-identical for any thread count.
 */
class AmbientLossTest {

    // ---- Noising -------------------------------------------------------------------------

    static Stream<long[]> noisingShapes() {
        return Stream.of(new long[] {1, 1}, new long[] {3, 7}, new long[] {1, 3, 5, 7}, new long[] {5, 9, 7, 3},
                new long[] {8, 32, 32, 3}, new long[] {3, 9001});
    }

    @ParameterizedTest
    @MethodSource("noisingShapes")
    void noisingAddsThePhiloxNormals(long[] shape) {
        Device d = Device.cpu();
        SplittableRandom random = TestSupport.freshRandom();
        int n = (int) shape[0], count = Math.toIntExact(sizeOf(shape)), size = count / n;
        float[] x = TestSupport.uniform(random, count, 2);
        float[] st = new float[n], stn = new float[n];
        long[] ids = new long[n];
        for (int i = 0; i < n; i++) {
            st[i] = (float) (0.05 + 3 * random.nextDouble());
            stn[i] = switch (i % 4) {
                case 0 -> (float) (st[i] * 0.5 * random.nextDouble());
                case 1 -> 0f;
                case 2 -> st[i];
                default -> 0.999f * st[i];
            };
            ids[i] = random.nextLong();
        }
        long fixedSeed = random.nextLong(), stepSeed = random.nextLong();
        try (Tensor tx = Tensor.of(d, x, shape); Tensor tst = Tensor.of(d, st, n); Tensor tstn = Tensor.of(d, stn, n);
                Tensor tn = TestSupport.poison(Tensor.allocate(d, shape)); Tensor t = TestSupport.poison(Tensor.allocate(d, shape))) {
            AmbientLoss.noising(tx, tst, tstn, ids, fixedSeed, stepSeed, tn, t);
            float[] xtn = tn.toArray(), xt = t.toArray();
            for (int i = 0; i < n; i++) {
                double s = Math.sqrt(((double) st[i] - stn[i]) * ((double) st[i] + stn[i]));
                for (int e = 0; e < size; e++) {
                    int k = i * size + e;
                    double z = Philox.normal(fixedSeed, ids[i], e), want = x[k] + stn[i] * z;
                    assertWithin("x_tn", k, xtn[k], want, 1e-6 * stn[i] * Math.abs(z) + 2.5e-7 * (Math.abs(x[k]) + Math.abs(want)));
                    double eps = Philox.normal(stepSeed, i, e), wantT = xtn[k] + s * eps;
                    assertWithin("x_t", k, xt[k], wantT, 1e-6 * s * Math.abs(eps) + 2.5e-7 * (Math.abs(xtn[k]) + Math.abs(wantT)));
                }
            }
            // bit-identical for any thread count
            for (int threads : new int[] {1, 3}) {
                d.setThreads(threads);
                try {
                    AmbientLoss.noising(tx, tst, tstn, ids, fixedSeed, stepSeed, tn, t);
                } finally {
                    d.setThreads(0);
                }
                assertArrayEquals(xtn, tn.toArray(), "x_tn with " + threads + " threads");
                assertArrayEquals(xt, t.toArray(), "x_t with " + threads + " threads");
            }
        }
    }

    @Test
    void aSampleKeepsItsNoiseAcrossBatchPositionsAndSteps() {
        Device d = Device.cpu();
        SplittableRandom random = TestSupport.freshRandom();
        int size = 4 * 4 * 3;
        float[] a = TestSupport.uniform(random, size, 1), b = TestSupport.uniform(random, size, 1);
        float[] ab = concat(a, b), ba = concat(b, a);
        try (Tensor x1 = Tensor.of(d, ab, 2, 4, 4, 3); Tensor x2 = Tensor.of(d, ba, 2, 4, 4, 3);
                Tensor st1 = Tensor.of(d, new float[] {1.5f, 0.8f}, 2); Tensor stn1 = Tensor.of(d, new float[] {0.3f, 0.6f}, 2);
                Tensor st2 = Tensor.of(d, new float[] {0.8f, 1.5f}, 2); Tensor stn2 = Tensor.of(d, new float[] {0.6f, 0.3f}, 2);
                Tensor tn1 = Tensor.allocate(d, 2, 4, 4, 3); Tensor t1 = Tensor.allocate(d, 2, 4, 4, 3);
                Tensor tn2 = Tensor.allocate(d, 2, 4, 4, 3); Tensor t2 = Tensor.allocate(d, 2, 4, 4, 3)) {
            AmbientLoss.noising(x1, st1, stn1, new long[] {17, 4242}, 7, 100, tn1, t1);
            AmbientLoss.noising(x2, st2, stn2, new long[] {4242, 17}, 7, 101, tn2, t2);
            float[] n1 = tn1.toArray(), n2 = tn2.toArray(), x1t = t1.toArray(), x2t = t2.toArray();
            for (int e = 0; e < size; e++) {
                assertEquals(n1[e], n2[size + e], "sample 17's x_tn at element " + e);
                assertEquals(n1[size + e], n2[e], "sample 4242's x_tn at element " + e);
            }
            int differ = 0;
            for (int e = 0; e < size; e++) differ += x1t[e] != x2t[size + e] ? 1 : 0;
            assertTrue(differ > size / 2, "eps must change with the step seed: " + differ + " of " + size + " differ");
        }
    }

    @Test
    void noisingRefusesBadArguments() {
        Device d = Device.cpu();
        try (Tensor x = Tensor.zeros(d, 2, 3); Tensor st = Tensor.of(d, new float[] {1, 0.5f}, 2);
                Tensor stn = Tensor.of(d, new float[] {0.2f, 0.7f}, 2); Tensor out1 = Tensor.zeros(d, 2, 3);
                Tensor out2 = Tensor.zeros(d, 2, 3)) {
            var above = assertThrows(AmbientException.class, () -> AmbientLoss.noising(x, st, stn, new long[] {1, 2}, 1, 2, out1, out2));
            assertTrue(above.getMessage().contains("sample 1") && above.getMessage().contains("0.7"), above.getMessage());
            var ids = assertThrows(IllegalArgumentException.class, () -> AmbientLoss.noising(x, st, st, new long[] {1}, 1, 2, out1, out2));
            assertTrue(ids.getMessage().contains("sampleIds"), ids.getMessage());
            var alias = assertThrows(IllegalArgumentException.class, () -> AmbientLoss.noising(x, st, st, new long[] {1, 2}, 1, 2, out1, out1));
            assertTrue(alias.getMessage().contains("share memory"), alias.getMessage());
            assertThrows(IllegalArgumentException.class, () -> AmbientLoss.noising(x, st, st, new long[] {1, 2}, 1, 2, x, out2));
            try (Tensor wrong = Tensor.zeros(d, 3, 2)) {
                assertThrows(IllegalArgumentException.class, () -> AmbientLoss.noising(x, st, st, new long[] {1, 2}, 1, 2, wrong, out2));
            }
        }
    }

    // ---- Loss ----------------------------------------------------------------------------

    /** mask: 0 none, 1 ones, 2 zeros, 3 random 0/1, 4 random in [0, 1]; maskWithOne: [N, H, W, 1]. */
    record LossCase(long[] shape, boolean near, int mask, boolean logvar, boolean maskWithOne, boolean fdAll) {}

    static Stream<LossCase> lossCases() {
        Stream.Builder<LossCase> cases = Stream.builder();
        for (int mask = 0; mask <= 4; mask++) {
            for (boolean logvar : new boolean[] {false, true}) {
                cases.add(new LossCase(new long[] {2, 3, 5, 3}, false, mask, logvar, mask % 2 == 1, true));
                cases.add(new LossCase(new long[] {3, 1, 7, 4}, true, mask, logvar, false, true));
            }
        }
        cases.add(new LossCase(new long[] {1, 1, 1, 1}, false, 3, true, false, true));
        cases.add(new LossCase(new long[] {2, 1, 5, 67}, false, 4, true, true, true));
        cases.add(new LossCase(new long[] {64, 32, 32, 3}, false, 0, true, false, false));
        cases.add(new LossCase(new long[] {16, 32, 32, 3}, true, 3, true, false, false));
        cases.add(new LossCase(new long[] {4, 64, 64, 4}, false, 4, true, true, false));
        cases.add(new LossCase(new long[] {5, 33, 31, 3}, false, 1, false, false, false));
        return cases.build();
    }

    /** Inputs of one loss case, and the double reference. */
    /**
     * What float32 rounding of the residual (x_t - x_tn) + (1 - r)(x0 - x_t) can cost a gradient
     * element: a few ulps of its terms times the gradient's coefficient 2 w scale / ((1 - r) e^u).
     * The relative error of a residual that cancels is not bounded, its absolute error is.
     */
    static double residualRounding(Problem p, int n) {
        int size = p.x0.length / n;
        double worst = 0;
        for (int i = 0; i < n; i++) {
            double st2 = (double) p.st[i] * p.st[i], r = (double) p.stn[i] * p.stn[i] / st2;
            double w = (st2 + p.sigmaData * p.sigmaData) / (st2 * p.sigmaData * p.sigmaData);
            double coefficient = 2 * w * p.scale / (1 - r) * (p.lv == null ? 1 : Math.exp(-p.lv[i]));
            for (int e = i * size; e < (i + 1) * size; e++) worst = Math.max(worst, coefficient * residualError(p, r, e));
        }
        return worst;
    }

    /** A few ulps of the terms of element e's residual: what float32 rounding can cost the residual itself. */
    static double residualError(Problem p, double r, int e) {
        return 4 * 0x1p-24 * (Math.abs(p.xt[e]) + Math.abs(p.xtn[e]) + (1 - r) * (Math.abs(p.x0[e]) + Math.abs(p.xt[e])));
    }

    /**
     * Each sample's bounds on the errors of its loss l e^-u + u sum(m) and of its grad_logvar scale (sum(m) - l e^-u).
     * Both are float32 sums over a whole sample, so their rounding grows with the sample's size (the caller passes 3x the
     * elementwise rtol; one case landed at 1.1e-5), and it is relative to the sizes of the two terms, not to their sum,
     * which cancels (a loss of 0.0031 from terms near 1 once missed 3e-5 of itself). Each residual's rounding (see
     * residualError) adds 2 |res| delta + delta^2 to its square.
     */
    record SampleBounds(double[] loss, double[] gradLogvar) {}

    static SampleBounds sampleRounding(Problem p, double rtol) {
        double[] loss = new double[p.n], gradLogvar = new double[p.n];
        for (int i = 0; i < p.n; i++) {
            double st2 = (double) p.st[i] * p.st[i], r = (double) p.stn[i] * p.stn[i] / st2;
            double w = (st2 + p.sigmaData * p.sigmaData) / (st2 * p.sigmaData * p.sigmaData) / ((1 - r) * (1 - r));
            double inv = p.lv == null ? 1 : Math.exp(-p.lv[i]), u = p.lv == null ? 0 : p.lv[i];
            double squares = 0, squaresRounding = 0, msum = 0;
            for (int e = i * p.size; e < (i + 1) * p.size; e++) {
                double res = r * p.xt[e] + (1 - r) * p.x0[e] - p.xtn[e];
                double delta = residualError(p, r, e);
                squares += p.m(e) * res * res;
                squaresRounding += p.m(e) * (2 * Math.abs(res) * delta + delta * delta);
                msum += p.m(e);
            }
            double weighted = w * squares * inv, weightedRounding = w * squaresRounding * inv;
            loss[i] = rtol * (weighted + Math.abs(u) * msum) + weightedRounding + 1e-30;
            gradLogvar[i] = p.scale * (rtol * (weighted + msum) + weightedRounding) + 1e-30;
        }
        return new SampleBounds(loss, gradLogvar);
    }

    static final class Problem {
        final int n, size, channels;
        final float[] x0, xt, xtn, st, stn, lv, mask;
        final double sigmaData = 0.5, scale = 0.75;

        Problem(SplittableRandom random, long[] shape, boolean near, int maskKind, boolean logvar) {
            n = (int) shape[0];
            channels = (int) shape[shape.length - 1];
            size = Math.toIntExact(sizeOf(shape) / n);
            xtn = TestSupport.uniform(random, n * size, 1);
            float[] noise = TestSupport.uniform(random, n * size, 1), err = TestSupport.uniform(random, n * size, 0.3);
            x0 = new float[n * size];
            xt = new float[n * size];
            st = new float[n];
            stn = new float[n];
            lv = logvar ? TestSupport.uniform(random, n, 0.7) : null;
            for (int i = 0; i < n; i++) {
                st[i] = (float) (0.02 + 4 * random.nextDouble());
                stn[i] = near ? 0.999f * st[i] : i % 3 == 0 ? 0f : (float) (0.9 * st[i] * random.nextDouble());
                float s = (float) Math.sqrt((double) st[i] * st[i] - (double) stn[i] * stn[i]);
                for (int e = 0; e < size; e++) {
                    int k = i * size + e;
                    xt[k] = xtn[k] + s * noise[k];
                    x0[k] = xtn[k] + err[k]; // a denoiser output close to the truth
                }
            }
            if (maskKind == 0) {
                mask = null;
            } else {
                mask = new float[n * size / channels];
                for (int p = 0; p < mask.length; p++) {
                    mask[p] = switch (maskKind) {
                        case 1 -> 1f;
                        case 2 -> 0f;
                        case 3 -> random.nextBoolean() ? 1f : 0f;
                        default -> (float) random.nextDouble();
                    };
                }
            }
        }

        double m(int k) {
            return mask == null ? 1 : mask[k / channels];
        }

        /** L_i with sample i's x0 given in double, and its log-variance u (NaN: none). */
        double loss(int i, double[] x0d, double u) {
            double t = st[i], tn = stn[i], r = tn * tn / (t * t), w = (t * t + sigmaData * sigmaData) / (t * t * sigmaData * sigmaData);
            double s = 0, msum = 0;
            for (int e = 0; e < size; e++) {
                int k = i * size + e;
                double res = r * xt[k] + (1 - r) * x0d[e] - xtn[k];
                s += m(k) * res * res;
                msum += m(k);
            }
            double l = w / ((1 - r) * (1 - r)) * s;
            return Double.isNaN(u) ? l : l / Math.exp(u) + u * msum;
        }

        double[] x0Of(int i) {
            double[] v = new double[size];
            for (int e = 0; e < size; e++) v[e] = x0[i * size + e];
            return v;
        }

        double u(int i) {
            return lv == null ? Double.NaN : lv[i];
        }
    }

    @ParameterizedTest
    @MethodSource("lossCases")
    void lossAndGradientsMatchTheDoubleReference(LossCase c) {
        Device d = Device.cpu();
        SplittableRandom random = TestSupport.freshRandom();
        Problem p = new Problem(random, c.shape(), c.near(), c.mask(), c.logvar());
        int n = p.n, size = p.size;
        double[] wantLoss = new double[n], wantGrad = new double[n * size], wantGlv = new double[n];
        for (int i = 0; i < n; i++) {
            double t = p.st[i], tn = p.stn[i], r = tn * tn / (t * t);
            double w = (t * t + p.sigmaData * p.sigmaData) / (t * t * p.sigmaData * p.sigmaData);
            double inv = p.lv == null ? 1 : Math.exp(-p.lv[i]), s = 0, msum = 0;
            for (int e = 0; e < size; e++) {
                int k = i * size + e;
                double res = r * p.xt[k] + (1 - r) * p.x0[k] - p.xtn[k];
                wantGrad[k] = p.scale * 2 * w / (1 - r) * p.m(k) * res * inv;
                s += p.m(k) * res * res;
                msum += p.m(k);
            }
            double[] x0d = p.x0Of(i);
            wantLoss[i] = p.loss(i, x0d, p.u(i));
            wantGlv[i] = p.scale * (msum - w / ((1 - r) * (1 - r)) * s * inv);
            // the gradient formulas against central differences of the double loss
            int stride = c.fdAll() ? 1 : size / 7 + 1;
            for (int e = 0; e < size; e += stride) {
                double keep = x0d[e], h = 1e-3;
                x0d[e] = keep + h;
                double lp = p.loss(i, x0d, p.u(i));
                x0d[e] = keep - h;
                double lm = p.loss(i, x0d, p.u(i));
                x0d[e] = keep;
                double fd = p.scale * (lp - lm) / (2 * h), g = wantGrad[i * size + e];
                if (!(Math.abs(fd - g) <= 1e-6 * (Math.abs(lp) + Math.abs(lm)) / h + 1e-6 * Math.abs(g))) {
                    fail("grad_x0 formula vs finite differences at sample " + i + " element " + e + ": " + g + " vs " + fd);
                }
            }
            if (p.lv != null) {
                double h = 1e-4, u = p.lv[i];
                double fd = p.scale * (p.loss(i, x0d, u + h) - p.loss(i, x0d, u - h)) / (2 * h);
                if (!(Math.abs(fd - wantGlv[i]) <= 1e-6 * Math.abs(wantLoss[i]) / h + 1e-6)) {
                    fail("grad_logvar formula vs finite differences at sample " + i + ": " + wantGlv[i] + " vs " + fd);
                }
            }
        }

        long[] shape = c.shape();
        long[] maskShape = maskShape(shape, c.maskWithOne());
        try (Tensor x0 = Tensor.of(d, p.x0, shape); Tensor xt = Tensor.of(d, p.xt, shape); Tensor xtn = Tensor.of(d, p.xtn, shape);
                Tensor st = Tensor.of(d, p.st, n); Tensor stn = Tensor.of(d, p.stn, n);
                Tensor lv = p.lv == null ? null : Tensor.of(d, p.lv, n);
                Tensor mask = p.mask == null ? null : Tensor.of(d, p.mask, maskShape);
                Tensor loss = TestSupport.poison(Tensor.allocate(d, n)); Tensor grad = TestSupport.poison(Tensor.allocate(d, shape));
                Tensor glv = p.lv == null ? null : TestSupport.poison(Tensor.allocate(d, n))) {
            AmbientLoss.loss(x0, xt, xtn, st, stn, lv, mask, (float) p.sigmaData, (float) p.scale, loss, grad, glv);
            double rtol = c.near() ? 1e-4 : 1e-5;
            float[] gotLoss = loss.toArray(), gotGrad = grad.toArray();
            SampleBounds bounds = sampleRounding(p, 3 * rtol);
            String perSample = "3 rtol of its terms' sizes, plus the residuals' rounding";
            TestSupport.assertClose("loss", wantLoss, gotLoss, i -> bounds.loss()[i], perSample);
            TestSupport.assertClose("grad_x0", wantGrad, gotGrad, Math.max(1e-6 * maxAbs(wantGrad), residualRounding(p, n)) + 1e-30,
                    rtol);
            float[] gotGlv = glv == null ? null : glv.toArray();
            if (glv != null) TestSupport.assertClose("grad_logvar", wantGlv, gotGlv, i -> bounds.gradLogvar()[i], perSample);
            if (c.mask() == 2) {
                // (0 or -0: the sign of m * residual)
                for (float v : gotLoss) assertTrue(v == 0f, "an all-zero mask gives loss 0, not " + v);
                for (float v : gotGrad) assertTrue(v == 0f, "an all-zero mask gives zero gradients, not " + v);
                if (gotGlv != null) for (float v : gotGlv) assertTrue(v == 0f, "an all-zero mask gives grad_logvar 0, not " + v);
            }
            // loss alone, and bit-identical for any thread count
            try (Tensor loss2 = AmbientLoss.loss(x0, xt, xtn, st, stn, lv, mask, (float) p.sigmaData, (float) p.scale, null, glv)) {
                assertArrayEquals(gotLoss, loss2.toArray(), "loss without gradX0");
            }
            for (int threads : new int[] {1, 3}) {
                d.setThreads(threads);
                try {
                    AmbientLoss.loss(x0, xt, xtn, st, stn, lv, mask, (float) p.sigmaData, (float) p.scale, loss, grad, glv);
                } finally {
                    d.setThreads(0);
                }
                assertArrayEquals(gotLoss, loss.toArray(), "loss with " + threads + " threads");
                assertArrayEquals(gotGrad, grad.toArray(), "grad_x0 with " + threads + " threads");
                if (glv != null) assertArrayEquals(gotGlv, glv.toArray(), "grad_logvar with " + threads + " threads");
            }
        }
    }

    @Test
    void withoutAmbientNoiseAndMaskItIsTheEdmLoss() {
        Device d = Device.cpu();
        SplittableRandom random = TestSupport.freshRandom();
        long[] shape = {3, 8, 8, 3};
        int size = 8 * 8 * 3;
        float[] x = TestSupport.uniform(random, 3 * size, 1), den = TestSupport.uniform(random, 3 * size, 1);
        float[] xt = TestSupport.uniform(random, 3 * size, 5), st = {0.002f, 0.5f, 80f};
        try (Tensor tx = Tensor.of(d, x, shape); Tensor td = Tensor.of(d, den, shape); Tensor txt = Tensor.of(d, xt, shape);
                Tensor tst = Tensor.of(d, st, 3); Tensor tstn = Tensor.zeros(d, 3);
                Tensor loss = AmbientLoss.loss(td, txt, tx, tst, tstn, null, null, 0.5f, 1f, null, null)) {
            double[] want = new double[3];
            for (int i = 0; i < 3; i++) {
                double t = st[i], w = (t * t + 0.25) / (t * t * 0.25), s = 0;
                for (int e = 0; e < size; e++) s += Math.pow((double) den[i * size + e] - x[i * size + e], 2);
                want[i] = w * s;
            }
            TestSupport.assertClose("EDM loss", want, loss.toArray(), 0, 1e-5);
        }
    }

    @Test
    void lossRefusesBadArguments() {
        Device d = Device.cpu();
        try (Tensor x = Tensor.zeros(d, 2, 2, 3); Tensor y = Tensor.zeros(d, 2, 2, 3); Tensor z = Tensor.zeros(d, 2, 2, 3);
                Tensor st = Tensor.of(d, new float[] {1, 0.5f}, 2); Tensor stn = Tensor.of(d, new float[] {0.2f, 0.5f}, 2);
                Tensor ok = Tensor.of(d, new float[] {0.2f, 0.1f}, 2); Tensor loss = Tensor.zeros(d, 2); Tensor lv = Tensor.zeros(d, 2);
                Tensor grad = Tensor.zeros(d, 2, 2, 3)) {
            var equal = assertThrows(AmbientException.class, () -> AmbientLoss.loss(x, y, z, st, stn, null, null, 0.5f, 1, loss, grad, null));
            String message = equal.getMessage();
            assertTrue(message.contains("sample 1") && message.contains("sigma_tn = 0.5") && message.contains("sigma_t = 0.5"), message);
            assertEquals(AmbientException.Status.INVALID_ARGUMENT, equal.status());
            var alone = assertThrows(IllegalArgumentException.class, () -> AmbientLoss.loss(x, y, z, st, ok, lv, null, 0.5f, 1, loss, grad, null));
            assertTrue(alone.getMessage().contains("together"), alone.getMessage());
            var alias = assertThrows(IllegalArgumentException.class, () -> AmbientLoss.loss(x, y, z, st, ok, null, null, 0.5f, 1, loss, x, null));
            assertTrue(alias.getMessage().contains("share memory"), alias.getMessage());
            assertThrows(IllegalArgumentException.class, () -> AmbientLoss.loss(x, y, z, st, ok, lv, null, 0.5f, 1, loss, grad, lv));
            assertThrows(IllegalArgumentException.class, () -> AmbientLoss.loss(x, y, z, st, ok, null, null, 0f, 1, loss, grad, null));
            try (Tensor other = Tensor.zeros(d, 2, 3, 2); Tensor badMask = Tensor.zeros(d, 2, 3); Tensor three = Tensor.zeros(d, 3)) {
                var shape = assertThrows(IllegalArgumentException.class,
                        () -> AmbientLoss.loss(x, other, z, st, ok, null, null, 0.5f, 1, loss, grad, null));
                assertTrue(shape.getMessage().contains("same shape"), shape.getMessage());
                var mask = assertThrows(IllegalArgumentException.class,
                        () -> AmbientLoss.loss(x, y, z, st, ok, null, badMask, 0.5f, 1, loss, grad, null));
                assertTrue(mask.getMessage().contains("mask"), mask.getMessage());
                assertThrows(IllegalArgumentException.class, () -> AmbientLoss.loss(x, y, z, three, ok, null, null, 0.5f, 1, loss, grad, null));
            }
        }
    }

    // ---- Helpers -------------------------------------------------------------------------

    static long[] maskShape(long[] shape, boolean withOne) {
        long[] m = withOne ? shape.clone() : java.util.Arrays.copyOf(shape, shape.length - 1);
        if (withOne) m[m.length - 1] = 1;
        return m;
    }

    static long sizeOf(long[] shape) {
        long s = 1;
        for (long v : shape) s *= v;
        return s;
    }

    static double maxAbs(double[] v) {
        double m = 0;
        for (double x : v) m = Math.max(m, Math.abs(x));
        return m;
    }

    static float[] concat(float[] a, float[] b) {
        float[] c = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }

    static void assertWithin(String what, int k, float got, double want, double bound) {
        if (!(Math.abs(got - want) <= bound + 1e-30)) fail(what + "[" + k + "]: got " + got + ", want " + want + " (bound " + bound + ")");
    }
}
