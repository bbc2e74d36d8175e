package dev.ambient.model.unet;

import dev.ambient.kernels.AmbientLoss;
import dev.ambient.kernels.Device;
import dev.ambient.kernels.RandomNumbers;
import dev.ambient.kernels.Tensor;
import dev.ambient.model.checkpoint.ModelCheckpoint;
import dev.ambient.model.nn.Parameters;
import dev.ambient.model.nn.StepContext;
import dev.ambient.model.train.LearningRateSchedule;
import dev.ambient.model.train.Trainer;
import dev.ambient.model.train.TrainingBatch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The whole EDM2 network: gradients by finite differences, checkpoints, and memorising a batch. */
class Edm2ModelTest {

    static final Device CPU = Device.cpu();
    static long seed;

    @BeforeAll
    static void seed() {
        seed = System.nanoTime();
        System.out.println("Edm2ModelTest seed " + seed);
    }

    /**
     * A network small enough for finite differences that still has every kind of module: both
     * block flavours, width changes (conv_skip) in both, down and up resampling, attention with
     * 4 heads, class labels and dropout.
     */
    static UNetConfig tiny(double dropout) {
        return new UNetConfig(8, 3, 4, 8, new int[] {1, 2}, null, null, 1, new int[] {4}, dropout,
                0.5, 0.5, 0.3, 0.3, 256, 4, 8);
    }

    /** Random weights with every gain away from 0 (at 0 most gradients vanish). */
    static void randomize(Edm2Model model, SplittableRandom random) {
        model.initialize(random.nextLong());
        for (Parameters.Entry e : model.parameters().entries()) {
            if (e.layout() == Parameters.Layout.SCALAR) e.value().copyFrom(new float[] {(float) (0.3 + 0.7 * random.nextDouble())});
        }
    }

    static Tensor images(int n, UNetConfig c, long s) {
        try (Tensor z = RandomNumbers.normal(CPU, s, 7, 0, (long) n * c.imgResolution() * c.imgResolution() * c.imgChannels())) {
            float[] v = z.toArray();
            for (int i = 0; i < v.length; i++) v[i] = (float) Math.tanh(0.6 * v[i]); // in [-1, 1] like images
            return Tensor.of(CPU, v, n, c.imgResolution(), c.imgResolution(), c.imgChannels());
        }
    }

    /**
     * The Ambient loss summed over the batch, with its gradient into the model's grads when
     * {@code backward}; x_t and x_tn fixed.
     */
    static double lossAndGradient(Edm2Model model, Tensor xT, Tensor xTn, double[] sigma, double[] sigmaTn, int[] labels,
                                  Tensor mask, boolean backward) {
        int n = sigma.length;
        model.prepare(false);
        StepContext ctx = new StepContext(model.pool(), true, 1234, false, model.ones(n));
        Edm2Model.Output out = model.forward(xT, sigma, labels, true, ctx);
        try (Tensor sT = Tensor.of(CPU, floats(sigma), n); Tensor sTn = Tensor.of(CPU, floats(sigmaTn), n);
             Tensor loss = Tensor.allocate(CPU, n); Tensor gLogvar = Tensor.allocate(CPU, n)) {
            Tensor gX0 = model.pool().take(xT.shape());
            AmbientLoss.loss(out.denoised(), xT, xTn, sT, sTn, out.logvar().reshape(n), mask, 0.5f, 1f, loss, gX0, gLogvar);
            double sum = 0;
            for (float l : loss.toArray()) sum += l;
            model.pool().give(out.denoised());
            model.backward(gX0, gLogvar, ctx);
            model.pool().give(out.logvar());
            if (backward) model.finishBackward();
            return sum;
        }
    }

    static float[] floats(double[] d) {
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) f[i] = (float) d[i];
        return f;
    }

    @Test
    void gradientOfTheWholeNetworkMatchesFiniteDifferences() {
        SplittableRandom random = new SplittableRandom(seed);
        UNetConfig c = tiny(0.2);
        int n = 3;
        try (Edm2Model model = new Edm2Model(c, CPU, seed)) {
            randomize(model, random);
            double[] sigma = {0.3, 1.7, 9.0};
            double[] sigmaTn = {0, 0.9, 0};
            int[] labels = {2, 0, 3};
            try (Tensor x = images(n, c, random.nextLong()); Tensor xT = Tensor.allocate(CPU, x.shape());
                 Tensor xTn = Tensor.allocate(CPU, x.shape()); Tensor sT = Tensor.of(CPU, floats(sigma), n);
                 Tensor sTn = Tensor.of(CPU, floats(sigmaTn), n); Tensor mask = Tensor.allocate(CPU, n, 8, 8)) {
                AmbientLoss.noising(x, sT, sTn, new long[] {5, 6, 7}, random.nextLong(), random.nextLong(), xTn, xT);
                float[] m = new float[n * 64];
                for (int i = 0; i < m.length; i++) m[i] = (float) (0.5 + random.nextDouble());
                mask.copyFrom(m);
                lossAndGradient(model, xT, xTn, sigma, sigmaTn, labels, mask, true);
                Parameters p = model.parameters();
                float[] grad = p.grads().toArray(), theta = p.values().toArray();
                int checked = 0;
                for (Parameters.Entry e : p.entries()) {
                    if (!e.trained()) continue;
                    long offset = offsetOf(p, e);
                    // a random unit direction within this parameter
                    double[] u = new double[(int) e.size()];
                    double norm = 0;
                    for (int i = 0; i < u.length; i++) {
                        u[i] = random.nextGaussian();
                        norm += u[i] * u[i];
                    }
                    double analytic = 0;
                    for (int i = 0; i < u.length; i++) {
                        u[i] /= Math.sqrt(norm);
                        analytic += u[i] * grad[(int) offset + i];
                    }
                    double h = e.layout() == Parameters.Layout.SCALAR ? 1e-2 : 3e-2;
                    double plus = lossAt(model, p, theta, offset, u, h, xT, xTn, sigma, sigmaTn, labels, mask);
                    double minus = lossAt(model, p, theta, offset, u, -h, xT, xTn, sigma, sigmaTn, labels, mask);
                    double numeric = (plus - minus) / (2 * h);
                    double scale = Math.max(Math.abs(analytic), 1e-3 * Math.abs(plus));
                    assertEquals(numeric, analytic, 2e-2 * scale + 1e-4,
                            e.name() + ": directional derivative, numeric " + numeric + " vs backward " + analytic);
                    checked++;
                }
                p.values().copyFrom(theta);
                assertTrue(checked > 20, "checked " + checked + " parameters");
            }
        }
    }

    private static long offsetOf(Parameters p, Parameters.Entry e) {
        long offset = 0;
        for (Parameters.Entry o : p.entries()) {
            if (o == e) return offset;
            if (o.trained()) offset += o.size();
        }
        throw new IllegalStateException();
    }

    private static double lossAt(Edm2Model model, Parameters p, float[] theta, long offset, double[] u, double h, Tensor xT,
                                 Tensor xTn, double[] sigma, double[] sigmaTn, int[] labels, Tensor mask) {
        float[] moved = theta.clone();
        for (int i = 0; i < u.length; i++) moved[(int) offset + i] = (float) (theta[(int) offset + i] + h * u[i]);
        p.values().copyFrom(moved);
        return lossAndGradient(model, xT, xTn, sigma, sigmaTn, labels, mask, false);
    }

    @Test
    void twoMicroBatchesGiveTheGradientOfTheirUnion() {
        SplittableRandom random = new SplittableRandom(seed + 3);
        UNetConfig c = tiny(0);
        int n = 4, per = 8 * 8 * 3;
        double[] sigma = {0.3, 1.7, 9.0, 0.05};
        double[] sigmaTn = {0, 0.9, 0, 0.01};
        int[] labels = {2, 0, 3, 1};
        try (Edm2Model model = new Edm2Model(c, CPU, seed); Tensor xT = images(n, c, random.nextLong());
             Tensor xTn = images(n, c, random.nextLong())) {
            randomize(model, random);
            float[] whole = gradient(model, List.of(new int[] {0, 4}), xT, xTn, sigma, sigmaTn, labels);
            float[] halves = gradient(model, List.of(new int[] {0, 2}, new int[] {2, 4}), xT, xTn, sigma, sigmaTn, labels);
            double err = 0, ref = 0;
            for (int i = 0; i < whole.length; i++) {
                err = Math.max(err, Math.abs(whole[i] - halves[i]));
                ref = Math.max(ref, Math.abs(whole[i]));
            }
            assertTrue(ref > 0 && err <= 1e-5 * ref, "max difference " + err + " of max " + ref);
        }
    }

    /** The parameters' gradient of the batch's loss mean, accumulated over the given [from, to) sample ranges. */
    private static float[] gradient(Edm2Model model, List<int[]> ranges, Tensor xT, Tensor xTn, double[] sigma,
                                    double[] sigmaTn, int[] labels) {
        model.prepare(false);
        int per = (int) (xT.size() / xT.dim(0));
        boolean accumulate = false;
        for (int[] r : ranges) {
            int n = r[1] - r[0];
            long[] shape = {n, xT.dim(1), xT.dim(2), xT.dim(3)};
            Tensor x = xT.slice((long) r[0] * per, shape), xn = xTn.slice((long) r[0] * per, shape);
            double[] s = java.util.Arrays.copyOfRange(sigma, r[0], r[1]), sn = java.util.Arrays.copyOfRange(sigmaTn, r[0], r[1]);
            StepContext ctx = new StepContext(model.pool(), true, 77, accumulate, model.ones(n));
            Edm2Model.Output out = model.forward(x, s, java.util.Arrays.copyOfRange(labels, r[0], r[1]), true, ctx);
            try (Tensor sT = Tensor.of(CPU, floats(s), n); Tensor sTn = Tensor.of(CPU, floats(sn), n);
                 Tensor loss = Tensor.allocate(CPU, n); Tensor gLogvar = Tensor.allocate(CPU, n)) {
                Tensor gX0 = model.pool().take(x.shape());
                AmbientLoss.loss(out.denoised(), x, xn, sT, sTn, out.logvar().reshape(n), null, 0.5f, 1f / sigma.length, loss,
                        gX0, gLogvar);
                model.pool().give(out.denoised());
                model.backward(gX0, gLogvar, ctx);
                model.pool().give(out.logvar());
            }
            accumulate = true;
        }
        model.finishBackward();
        return model.parameters().grads().toArray();
    }

    @Test
    void checkpointRoundTripGivesTheSameOutputsAndATruncatedFileIsRefused(@TempDir Path dir) throws IOException {
        SplittableRandom random = new SplittableRandom(seed + 1);
        UNetConfig c = tiny(0);
        Path file = dir.resolve("net.safetensors");
        double[] sigma = {0.05, 2.5};
        int[] labels = {1, 3};
        float[] before, after;
        try (Edm2Model model = new Edm2Model(c, CPU, seed); Tensor x = images(2, c, random.nextLong())) {
            randomize(model, random);
            before = denoise(model, x, sigma, labels);
            ModelCheckpoint.save(model, file, Map.of("note", "round trip"));
        }
        try (Edm2Model loaded = Edm2Model.uninitialized(c, CPU); Tensor x = images(2, c, new SplittableRandom(seed + 1).nextLong())) {
            assertEquals("round trip", ModelCheckpoint.load(loaded, file).get("note"));
            after = denoise(loaded, x, sigma, labels);
        }
        assertArrayEquals(before, after, "the loaded network denoises exactly as the saved one");

        Path truncated = dir.resolve("truncated.safetensors");
        Files.copy(file, truncated);
        try (FileChannel ch = FileChannel.open(truncated, StandardOpenOption.WRITE)) {
            ch.truncate(ch.size() - 100);
        }
        try (Edm2Model other = Edm2Model.uninitialized(c, CPU)) {
            IOException e = assertThrows(IOException.class, () -> ModelCheckpoint.load(other, truncated));
            assertTrue(e.getMessage().contains("truncated.safetensors"), e.getMessage());
        }
        UNetConfig wider = new UNetConfig(8, 3, 4, 12, new int[] {1, 2}, null, null, 1, new int[] {4}, 0, 0.5, 0.5, 0.3, 0.3, 256, 4, 8);
        try (Edm2Model other = Edm2Model.uninitialized(wider, CPU)) {
            IOException e = assertThrows(IOException.class, () -> ModelCheckpoint.load(other, file));
            assertTrue(e.getMessage().contains("shapes differ") && e.getMessage().contains("unet.enc.8x8_conv.weight"), e.getMessage());
        }
    }

    static float[] denoise(Edm2Model model, Tensor x, double[] sigma, int[] labels) {
        model.prepare(false);
        StepContext ctx = new StepContext(model.pool(), false, 0, false, model.ones(sigma.length));
        Edm2Model.Output out = model.forward(x, sigma, labels, false, ctx);
        float[] d = out.denoised().toArray();
        model.pool().give(out.denoised());
        assertEquals(0, model.pool().lentCount(), "an inference pass gives back every buffer");
        return d;
    }

    @Test
    void memorisesAFixedBatch() {
        UNetConfig c = tiny(0);
        int n = 4;
        try (Edm2Model model = new Edm2Model(c, CPU, seed); Tensor x = images(n, c, seed + 2)) {
            Trainer.Options options = new Trainer.Options(new LearningRateSchedule(0.01, 0, 0), 0.9f, 0.99f, 1e-8f, 0f,
                    List.of(), false, seed);
            try (Trainer trainer = new Trainer(model, options)) {
                TrainingBatch batch = new TrainingBatch(x, new double[] {0.2, 0.5, 1.0, 2.0}, new double[] {0, 0.1, 0, 0},
                        new long[] {0, 1, 2, 3}, new int[] {0, 1, 2, 3}, null);
                double first = trainer.step(List.of(batch), 99).loss(), last = first;
                for (int i = 0; i < 300; i++) last = trainer.step(List.of(batch), 99).loss();
                System.out.printf("memorise: loss %.4g -> %.4g after 300 steps%n", first, last);
                assertTrue(last < first / 10, "loss fell from " + first + " to " + last);
                assertEquals(0, model.pool().lentCount(), "every step gives back its buffers");
            }
        }
    }
}
