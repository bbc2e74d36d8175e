package dev.ambient.model.train;

import dev.ambient.kernels.Device;
import dev.ambient.model.data.ImageDataset;
import dev.ambient.model.unet.Edm2Model;
import dev.ambient.model.unet.UNetConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TrainingRunTest {

    static final UNetConfig TINY = new UNetConfig(8, 3, 3, 8, new int[] {1, 2}, null, null, 1, new int[] {4}, 0.1,
            0.5, 0.5, 0.3, 0.3, 256, 4, 8);

    static ImageDataset dataset(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int n = 16;
        byte[] pixels = new byte[n * 8 * 8 * 3];
        for (int i = 0; i < pixels.length; i++) pixels[i] = (byte) r.nextInt(256);
        int[] labels = new int[n];
        String[] names = new String[n];
        for (int i = 0; i < n; i++) {
            labels[i] = i % 3;
            names[i] = "img" + i + ".png";
        }
        return ImageDataset.of(8, 8, 3, pixels, labels, names);
    }

    /** Trains {@code images} images from a fresh start or from dir's latest state; returns the final weights and EMA. */
    static float[][] train(ImageDataset data, long seed, Path dir, long images, boolean resume) throws IOException {
        double[] sigmaMin = new double[data.size()], sigmaMax = new double[data.size()];
        for (int i = 8; i < data.size(); i++) sigmaMin[i] = 0.5; // half the samples corrupted, used at sigma > b * 0.5
        Trainer.Options options = new Trainer.Options(new LearningRateSchedule(0.01, 0, 0), 0.9f, 0.99f, 1e-8f, 1f,
                List.of(EmaSchedule.powerFunction(0.1)), true, seed);
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        try (Edm2Model model = new Edm2Model(TINY, Device.cpu(), seed); Trainer trainer = new Trainer(model, options)) {
            SigmaFirstSampler sampler = new SigmaFirstSampler(sigmaMin, sigmaMax, SigmaFirstSampler.Config.edm(), seed);
            TrainingRun run = new TrainingRun(data, trainer, sampler, new TrainingRun.Settings(4, images, 8, 0, 4, 3, 0), dir,
                    new PrintStream(log, true));
            if (resume) run.resume(TrainingRun.latestState(dir));
            TrainingRun.Summary summary = run.run();
            assertEquals(images, summary.imagesSeen());
            return new float[][] {model.parameters().values().toArray(), trainer.ema(0).toArray()};
        }
    }

    @Test
    void stoppingAndResumingGivesTheSameWeightsAsOneRun(@TempDir Path dir) throws IOException {
        long seed = System.nanoTime();
        System.out.println("TrainingRunTest seed " + seed);
        ImageDataset data = dataset(seed);
        float[][] straight = train(data, seed, dir.resolve("straight"), 24, false);
        train(data, seed, dir.resolve("halves"), 12, false);
        float[][] resumed = train(data, seed, dir.resolve("halves"), 24, true);
        assertArrayEquals(straight[0], resumed[0], "weights");
        assertArrayEquals(straight[1], resumed[1], "EMA");

        List<String> stats = Files.readAllLines(dir.resolve("straight/stats.jsonl"));
        assertEquals(6, stats.size());
        assertTrue(stats.get(0).contains("\"loss_by_sigma\""), stats.get(0));
        // points that are not whole kimg are told apart by their images after the dot
        assertEquals(dir.resolve("halves/training-state-000000.024.safetensors"), TrainingRun.latestState(dir.resolve("halves")));
        // states every 8 images and at 12 (the first half's end): the two newest are kept
        assertTrue(Files.exists(dir.resolve("halves/training-state-000000.016.safetensors")));
        assertFalse(Files.exists(dir.resolve("halves/training-state-000000.012.safetensors")));
        assertTrue(Files.exists(dir.resolve("straight/samples-000000.024.png")));
        assertTrue(Files.exists(dir.resolve("straight/network-snapshot-000000.024-ema0.safetensors")));
    }

    @Test
    void lossBucketsSplitByNoiseLevel() {
        var means = TrainingRun.bucketMeans(new double[] {1, 3, 10, 20}, new double[] {0.05, 0.07, 1, 50});
        assertEquals(2.0, means.get("<0.1"));
        assertEquals(10.0, means.get("0.5-2"));
        assertEquals(20.0, means.get(">=10"));
        assertEquals(3, means.size());
    }
}
