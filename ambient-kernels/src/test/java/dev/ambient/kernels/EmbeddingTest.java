package dev.ambient.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** MP Fourier features and channel scaling: forward against float64, backward by finite differences. */
class EmbeddingTest {

    /** {n, channels}. */
    static Stream<int[]> fourierShapes() {
        return Stream.of(new int[] {1, 1}, new int[] {5, 7}, new int[] {64, 192}, new int[] {3, 200});
    }

    static double[] fourier(double[] x, float[] freqs, float[] phases) {
        int c = freqs.length;
        double[] y = new double[x.length * c];
        for (int i = 0; i < x.length; i++)
            for (int k = 0; k < c; k++) y[i * c + k] = Math.sqrt(2) * Math.cos(x[i] * freqs[k] + phases[k]);
        return y;
    }

    @ParameterizedTest
    @MethodSource("fourierShapes")
    void mpFourier(int[] shape) {
        Device d = Device.cpu();
        SplittableRandom random = TestSupport.freshRandom();
        int n = shape[0], c = shape[1];
        float[] x = TestSupport.uniform(random, n, 2), dy = TestSupport.uniform(random, n * c, 1);
        double[] xd = new double[n];
        for (int i = 0; i < n; i++) xd[i] = x[i];
        try (Embedding.FourierBuffers buffers = Embedding.mpFourierBuffers(d, c, random.nextLong());
                Tensor tx = Tensor.of(d, x, n); Tensor tdy = Tensor.of(d, dy, n, c);
                Tensor ty = TestSupport.poison(Tensor.allocate(d, n, c)); Tensor tdx = TestSupport.poison(Tensor.allocate(d, n))) {
            float[] freqs = buffers.freqs().toArray(), phases = buffers.phases().toArray();
            TestSupport.assertClose("mp_fourier forward", fourier(xd, freqs, phases),
                    Embedding.mpFourier(tx, buffers.freqs(), buffers.phases(), ty).toArray(), 1e-6, 1e-6);
            try (Tensor y2 = Embedding.mpFourier(tx, buffers.freqs(), buffers.phases())) {
                assertArrayEquals(ty.toArray(), y2.toArray());
            }
            double[] want = new double[n];
            for (int j = 0; j < n; j++) {
                double h = 1e-6;
                xd[j] = x[j] + h;
                double[] plus = fourier(xd, freqs, phases);
                xd[j] = x[j] - h;
                double[] minus = fourier(xd, freqs, phases);
                xd[j] = x[j];
                double g = 0;
                for (int i = 0; i < n * c; i++) g += dy[i] * (plus[i] - minus[i]);
                want[j] = g / (2 * h);
            }
            TestSupport.assertClose("mp_fourier backward", want,
                    Embedding.mpFourierBackward(tx, buffers.freqs(), buffers.phases(), tdy, tdx).toArray(), 1e-4 * Math.sqrt(c), 1e-5);
        }
    }

    @Test
    void fourierBuffersFollowEdm2AndTheDocumentedStreams() {
        Device d = Device.cpu();
        int c = 192;
        try (Embedding.FourierBuffers a = Embedding.mpFourierBuffers(d, c, 42);
                Embedding.FourierBuffers b = Embedding.mpFourierBuffers(d, c, 42);
                Embedding.FourierBuffers wide = Embedding.mpFourierBuffers(d, c, 42, 2f);
                Tensor z = RandomNumbers.normal(d, 42, Embedding.FOURIER_FREQUENCY_STREAM, 0, c);
                Tensor u = RandomNumbers.uniform(d, 42, Embedding.FOURIER_PHASE_STREAM, 0, c)) {
            assertArrayEquals(a.freqs().toArray(), b.freqs().toArray(), "same seed, same buffers");
            assertArrayEquals(a.phases().toArray(), b.phases().toArray());
            float[] zs = z.toArray(), us = u.toArray(), f = a.freqs().toArray(), p = a.phases().toArray(), f2 = wide.freqs().toArray();
            double[] wantF = new double[c], wantP = new double[c], wantF2 = new double[c];
            for (int k = 0; k < c; k++) {
                wantF[k] = 2 * Math.PI * zs[k];
                wantP[k] = 2 * Math.PI * us[k];
                wantF2[k] = 4 * Math.PI * zs[k];
                assertTrue(p[k] >= 0 && p[k] < 2 * Math.PI + 1e-6, "phase " + p[k]);
            }
            TestSupport.assertClose("freqs = 2 pi N(0, 1)", wantF, f, 0, 1e-7);
            TestSupport.assertClose("phases = 2 pi U[0, 1)", wantP, p, 0, 1e-7);
            TestSupport.assertClose("bandwidth 2", wantF2, f2, 0, 1e-7);
        }
    }

    /** x shapes: [N, H, W, C] or [N, P, C]. */
    /** Every shape for plain channel scaling and for the fused form with mp_silu. */
    static Stream<Arguments> scaleShapes() {
        return Stream.of(new long[] {1, 1, 1, 1}, new long[] {1, 7, 3}, new long[] {3, 5, 5, 17}, new long[] {1, 32, 32, 67},
                new long[] {2, 3, 3, 200}, new long[] {4, 16, 16, 64})
                .flatMap(shape -> Stream.of(Arguments.of(shape, false), Arguments.of(shape, true)));
    }

    /** x (1 + s), then mp_silu when silu, in double. */
    static double[] scale(double[] x, double[] s, int n, int c, boolean silu) {
        int per = x.length / n;
        double[] y = new double[x.length];
        for (int e = 0; e < x.length; e++) {
            double u = x[e] * (1 + s[(e / per) * c + e % c]);
            y[e] = silu ? u / (1 + Math.exp(-u)) / 0.596 : u;
        }
        return y;
    }

    @ParameterizedTest
    @MethodSource("scaleShapes")
    void channelScale(long[] shape, boolean silu) {
        Device d = Device.cpu();
        SplittableRandom random = TestSupport.freshRandom();
        int n = (int) shape[0], c = (int) shape[shape.length - 1];
        int count = Math.toIntExact(Arrays.stream(shape).reduce(1, (a, b) -> a * b));
        float[] x = TestSupport.uniform(random, count, 2), s = TestSupport.uniform(random, n * c, 0.8),
                dy = TestSupport.uniform(random, count, 1);
        double[] xd = new double[count], sd = new double[n * c];
        for (int i = 0; i < count; i++) xd[i] = x[i];
        for (int i = 0; i < n * c; i++) sd[i] = s[i];
        double[] y = scale(xd, sd, n, c, silu);
        // gradients of <dy, y(x, s)> by central differences (at ~200 elements of x, every s)
        int step = count > 400 ? (count / 200) | 1 : 1, m = (count + step - 1) / step;
        double[] dxWant = new double[m], dsWant = new double[n * c];
        double h = 1e-3;
        for (int t = 0; t < m; t++) {
            int j = t * step;
            xd[j] = x[j] + h;
            double plus = dot(dy, scale(xd, sd, n, c, silu));
            xd[j] = x[j] - h;
            double minus = dot(dy, scale(xd, sd, n, c, silu));
            xd[j] = x[j];
            dxWant[t] = (plus - minus) / (2 * h);
        }
        for (int j = 0; j < n * c; j++) {
            sd[j] = s[j] + h;
            double plus = dot(dy, scale(xd, sd, n, c, silu));
            sd[j] = s[j] - h;
            double minus = dot(dy, scale(xd, sd, n, c, silu));
            sd[j] = s[j];
            dsWant[j] = (plus - minus) / (2 * h);
        }
        try (Tensor tx = Tensor.of(d, x, shape); Tensor ts = Tensor.of(d, s, n, c); Tensor tdy = Tensor.of(d, dy, shape);
                Tensor ty = TestSupport.poison(Tensor.allocate(d, shape)); Tensor tdx = TestSupport.poison(Tensor.allocate(d, shape));
                Tensor tds = TestSupport.poison(Tensor.allocate(d, n, c))) {
            String name = silu ? "channel_scale_silu" : "channel_scale";
            TestSupport.assertClose(name + " forward", y, forward(silu, tx, ts, ty).toArray(), 1e-6, 2e-6);
            backward(silu, tx, ts, tdy, tdx, tds);
            float[] dx = tdx.toArray(), dxSampled = new float[m];
            for (int t = 0; t < m; t++) dxSampled[t] = dx[t * step];
            TestSupport.assertClose(name + " backward dx", dxWant, dxSampled, 1e-5, 1e-5);
            TestSupport.assertClose(name + " backward ds", dsWant, tds.toArray(), 1e-5 * Math.sqrt(count / n / c), 1e-5);
            // in place: y = x, and dx = dy
            forward(silu, tx, ts, tx);
            TestSupport.assertClose(name + " in place", y, tx.toArray(), 1e-6, 2e-6);
            tx.copyFrom(x);
            backward(silu, tx, ts, tdy, tdy, tds);
            assertArrayEquals(dx, tdy.toArray());
        }
    }

    private static Tensor forward(boolean silu, Tensor x, Tensor s, Tensor y) {
        return silu ? Embedding.channelScaleSilu(x, s, y) : Embedding.channelScale(x, s, y);
    }

    private static void backward(boolean silu, Tensor x, Tensor s, Tensor dy, Tensor dx, Tensor ds) {
        if (silu) Embedding.channelScaleSiluBackward(x, s, dy, dx, ds);
        else Embedding.channelScaleBackward(x, s, dy, dx, ds);
    }

    private static double dot(float[] a, double[] b) {
        double sum = 0;
        for (int i = 0; i < a.length; i++) sum += a[i] * b[i];
        return sum;
    }

    @Test
    void badArgumentsAreRefused() {
        Device d = Device.cpu();
        try (Tensor x = Tensor.zeros(d, 2, 3, 3, 4); Tensor s = Tensor.zeros(d, 2, 4); Tensor wrongS = Tensor.zeros(d, 2, 5);
                Tensor dx = Tensor.zeros(d, 2, 3, 3, 4); Tensor n = Tensor.zeros(d, 3); Tensor f = Tensor.zeros(d, 8);
                Tensor p = Tensor.zeros(d, 7)) {
            var shape = assertThrows(IllegalArgumentException.class, () -> Embedding.channelScale(x, wrongS));
            assertTrue(shape.getMessage().contains("s [N, C]"), shape.getMessage());
            var alias = assertThrows(IllegalArgumentException.class, () -> Embedding.channelScaleBackward(x, s, dx, x, s.reshape(2, 4)));
            assertTrue(alias.getMessage().contains("share memory"), alias.getMessage());
            var lengths = assertThrows(IllegalArgumentException.class, () -> Embedding.mpFourier(n, f, p));
            assertTrue(lengths.getMessage().contains("freqs and phases [C]"), lengths.getMessage());
            var channels = assertThrows(IllegalArgumentException.class, () -> Embedding.mpFourierBuffers(d, -1, 0));
            assertTrue(channels.getMessage().contains("negative"), channels.getMessage());
        }
    }
}
