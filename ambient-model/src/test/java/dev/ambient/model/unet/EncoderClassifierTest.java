package dev.ambient.model.unet;

import dev.ambient.kernels.Device;
import dev.ambient.kernels.Tensor;
import dev.ambient.model.nn.Parameters;
import dev.ambient.model.nn.StepContext;
import dev.ambient.model.train.ClassifierTrainer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The encoder classifier: gradients by finite differences, and learning a separable task. */
class EncoderClassifierTest {

    static final Device CPU = Device.cpu();
    static long seed;

    @BeforeAll
    static void seed() {
        seed = System.nanoTime();
        System.out.println("EncoderClassifierTest seed " + seed);
    }

    /** Every kind of encoder module: width changes, down-sampling, attention with 2 heads, labels, dropout. */
    static UNetConfig tiny(double dropout) {
        return new UNetConfig(8, 3, 4, 8, new int[] {1, 2}, null, null, 1, new int[] {4}, dropout,
                0.5, 0.5, 0.3, 0.3, 256, 8, 8);
    }

    /** Random weights with every gain and bias away from 0. */
    static void randomize(EncoderClassifier model, SplittableRandom random) {
        model.initialize(random.nextLong());
        for (Parameters.Entry e : model.parameters().entries()) {
            if (e.layout() == Parameters.Layout.SCALAR) e.value().copyFrom(new float[] {(float) (0.3 + 0.7 * random.nextDouble())});
        }
        float[] bias = new float[model.classes()];
        for (int c = 0; c < bias.length; c++) bias[c] = (float) random.nextGaussian();
        model.parameters().get("head.bias").value().copyFrom(bias);
    }

    static float[] images(int n, UNetConfig c, SplittableRandom random) {
        float[] v = new float[n * c.imgResolution() * c.imgResolution() * c.imgChannels()];
        for (int i = 0; i < v.length; i++) v[i] = (float) Math.tanh(0.6 * random.nextGaussian());
        return v;
    }

    /** sum_i w_i . logits_i, and its gradient into the model's grads when {@code backward}. */
    static double objective(EncoderClassifier model, float[] x, double[] sigma, int[] labels, float[] weights, boolean backward) {
        int n = sigma.length;
        model.prepare(false);
        StepContext ctx = new StepContext(model.pool(), true, 4321, false, model.ones(n));
        try (Tensor xt = Tensor.of(CPU, x, n, 8, 8, 3); Tensor w = Tensor.of(CPU, weights, n, model.classes())) {
            Tensor logits = model.forward(xt, sigma, labels, ctx);
            float[] l = logits.toArray();
            model.pool().give(logits);
            double sum = 0;
            for (int i = 0; i < l.length; i++) sum += (double) weights[i] * l[i];
            model.backward(w, ctx);
            if (backward) model.finishBackward();
            assertEquals(0, model.pool().lentCount(), "a training pass gives back every buffer");
            return sum;
        }
    }

    @Test
    void gradientOfTheWholeClassifierMatchesFiniteDifferences() {
        SplittableRandom random = new SplittableRandom(seed);
        UNetConfig c = tiny(0.2);
        int n = 3, classes = 2;
        try (EncoderClassifier model = new EncoderClassifier(c, classes, CPU, seed)) {
            randomize(model, random);
            float[] x = images(n, c, random);
            double[] sigma = {0.1, 1.3, 7.0};
            int[] labels = {1, 3, 0};
            float[] weights = new float[n * classes];
            for (int i = 0; i < weights.length; i++) weights[i] = (float) random.nextGaussian();
            objective(model, x, sigma, labels, weights, true);
            Parameters p = model.parameters();
            float[] grad = p.grads().toArray(), theta = p.values().toArray();
            int checked = 0;
            long offset = 0;
            for (Parameters.Entry e : p.entries()) {
                if (!e.trained()) continue;
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
                double plus = at(model, p, theta, offset, u, h, x, sigma, labels, weights);
                double minus = at(model, p, theta, offset, u, -h, x, sigma, labels, weights);
                double numeric = (plus - minus) / (2 * h);
                double scale = Math.max(Math.abs(analytic), 1e-3 * Math.abs(plus));
                assertEquals(numeric, analytic, 2e-2 * scale + 1e-4,
                        e.name() + ": directional derivative, numeric " + numeric + " vs backward " + analytic);
                checked++;
                offset += e.size();
            }
            p.values().copyFrom(theta);
            assertTrue(checked > 15, "checked " + checked + " parameters");
        }
    }

    private static double at(EncoderClassifier model, Parameters p, float[] theta, long offset, double[] u, double h, float[] x,
                             double[] sigma, int[] labels, float[] weights) {
        float[] moved = theta.clone();
        for (int i = 0; i < u.length; i++) moved[(int) offset + i] = (float) (theta[(int) offset + i] + h * u[i]);
        p.values().copyFrom(moved);
        return objective(model, x, sigma, labels, weights, false);
    }

    @Test
    void parameterNamesFollowEdm2sEncoder() {
        try (EncoderClassifier model = new EncoderClassifier(tiny(0), 1, CPU, 1)) {
            Parameters p = model.parameters();
            assertEquals(8 * 4, p.get("unet.enc.8x8_conv.weight").size() / 9);
            p.get("unet.enc.4x4_down.conv_res0.weight");
            p.get("unet.enc.4x4_block0.attn_qkv.weight");
            assertEquals(16, p.get("head.weight").size());
            assertEquals(1, p.get("head.bias").size());
            assertThrows(IllegalArgumentException.class, () -> p.get("unet.dec.4x4_in0.emb_gain"));
            assertThrows(IllegalArgumentException.class, () -> p.get("unet.out_gain"));
        }
    }

    @Test
    void learnsToTellStripesFromFlatImages() {
        UNetConfig c = new UNetConfig(8, 3, 0, 8, new int[] {1, 2}, null, null, 1, new int[] {}, 0,
                0.5, 0.5, 0.3, 0.3, 256, 8, 8);
        SplittableRandom random = new SplittableRandom(seed + 1);
        int n = 16, per = 8 * 8 * 3;
        try (EncoderClassifier model = new EncoderClassifier(c, 1, CPU, seed);
             ClassifierTrainer trainer = new ClassifierTrainer(model, ClassifierTrainer.Options.reference(3e-3, 0, seed))) {
            double firstLoss = 0, lastLoss = 0, lastAccuracy = 0;
            for (int step = 0; step < 120; step++) {
                float[] x = new float[n * per];
                int[] y = new int[n];
                double[] sigma = new double[n];
                for (int i = 0; i < n; i++) {
                    y[i] = i % 2;
                    sigma[i] = 0.05;
                    float level = (float) (random.nextDouble() - 0.5);
                    for (int py = 0; py < 8; py++)
                        for (int px = 0; px < 8; px++)
                            for (int ch = 0; ch < 3; ch++) {
                                float stripe = y[i] == 1 ? ((px & 1) == 0 ? 0.5f : -0.5f) : 0f;
                                x[i * per + (py * 8 + px) * 3 + ch] = level + stripe + 0.05f * (float) random.nextGaussian();
                            }
                }
                ClassifierTrainer.StepStats s = trainer.step(x, sigma, null, y);
                if (step == 0) firstLoss = s.loss();
                lastLoss = s.loss();
                lastAccuracy = s.accuracy();
            }
            System.out.printf("classifier: loss %.4f -> %.4f, accuracy %.2f%n", firstLoss, lastLoss, lastAccuracy);
            assertTrue(lastLoss < 0.2 && lastAccuracy == 1.0, "loss " + firstLoss + " -> " + lastLoss + ", accuracy " + lastAccuracy);
            assertEquals(0, model.pool().lentCount());
        }
    }
}
