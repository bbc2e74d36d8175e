package dev.ambient.benchmarks;

import dev.ambient.kernels.Device;
import dev.ambient.kernels.RandomNumbers;
import dev.ambient.kernels.Tensor;
import dev.ambient.model.checkpoint.ModelCheckpoint;
import dev.ambient.model.checkpoint.SafeTensors;
import dev.ambient.model.nn.Parameters;
import dev.ambient.model.nn.StepContext;
import dev.ambient.model.unet.Edm2Model;
import dev.ambient.model.unet.UNetConfig;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Java EDM2 network against the PyTorch one in this module (edm2_torch.py), on the same
 * safetensors weights and inputs: D(x; sigma) and the logvar agree to 1e-4 relative. Runs where
 * /usr/bin/python3 imports torch; elsewhere it is reported as skipped, with the reason.
 */
class Edm2TorchParityTest {

    static long seed;
    static String torchMissing;

    @BeforeAll
    static void setUp() {
        seed = System.nanoTime();
        torchMissing = TorchEdm2.unavailable();
        System.out.println("Edm2TorchParityTest seed " + seed + (torchMissing == null ? "" : "; SKIPPED: " + torchMissing));
    }

    static UNetConfig config(String name) {
        return switch (name) {
            // every module kind, class labels, heads of 4
            case "tiny-conditional" -> new UNetConfig(8, 3, 4, 8, new int[] {1, 2}, null, null, 1, new int[] {4}, 0,
                    0.5, 0.5, 0.3, 0.3, 256, 4, 8);
            default -> UNetConfig.preset(name);
        };
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny-conditional", "W1"})
    void javaAndPyTorchDenoiseAlike(String name, @TempDir Path dir) throws Exception {
        Assumptions.assumeTrue(torchMissing == null, () -> "skipped: " + torchMissing);
        UNetConfig c = config(name);
        SplittableRandom random = new SplittableRandom(seed);
        int n = 4, r = c.imgResolution(), ch = c.imgChannels();
        double[] sigma = {0.02, 0.7, 3.0, 40.0};
        int[] labels = c.labelDim() > 0 ? new int[] {0, 3, 1, 2} : null;
        Device cpu = Device.cpu();
        try (Edm2Model model = new Edm2Model(c, cpu, seed);
             Tensor x = RandomNumbers.normal(cpu, random.nextLong(), 0, 0, n, r, r, ch)) {
            for (Parameters.Entry e : model.parameters().entries()) { // gains away from 0, or F would vanish
                if (e.layout() == Parameters.Layout.SCALAR) e.value().copyFrom(new float[] {(float) (0.3 + random.nextDouble())});
            }
            Path weights = dir.resolve("weights.safetensors");
            ModelCheckpoint.save(model, weights, Map.of());
            float[] xs = x.toArray();
            Map<String, SafeTensors.Tensor> inputs = new LinkedHashMap<>();
            inputs.put("x", new SafeTensors.Tensor(new long[] {n, ch, r, r}, nhwcToNchw(xs, n, r, ch)));
            float[] s = new float[n];
            for (int i = 0; i < n; i++) s[i] = (float) sigma[i];
            inputs.put("sigma", new SafeTensors.Tensor(new long[] {n}, s));
            if (labels != null) {
                float[] onehot = new float[n * c.labelDim()];
                for (int i = 0; i < n; i++) onehot[i * c.labelDim() + labels[i]] = 1;
                inputs.put("labels", new SafeTensors.Tensor(new long[] {n, c.labelDim()}, onehot));
            }
            SafeTensors.write(dir.resolve("inputs.safetensors"), inputs, Map.of());
            TorchEdm2.run(dir, c, 2, "forward", weights.toString(), dir.resolve("inputs.safetensors").toString(),
                    dir.resolve("outputs.safetensors").toString());
            SafeTensors.Contents torch = SafeTensors.read(dir.resolve("outputs.safetensors"));

            model.prepare(false);
            StepContext ctx = new StepContext(model.pool(), false, 0, false, model.ones(n));
            double[] sigmaD = new double[n];
            for (int i = 0; i < n; i++) sigmaD[i] = s[i]; // the float32 sigma PyTorch received
            Edm2Model.Output out = model.forward(x, sigmaD, labels, true, ctx);
            float[] ours = nhwcToNchw(out.denoised().toArray(), n, r, ch), logvar = out.logvar().toArray();
            model.pool().give(out.denoised());
            model.pool().give(out.logvar());

            float[] theirs = torch.tensors().get("denoised").values();
            int per = r * r * ch;
            for (int i = 0; i < n; i++) {
                double err = 0, ref = 0;
                for (int e = i * per; e < (i + 1) * per; e++) {
                    err = Math.max(err, Math.abs(ours[e] - theirs[e]));
                    ref = Math.max(ref, Math.abs(theirs[e]));
                }
                System.out.printf("%s sample %d (sigma %.3g): max |D_java - D_torch| / max |D| = %.2e%n", name, i, sigma[i], err / ref);
                assertTrue(err <= 1e-4 * ref, name + " sample " + i + ": D differs by " + err + " (max |D| " + ref + ")");
            }
            float[] theirLogvar = torch.tensors().get("logvar").values();
            for (int i = 0; i < n; i++) {
                assertTrue(Math.abs(logvar[i] - theirLogvar[i]) <= 1e-4 * Math.max(1, Math.abs(theirLogvar[i])),
                        name + " logvar " + i + ": " + logvar[i] + " vs " + theirLogvar[i]);
            }
        }
    }

    static float[] nhwcToNchw(float[] v, int n, int r, int c) {
        float[] out = new float[v.length];
        for (int i = 0; i < n; i++)
            for (int y = 0; y < r; y++)
                for (int x = 0; x < r; x++)
                    for (int k = 0; k < c; k++) out[((i * c + k) * r + y) * r + x] = v[((i * r + y) * r + x) * c + k];
        return out;
    }
}
