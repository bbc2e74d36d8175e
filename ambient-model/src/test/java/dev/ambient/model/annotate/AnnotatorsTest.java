package dev.ambient.model.annotate;

import dev.ambient.kernels.Device;
import dev.ambient.model.corrupt.Corrupter;
import dev.ambient.model.corrupt.Corruption;
import dev.ambient.model.data.BadInputException;
import dev.ambient.model.data.ImageDataset;
import dev.ambient.model.data.ProceduralShapes;
import dev.ambient.model.train.ClassifierTrainer;
import dev.ambient.model.unet.EncoderClassifier;
import dev.ambient.model.unet.UNetConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The classifier, crop and quality annotators on small data. */
class AnnotatorsTest {

    static final Device CPU = Device.cpu();

    static UNetConfig small(int resolution) {
        return new UNetConfig(resolution, 3, 0, 16, new int[] {1, 2}, null, null, 1, new int[] {}, 0, 0.5, 0.5, 0.3, 0.3, 256, 64, 8);
    }

    @Test
    void noiseClassifierGivesCorruptedImagesALevelBetweenTheExtremesAndTheSameSeedTheSameResult(@TempDir Path dir) throws IOException {
        ImageDataset clean = ProceduralShapes.generate(256, 16, 3);
        Corrupter.Result r = Corrupter.withCleanFraction(clean, List.of(Corruption.parse("blur1")), 0.5, 3);
        NoiseClassifierAnnotator.Options o = new NoiseClassifierAnnotator.Options(300, 32, -1.2, 1.2,
                ClassifierTrainer.Options.reference(1e-2, 0, 5), 24, 2, 42, 128, false, 5);
        FirstConfusionRule rule = new FirstConfusionRule(NoiseClassifierAnnotator.scaledSpan(24) * 4, 0.05);
        NoiseClassifierAnnotator.Result a;
        try (EncoderClassifier model = new EncoderClassifier(small(16), 1, CPU, 1)) {
            a = NoiseClassifierAnnotator.annotate(model, r.dataset(), r.corruptedMask(), o, rule, System.out::println);
        }
        double[] sigmas = a.sigmas();
        for (int k = 1; k < sigmas.length; k++) assertTrue(sigmas[k] >= sigmas[k - 1], "grid sorted");
        double sum = 0;
        int n = 0;
        for (int i = 0; i < clean.size(); i++) {
            if (!r.corrupted(i)) {
                assertEquals(0, a.sigmaMin()[i]);
                assertEquals(null, a.trajectories()[i]);
                continue;
            }
            assertEquals(24, a.trajectories()[i].length);
            sum += a.sigmaMin()[i];
            n++;
        }
        double mean = sum / n;
        System.out.printf("noise classifier: mean sigma_min %.3f over %d corrupted (grid %.3f .. %.3f)%n", mean, n, sigmas[0], sigmas[23]);
        // a classifier that learned something is sure at low noise and confused at high noise
        double lowP = 0, highP = 0;
        for (int i = 0; i < clean.size(); i++) {
            if (!r.corrupted(i)) continue;
            lowP += Arrays.stream(a.trajectories()[i][0]).average().orElseThrow() / n;
            highP += Arrays.stream(a.trajectories()[i][23]).average().orElseThrow() / n;
        }
        System.out.printf("noise classifier: mean P(corrupted) %.3f at the lowest sigma, %.3f at the highest%n", lowP, highP);
        assertTrue(lowP > 0.7, "P(corrupted) at low noise " + lowP);
        assertTrue(Math.abs(highP - 0.5) < 0.15, "P(corrupted) at high noise " + highP);
        assertTrue(mean > sigmas[0] && mean < sigmas[23], "mean sigma_min " + mean);

        // both file forms resolve to the same levels
        List<String> names = r.dataset().names();
        Path traj = dir.resolve("t").resolve(AnnotationFile.ANNOTATIONS);
        AnnotationFile.write(traj, a.trajectoryAnnotations(names));
        AnnotationFile.writeSigmas(dir.resolve("t").resolve(AnnotationFile.SIGMAS), sigmas);
        AnnotationTable fromTrajectories = AnnotationTable.resolve(AnnotationFile.read(traj), names,
                AnnotationFile.readSigmas(dir.resolve("t").resolve(AnnotationFile.SIGMAS)), rule, CropRule.DEFAULT);
        assertArrayEquals(a.sigmaMin(), fromTrajectories.sigmaMin());
        Path levels = dir.resolve(AnnotationFile.ANNOTATIONS);
        AnnotationFile.write(levels, a.levelAnnotations(names));
        assertArrayEquals(a.sigmaMin(), AnnotationTable.resolve(AnnotationFile.read(levels), names).sigmaMin());

        // deterministic: the trajectories of a few images again, from a network trained the same way
        try (EncoderClassifier again = new EncoderClassifier(small(16), 1, CPU, 1)) {
            NoiseClassifierAnnotator.train(again, r.dataset(), r.corruptedMask(), o, null);
            int[] which = NoiseClassifierAnnotator.indices(r.corruptedMask(), true);
            which = Arrays.copyOf(which, 3);
            double[][][] t = NoiseClassifierAnnotator.trajectories(again, r.dataset(), which, sigmas, 2, 7, o.seed() + 1, null);
            for (int w = 0; w < which.length; w++) {
                for (int k = 0; k < 24; k++) assertArrayEquals(a.trajectories()[which[w]][k], t[w][k], 1e-6, "image " + which[w] + " sigma " + k);
            }
        }
    }

    @Test
    void gridIsSortedSeededLogNormalAndSpanScales() {
        double[] g = NoiseClassifierAnnotator.grid(2048, -1.2, 1.2, 42);
        assertArrayEquals(g, NoiseClassifierAnnotator.grid(2048, -1.2, 1.2, 42));
        for (int k = 1; k < g.length; k++) assertTrue(g[k] >= g[k - 1]);
        double mean = Arrays.stream(g).map(Math::log).average().orElseThrow();
        assertEquals(-1.2, mean, 0.1);
        assertEquals(32, NoiseClassifierAnnotator.scaledSpan(2048));
        assertEquals(4, NoiseClassifierAnnotator.scaledSpan(256));
        assertEquals(1, NoiseClassifierAnnotator.scaledSpan(16));
    }

    @Test
    void cropClassifierFindsThatSmallCropsOfOodImagesLookInDistribution() {
        // target: images with fine vertical stripes everywhere; OOD: the same with one 4x4
        // quadrant flat. Most 4x4 tiles of an OOD image look like the target, the whole image never.
        int n = 64, s = 8, per = s * s * 3;
        byte[] px = new byte[n * per];
        String[] names = new String[n];
        boolean[] ood = new boolean[n];
        java.util.SplittableRandom random = new java.util.SplittableRandom(11);
        for (int i = 0; i < n; i++) {
            ood[i] = i % 2 == 1;
            names[i] = "img" + i + ".png";
            float base = (float) (random.nextDouble() - 0.5) * 0.4f;
            int flat = random.nextInt(4);
            for (int y = 0; y < s; y++)
                for (int x = 0; x < s; x++) {
                    boolean striped = !ood[i] || (y / 4) * 2 + x / 4 != flat;
                    float v = base + (striped ? ((x & 1) == 0 ? 0.6f : -0.6f) : 0f);
                    for (int c = 0; c < 3; c++) px[i * per + (y * s + x) * 3 + c] = ImageDataset.quantize(v);
                }
        }
        ImageDataset data = ImageDataset.of(s, s, 3, px, null, names);
        CropClassifierAnnotator.Options o = new CropClassifierAnnotator.Options(new int[] {4, 8}, 250, 32, -3, 0.5,
                ClassifierTrainer.Options.reference(5e-3, 0, 3), 64, 3);
        UNetConfig config = small(8);
        List<Annotation> out = CropClassifierAnnotator.annotate(() -> new EncoderClassifier(config, 1, CPU, 2), data, ood, o, System.out::println);
        assertEquals(n, out.size());
        double p4 = 0, p8 = 0;
        int count = 0;
        for (int i = 0; i < n; i++) {
            if (!ood[i]) {
                assertEquals(new Annotation.Bounds(names[i], 0, 0), out.get(i));
                continue;
            }
            Annotation.Crops c = (Annotation.Crops) out.get(i);
            assertEquals(4, c.predictions().get(4).length, "a 2x2 grid of 4x4 tiles");
            assertEquals(1, c.predictions().get(8).length, "one 8x8 tile");
            p4 += c.mean(4);
            p8 += c.mean(8);
            count++;
        }
        p4 /= count;
        p8 /= count;
        System.out.printf("crops: mean P(target) of the 4x4 tiles of OOD images %.3f, of the whole OOD images %.3f%n", p4, p8);
        assertTrue(p4 > CropRule.DEFAULT.threshold(), "small tiles of OOD images look like the target: " + p4);
        assertTrue(p8 < 0.25, "the whole OOD image does not: " + p8);
        // the rule then picks patch size 4 (σ_max 0.05) for most OOD images
        CropRule rule = CropRule.DEFAULT;
        int four = 0;
        for (int i = 0; i < n; i++) if (ood[i] && rule.patchSize((Annotation.Crops) out.get(i)) == 4) four++;
        assertTrue(four > count / 2, four + " of " + count + " OOD images get patch size 4");
    }

    @Test
    void cropMaskKeepsOnlyTheWindow() {
        float[] x = new float[4 * 4 * 2];
        Arrays.fill(x, 1f);
        CropClassifierAnnotator.maskOutside(x, 0, 4, 4, 2, 1, 3, 2, 4);
        for (int y = 0; y < 4; y++)
            for (int xx = 0; xx < 4; xx++)
                for (int c = 0; c < 2; c++) {
                    boolean inside = y >= 1 && y < 3 && xx >= 2;
                    assertEquals(inside ? 1f : 0f, x[(y * 4 + xx) * 2 + c], "pixel " + y + "," + xx);
                }
    }

    @Test
    void qualityRankIsTheRealRankNotTheSortPermutation() {
        // the spec's toy: scores [0.1, 0.9, 0.5, 0.7, 0.2], 40 % kept
        double[] q = {0.1, 0.9, 0.5, 0.7, 0.2};
        assertArrayEquals(new int[] {4, 0, 2, 1, 3}, QualityAnnotation.ranks(q, false));
        QualityAnnotation.Scores s = new QualityAnnotation.Scores(List.of("a", "b", "c", "d", "e"), q, new TreeMap<>());
        List<Annotation.Bounds> ours = QualityAnnotation.annotate(s, 0.6, 0.2, QualityAnnotation.LATENT_PATCH_TABLE, true, false);
        assertArrayEquals(new double[] {0.2, 0, 0.2, 0, 0.2}, ours.stream().mapToDouble(Annotation.Bounds::sigmaMin).toArray());
        List<Annotation.Bounds> released = QualityAnnotation.annotate(s, 0.6, 0.2, QualityAnnotation.LATENT_PATCH_TABLE, true, true);
        assertArrayEquals(new double[] {0, 0.2, 0.2, 0.2, 0}, released.stream().mapToDouble(Annotation.Bounds::sigmaMin).toArray(),
                "the released rule keeps images 0 and 4, the two worst");
    }

    @Test
    void patchScoresSetSigmaMaxLargerPatchesOverriding() {
        double[] q = {0.9, 0.1, 0.5, 0.3};
        TreeMap<Integer, double[]> patches = new TreeMap<>(Map.of(
                32, new double[] {0.1, 0.9, 0.8, 0.2},      // best half: 1, 2
                64, new double[] {0.1, 0.2, 0.9, 0.3}));    // best half: 2, 3
        QualityAnnotation.Scores s = new QualityAnnotation.Scores(List.of("a", "b", "c", "d"), q, patches);
        List<Annotation.Bounds> b = QualityAnnotation.annotate(s, 0.5, 0.2, QualityAnnotation.LATENT_PATCH_TABLE, true, false);
        assertArrayEquals(new double[] {0, 0.2, 0, 0.2}, b.stream().mapToDouble(Annotation.Bounds::sigmaMin).toArray());
        assertArrayEquals(new double[] {0, 0.10, 0.175, 0.175}, b.stream().mapToDouble(Annotation.Bounds::sigmaMax).toArray());
        List<Annotation.Bounds> noCrops = QualityAnnotation.annotate(s, 0.5, 0.2, QualityAnnotation.LATENT_PATCH_TABLE, false, false);
        assertTrue(noCrops.stream().allMatch(x -> x.sigmaMax() == 0));
        QualityAnnotation.Scores odd = new QualityAnnotation.Scores(List.of("a"), new double[] {1}, new TreeMap<>(Map.of(5, new double[] {1})));
        assertThrows(IllegalArgumentException.class, () -> QualityAnnotation.annotate(odd, 0.5, 0.2, QualityAnnotation.LATENT_PATCH_TABLE, true, false));
    }

    @Test
    void scoreFilesReadAsJsonLinesAndCsvAndBadLinesAreNamed(@TempDir Path dir) throws IOException {
        Path jsonl = dir.resolve("scores.jsonl");
        Files.writeString(jsonl, """
                {"filename": "a.png", "score": 0.5, "score_32": 0.4}

                {"filename": "b.png", "score": 0.25, "score_32": 0.9}
                """);
        QualityAnnotation.Scores s = QualityAnnotation.read(jsonl);
        assertEquals(List.of("a.png", "b.png"), s.filenames());
        assertArrayEquals(new double[] {0.5, 0.25}, s.score());
        assertArrayEquals(new double[] {0.4, 0.9}, s.patchScores().get(32));
        Path csv = dir.resolve("scores.csv");
        Files.writeString(csv, "filename,score,score_32\na.png,0.5,0.4\nb.png,0.25,0.9\n");
        QualityAnnotation.Scores c = QualityAnnotation.read(csv);
        assertEquals(s.filenames(), c.filenames());
        assertArrayEquals(s.score(), c.score());
        assertArrayEquals(s.patchScores().get(32), c.patchScores().get(32));

        for (String[] bad : new String[][] {
                {"bad.jsonl", "{\"filename\": \"a.png\", \"score\": 0.5}\n{\"filename\": \"b.png\"}\n", ":2"},
                {"bad2.jsonl", "{\"filename\": \"a.png\", \"score\": 0.5}\n{\"filename\": \"a.png\", \"score\": 1}\n", "twice"},
                {"bad3.jsonl", "{\"filename\": \"a.png\", \"score\": 0.5, \"score_32\": 1}\n{\"filename\": \"b.png\", \"score\": 1}\n", "differ"},
                {"bad.csv", "filename,score\na.png,zero\n", ":2"},
                {"bad2.csv", "name,score\na.png,1\n", "header"}}) {
            Path p = dir.resolve(bad[0]);
            Files.writeString(p, bad[1]);
            BadInputException e = assertThrows(BadInputException.class, () -> QualityAnnotation.read(p));
            assertTrue(e.getMessage().contains(bad[0]) && e.getMessage().contains(bad[2]), e.getMessage());
        }
    }
}
