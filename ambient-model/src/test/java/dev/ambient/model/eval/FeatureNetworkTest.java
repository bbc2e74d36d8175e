package dev.ambient.model.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.kernels.Device;
import dev.ambient.model.checkpoint.SafeTensors;
import dev.ambient.model.corrupt.Corrupter;
import dev.ambient.model.corrupt.Corruption;
import dev.ambient.model.data.ImageDataset;
import dev.ambient.model.data.ProceduralShapes;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The feature network learns the built-in classes, and the evaluator built on it ranks a fresh
 * clean set far above a blurred one on every metric; weights survive a save and load.
 */
class FeatureNetworkTest {

    static FeatureNetwork network;
    static ImageDataset reference;
    static Evaluator evaluator;

    @BeforeAll
    static void train() {
        long seed = System.nanoTime();
        System.out.println("random seed " + seed);
        ImageDataset train = ProceduralShapes.generate(4000, 16, seed);
        ImageDataset heldOut = ProceduralShapes.generate(600, 16, seed + 1);
        network = FeatureNetwork.train(train, heldOut, new FeatureNetwork.Options(16, new int[] {1, 2}, 1, 400, 32, 0.01, seed),
                Device.cpu(), "test", s -> {});
        reference = ProceduralShapes.generate(800, 16, seed + 2);
        evaluator = new Evaluator(network, reference);
    }

    @AfterAll
    static void close() {
        network.close();
    }

    @Test
    void learnsTheClassesWellAboveChance() {
        // six classes: chance is 1/6
        assertTrue(network.accuracy() > 0.45, "held-out accuracy " + network.accuracy());
        assertEquals(32, network.dim());
    }

    @Test
    void aFreshCleanSetScoresFarBetterThanABlurredOne() {
        long seed = System.nanoTime();
        ImageDataset fresh = ProceduralShapes.generate(600, 16, seed);
        ImageDataset blurred = Corrupter.withProbability(fresh, List.of(Corruption.parse("blur1")), 1.0, seed).dataset();
        EvaluationReport good = evaluator.evaluate("fresh", pixels(fresh), fresh.size());
        EvaluationReport bad = evaluator.evaluate("blurred", pixels(blurred), blurred.size());
        System.out.print(EvaluationReport.table(List.of(good, bad)));
        assertTrue(good.fdFeat() * 3 < bad.fdFeat(), "FD_feat fresh " + good.fdFeat() + " vs blurred " + bad.fdFeat());
        assertTrue(good.fdPix() < bad.fdPix(), "FD_pix fresh " + good.fdPix() + " vs blurred " + bad.fdPix());
        assertTrue(Math.abs(good.sharpnessRatio() - 1) < 0.15, "sharpness of a fresh set " + good.sharpnessRatio());
        assertTrue(bad.sharpnessRatio() < 0.6, "sharpness of a blurred set " + bad.sharpnessRatio());
        assertTrue(good.precision() > 0.6 && good.recall() > 0.6, "precision/recall of a fresh set " + good.precision() + "/" + good.recall());
        assertTrue(bad.precision() < good.precision(), "precision blurred " + bad.precision() + " vs fresh " + good.precision());
        assertEquals(good, evaluator.evaluate("fresh", pixels(fresh), fresh.size()), "evaluation is deterministic");
    }

    @Test
    void savedWeightsGiveTheSameFeatures(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("features.safetensors");
        network.save(file);
        float[] images = pixels(reference);
        try (FeatureNetwork loaded = FeatureNetwork.load(file, Device.cpu())) {
            assertArrayEquals(network.features(images, reference.size()), loaded.features(images, reference.size()));
            assertEquals(network.accuracy(), loaded.accuracy());
        }
    }

    @Test
    void refusesWhatIsNotAFeatureNetwork(@TempDir Path dir) throws IOException {
        Path other = dir.resolve("other.safetensors");
        SafeTensors.write(other, Map.of("w", new SafeTensors.Tensor(new long[] {2}, new float[] {1, 2})), Map.of());
        IOException e = assertThrows(IOException.class, () -> FeatureNetwork.load(other, Device.cpu()));
        assertTrue(e.getMessage().contains("other.safetensors") && e.getMessage().contains("not a feature network"), e.getMessage());
        IOException missing = assertThrows(IOException.class, () -> FeatureNetwork.load(dir.resolve("none.safetensors"), Device.cpu()));
        assertTrue(missing.getMessage().contains("none.safetensors"), missing.getMessage());
        IllegalArgumentException shape = assertThrows(IllegalArgumentException.class,
                () -> evaluator.evaluate("wrong", new float[10 * 8 * 8 * 3], 10));
        assertTrue(shape.getMessage().contains("10 images"), shape.getMessage());
    }

    static float[] pixels(ImageDataset d) {
        int[] all = new int[d.size()];
        for (int i = 0; i < all.length; i++) all[i] = i;
        float[] x = new float[d.size() * d.imageSize()];
        d.gather(all, x);
        return x;
    }
}
