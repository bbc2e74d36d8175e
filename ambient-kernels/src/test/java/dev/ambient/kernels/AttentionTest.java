package dev.ambient.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Multi-head attention against a float64 softmax attention computed naively (all L x L
 * logits): tokens [N, L, C] and NHWC images [N, H, W, C], lengths across tile edges, 1 and 3
 * heads, head dims 8, 17, 64, rows normalised (as EDM2 feeds it) or large; backward against
 * central finite differences of the float64 forward (small shapes) and its analytic gradient.
 */
class AttentionTest {

    /** n, token dims ({L} or {H, W}), heads, headDim, finite differences too. */
    static Stream<Arguments> cases() {
        return Stream.of(
                Arguments.of(1, new long[] {1}, 1, 8, true),
                Arguments.of(2, new long[] {7}, 3, 8, true),
                Arguments.of(1, new long[] {3, 2}, 2, 17, true),
                Arguments.of(1, new long[] {5}, 1, 64, true),
                Arguments.of(1, new long[] {63}, 1, 64, false),
                Arguments.of(2, new long[] {65}, 3, 8, false),
                Arguments.of(1, new long[] {130}, 3, 17, false),
                Arguments.of(2, new long[] {8, 8}, 2, 64, false),
                Arguments.of(1, new long[] {5, 13}, 1, 17, false));
    }

    /** The problem in double: qkv flat as ((b L + i) heads + h) 3 d + part d + c. */
    private record Problem(int n, int length, int heads, int d, double[] qkv) {
        double scale() {
            return 1 / Math.sqrt(d);
        }

        int at(int b, int i, int h, int part) {
            return (((b * length + i) * heads + h) * 3 + part) * d;
        }

        /** Row-normalised probabilities of sample b, head h; lse (length L) when not null. */
        double[] probs(int b, int h, double[] lse) {
            double[] p = new double[length * length];
            for (int i = 0; i < length; i++) {
                double m = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < length; j++) {
                    double dot = 0;
                    for (int c = 0; c < d; c++) dot += qkv[at(b, i, h, 0) + c] * qkv[at(b, j, h, 1) + c];
                    p[i * length + j] = scale() * dot;
                    m = Math.max(m, p[i * length + j]);
                }
                double sum = 0;
                for (int j = 0; j < length; j++) sum += (p[i * length + j] = Math.exp(p[i * length + j] - m));
                for (int j = 0; j < length; j++) p[i * length + j] /= sum;
                if (lse != null) lse[i] = m + Math.log(sum);
            }
            return p;
        }

        /** out [n, L, heads, d] and lse [n, heads, L] (null: skipped). */
        double[] forward(double[] lse) {
            double[] out = new double[n * length * heads * d], row = new double[length];
            for (int b = 0; b < n; b++) {
                for (int h = 0; h < heads; h++) {
                    double[] p = probs(b, h, lse == null ? null : row);
                    if (lse != null) System.arraycopy(row, 0, lse, (b * heads + h) * length, length);
                    for (int i = 0; i < length; i++) {
                        int o = ((b * length + i) * heads + h) * d;
                        for (int j = 0; j < length; j++) {
                            for (int c = 0; c < d; c++) out[o + c] += p[i * length + j] * qkv[at(b, j, h, 2) + c];
                        }
                    }
                }
            }
            return out;
        }

        /** The analytic gradient of sum(out * dout) with respect to qkv. */
        double[] backward(double[] dout) {
            double[] g = new double[qkv.length];
            for (int b = 0; b < n; b++) {
                for (int h = 0; h < heads; h++) {
                    double[] p = probs(b, h, null), ds = new double[length * length];
                    for (int i = 0; i < length; i++) {
                        int o = ((b * length + i) * heads + h) * d;
                        double dd = 0;
                        for (int j = 0; j < length; j++) {
                            double dp = 0;
                            for (int c = 0; c < d; c++) dp += dout[o + c] * qkv[at(b, j, h, 2) + c];
                            ds[i * length + j] = dp;
                            dd += p[i * length + j] * dp;
                        }
                        for (int j = 0; j < length; j++) ds[i * length + j] = p[i * length + j] * (ds[i * length + j] - dd);
                    }
                    for (int i = 0; i < length; i++) {
                        for (int j = 0; j < length; j++) {
                            int o = ((b * length + j) * heads + h) * d;
                            for (int c = 0; c < d; c++) {
                                g[at(b, i, h, 0) + c] += scale() * ds[i * length + j] * qkv[at(b, j, h, 1) + c];
                                g[at(b, i, h, 1) + c] += scale() * ds[j * length + i] * qkv[at(b, j, h, 0) + c];
                                g[at(b, i, h, 2) + c] += p[j * length + i] * dout[o + c];
                            }
                        }
                    }
                }
            }
            return g;
        }

        /** The same gradient by central differences of forward(). */
        double[] differences(double[] dout) {
            double[] g = new double[qkv.length];
            for (int e = 0; e < qkv.length; e++) {
                double keep = qkv[e], step = 1e-5 * Math.max(1, Math.abs(keep));
                qkv[e] = keep + step;
                double[] plus = forward(null);
                qkv[e] = keep - step;
                double[] minus = forward(null);
                qkv[e] = keep;
                double sum = 0;
                for (int i = 0; i < plus.length; i++) sum += dout[i] * (plus[i] - minus[i]);
                g[e] = sum / (2 * step);
            }
            return g;
        }
    }

    /** q, k, v rows of unit RMS (normalised) or uniform in [-2, 2). */
    private static float[] randomQkv(SplittableRandom random, int rows, int d, boolean normalised) {
        float[] x = TestSupport.uniform(random, rows * d, normalised ? 1 : 2);
        if (normalised) {
            for (int r = 0; r < rows; r++) {
                double sum = 0;
                for (int c = 0; c < d; c++) sum += (double) x[r * d + c] * x[r * d + c];
                double inv = 1 / Math.sqrt(sum / d);
                for (int c = 0; c < d; c++) x[r * d + c] = (float) (x[r * d + c] * inv);
            }
        }
        return x;
    }

    private static double maxAbs(double[] v) {
        double m = 0;
        for (double x : v) m = Math.max(m, Math.abs(x));
        return m;
    }

    private static double maxAbs(float[] v) {
        double m = 0;
        for (float x : v) m = Math.max(m, Math.abs(x));
        return m;
    }

    private static long[] withChannels(long n, long[] tokens, long channels) {
        long[] shape = new long[tokens.length + 2];
        shape[0] = n;
        System.arraycopy(tokens, 0, shape, 1, tokens.length);
        shape[shape.length - 1] = channels;
        return shape;
    }

    @ParameterizedTest
    @MethodSource("cases")
    void forwardAndBackward(int n, long[] tokens, int heads, int d, boolean finiteDifferences) {
        for (boolean normalised : new boolean[] {true, false}) check(n, tokens, heads, d, finiteDifferences, normalised);
    }

    private void check(int n, long[] tokens, int heads, int d, boolean finiteDifferences, boolean normalised) {
        Device dev = Device.cpu();
        SplittableRandom random = TestSupport.freshRandom();
        int length = Math.toIntExact(tokens.length == 1 ? tokens[0] : tokens[0] * tokens[1]);
        long[] qkvShape = withChannels(n, tokens, 3L * heads * d), outShape = withChannels(n, tokens, (long) heads * d);
        long[] lseShape = {n, heads, length};
        float[] qkv = randomQkv(random, n * length * heads * 3, d, normalised);
        float[] dout = TestSupport.uniform(random, n * length * heads * d, 1);
        double[] qkvD = new double[qkv.length], doutD = new double[dout.length];
        for (int i = 0; i < qkv.length; i++) qkvD[i] = qkv[i];
        for (int i = 0; i < dout.length; i++) doutD[i] = dout[i];
        Problem p = new Problem(n, length, heads, d, qkvD);
        double[] lse = new double[n * heads * length];
        double[] out = p.forward(lse);
        // float32 logits are off by ~1e-7 |logit|; every output inherits that.
        double slack = 1 + maxAbs(lse), vmax = maxAbs(qkv);
        try (Tensor tq = Tensor.of(dev, qkv, qkvShape); Tensor tdo = Tensor.of(dev, dout, outShape);
                Tensor tout = TestSupport.poison(Tensor.allocate(dev, outShape));
                Tensor tlse = TestSupport.poison(Tensor.allocate(dev, lseShape));
                Tensor tdq = TestSupport.poison(Tensor.allocate(dev, qkvShape))) {
            String what = "attention " + n + "x" + length + " heads " + heads + " d " + d + (normalised ? " normalised" : " large");
            float[] gotOut = Attention.forward(tq, heads, tout, tlse).toArray();
            TestSupport.assertClose(what + " out", out, gotOut, 2e-6 * vmax * slack, 1e-5);
            TestSupport.assertClose(what + " lse", lse, tlse.toArray(), 2e-6 * slack, 2e-6);
            try (Tensor inference = Attention.forward(tq, heads)) {
                assertArrayEquals(gotOut, inference.toArray(), what + ": out without lse differs");
            }

            float[] got = Attention.backward(tq, tout, tlse, tdo, heads, tdq).toArray();
            checkGradient(what + " backward", p.backward(doutD), got, d, slack, vmax);
            if (finiteDifferences) checkGradient(what + " backward vs differences", p.differences(doutD), got, d, slack, vmax);
        }
    }

    /** q, k and v parts separately, each with a tolerance relative to its largest element. */
    private static void checkGradient(String what, double[] want, float[] got, int d, double slack, double floor) {
        int rows = want.length / (3 * d);
        for (int part = 0; part < 3; part++) {
            double[] w = new double[rows * d];
            float[] g = new float[rows * d];
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < d; c++) {
                    w[r * d + c] = want[(r * 3 + part) * d + c];
                    g[r * d + c] = got[(r * 3 + part) * d + c];
                }
            }
            TestSupport.assertClose(what + " d" + "qkv".charAt(part), w, g, 2e-6 * slack * Math.max(floor, maxAbs(w)), 1e-4);
        }
    }

    @Test
    void allocatingOverloads() {
        Device dev = Device.cpu();
        SplittableRandom random = TestSupport.freshRandom();
        float[] qkv = randomQkv(random, 2 * 9 * 2 * 3, 16, true);
        try (Tensor tq = Tensor.of(dev, qkv, 2, 3, 3, 96); Tensor lse = Tensor.allocate(dev, 2, 2, 9);
                Tensor out = Tensor.allocate(dev, 2, 3, 3, 32);
                Tensor dout = Tensor.of(dev, TestSupport.uniform(random, 2 * 9 * 32, 1), 2, 3, 3, 32)) {
            Attention.forward(tq, 2, out, lse);
            try (Tensor dq = Attention.backward(tq, out, lse, dout, 2); Tensor dq2 = Tensor.allocate(dev, 2, 3, 3, 96)) {
                assertArrayEquals(new long[] {2, 3, 3, 96}, dq.shape());
                assertArrayEquals(dq.toArray(), Attention.backward(tq, out, lse, dout, 2, dq2).toArray());
            }
        }
    }

    @Test
    void badArgumentsAreRefused() {
        Device dev = Device.cpu();
        try (Tensor qkv = Tensor.zeros(dev, 2, 5, 48); Tensor out = Tensor.zeros(dev, 2, 5, 16);
                Tensor lse = Tensor.zeros(dev, 2, 2, 5); Tensor dout = Tensor.zeros(dev, 2, 5, 16);
                Tensor dqkv = Tensor.zeros(dev, 2, 5, 48)) {
            assertMessage(() -> Attention.forward(qkv, 0, out, lse), "heads = 0");
            assertMessage(() -> Attention.forward(qkv, 5, out, lse), "not a positive multiple of heads * 3 = 15");
            assertMessage(() -> Attention.forward(qkv.reshape(480), 2, out, lse), "must be [N, L, C]");
            assertMessage(() -> Attention.forward(qkv, 2, out.reshape(2, 5, 4, 4), lse), "out [2, 5, 4, 4] must be [2, 5, 16]");
            assertMessage(() -> Attention.forward(qkv, 2, out, lse.reshape(2, 5, 2)), "lse [2, 5, 2] must be [2, 2, 5]");
            assertMessage(() -> Attention.forward(qkv, 1, out, lse), "lse [2, 2, 5] must be [2, 1, 5]");
            assertMessage(() -> Attention.forward(qkv.reshape(2, 1, 5, 48), 2, out, lse), "out [2, 5, 16] must be [2, 1, 5, 16]");
            assertMessage(() -> Attention.forward(null, 2, out, lse), "qkv is null");
            assertMessage(() -> Attention.backward(qkv, out, lse, dout, 2, qkv), "dqkv and qkv share memory");
            assertMessage(() -> Attention.backward(qkv, out, lse, dout, 2, dqkv.reshape(2, 48, 5)), "must have the same shape");
            assertMessage(() -> Attention.backward(qkv, out, lse, dout.reshape(2, 80), 2, dqkv), "dout [2, 80] must be [2, 5, 16]");
            assertMessage(() -> Attention.backward(qkv, out, null, dout, 2, dqkv), "lse is null");
        }
        // head_dim 1 makes out and lse the same size, so that one can be a view of the other.
        try (Tensor qkv = Tensor.zeros(dev, 2, 5, 6); Tensor out = Tensor.zeros(dev, 2, 5, 2)) {
            assertMessage(() -> Attention.forward(qkv, 2, out, out.reshape(2, 2, 5)), "lse and out share memory");
        }
    }

    private static void assertMessage(org.junit.jupiter.api.function.Executable call, String fragment) {
        var e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(fragment), e.getMessage());
    }
}
