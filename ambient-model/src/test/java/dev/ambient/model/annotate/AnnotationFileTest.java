package dev.ambient.model.annotate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.model.data.BadInputException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** JSON Lines with the reference's keys: round trip, resolution to bounds, every malformed line. */
class AnnotationFileTest {

    @TempDir Path tmp;

    static SplittableRandom freshRandom() {
        long seed = System.nanoTime();
        System.out.println("random seed " + seed);
        return new SplittableRandom(seed);
    }

    @Test
    void everyFormRoundTripsExactly() throws IOException {
        SplittableRandom random = freshRandom();
        List<Annotation> written = new ArrayList<>();
        for (int i = 0; i < 40; i++) {
            String name = String.format("img%08d.png", i);
            written.add(switch (i % 5) {
                case 0 -> new Annotation.Level(name, random.nextDouble(0, 5));
                case 1 -> new Annotation.Level(name, random.nextDouble(0, 5), true);
                case 2 -> new Annotation.Bounds(name, random.nextDouble(0, 5), random.nextDouble(0, 1));
                case 3 -> {
                    double[][] p = new double[3 + random.nextInt(5)][4];
                    for (double[] row : p) for (int t = 0; t < row.length; t++) row[t] = random.nextDouble();
                    yield new Annotation.Trajectory(name, p);
                }
                default -> {
                    TreeMap<Integer, double[]> m = new TreeMap<>();
                    for (int size : new int[] {4, 8, 16, 24}) m.put(size, random.doubles(1 + random.nextInt(9), 0, 1).toArray());
                    yield new Annotation.Crops(name, m);
                }
            });
        }
        Path file = tmp.resolve(AnnotationFile.ANNOTATIONS);
        AnnotationFile.write(file, written);
        AnnotationFile read = AnnotationFile.read(file);
        assertEquals(written, read.annotations());
        for (int k = 0; k < written.size(); k++) assertEquals(k + 1, read.lineOf(k));
        String text = Files.readString(file);
        for (String key : List.of("\"filename\"", "\"annotation\"", "\"sigma\"", "\"sigma_min\"", "\"sigma_max\"", "\"probabilities\"", "\"crop_predictions_16\"")) {
            assertTrue(text.contains(key), key);
        }
        double[] sigmas = random.doubles(50, 0.002, 80).toArray();
        AnnotationFile.writeSigmas(tmp.resolve(AnnotationFile.SIGMAS), sigmas);
        java.util.Arrays.sort(sigmas);
        assertArrayEquals(sigmas, AnnotationFile.readSigmas(tmp.resolve(AnnotationFile.SIGMAS)));
    }

    @Test
    void readsTheReferencesLinesAsItsTrainingLoopDoes() throws IOException {
        Path file = tmp.resolve("annotations.jsonl");
        Files.writeString(file, """
                {"filename": "img00000000.png", "annotation": 1.5}
                {"filename": "img00000001.png", "sigma": 0.25, "extra": "ignored"}
                {"filename": "img00000002.png", "sigma_min": 1.89, "sigma_max": 0}

                {"filename": "img00000003.png", "crop_predictions_4": [0.9, 0.8], "crop_predictions_8": [0.3, 0.2], "crop_predictions_16": [0.1]}
                {"filename": "img00000004.png", "probabilities": [[0.9, 0.9], [0.8, 0.8], [0.2, 0.4], [0.1, 0.1]]}
                """);
        Files.writeString(tmp.resolve("sigmas.txt"), "4.0\n0.5\n2.0\n1.0\n");
        AnnotationFile f = AnnotationFile.read(file);
        assertEquals(6, f.lineOf(4), "blank lines count for line numbers");
        List<String> names = new ArrayList<>();
        for (int i = 0; i < 7; i++) names.add(String.format("%05d/img%08d.png", i / 1000, i));
        AnnotationTable t = AnnotationTable.resolve(f, names);
        assertArrayEquals(new double[] {1.5, 0.25, 1.89, 300, 0, 0, 0}, new double[] {t.sigmaMin()[0], t.sigmaMin()[1], t.sigmaMin()[2],
                t.sigmaMin()[3], 0, t.sigmaMin()[5], t.sigmaMin()[6]});
        assertEquals(0.05, t.sigmaMax()[3], "patch 4 has mean 0.85; patch 8 has 0.25, which does not exceed 0.25");
        // trajectory: means 0.9, 0.8, 0.3, 0.1 with span 32 (alpha 2/33): s drops below 0.55 only late; with
        // the grid sorted to 0.5, 1, 2, 4 none qualifies, so sigma_min is the largest grid value
        assertEquals(4.0, t.sigmaMin()[4]);
        assertEquals(5, t.annotated());
        assertEquals(0, t.sigmaMin()[6], "unannotated samples are clean");
    }

    @Test
    void firstConfusionRuleOnASyntheticTrajectoryWithAKnownAnswer() {
        SplittableRandom random = freshRandom();
        int k = 200;
        double[] sigmas = new double[k];
        for (int i = 0; i < k; i++) sigmas[i] = Math.exp(-3 + 6.0 * i / (k - 1));
        // a step: certain the image is corrupted (1.0) up to index j, then confused (0.5): the EMA from 1 decays as
        // (1 - a)^m toward 0.5, so it passes 0.5 + eps at m = ceil(ln(eps / 0.5) / ln(1 - a)) steps after the step
        int j = 20 + random.nextInt(100);
        double span = 4 + random.nextInt(40), eps = 0.02 + random.nextDouble(0.08);
        double[][] p = new double[k][3];
        for (int i = 0; i < k; i++) java.util.Arrays.fill(p[i], i <= j ? 1.0 : 0.5);
        double alpha = 2 / (span + 1);
        int m = (int) Math.ceil(Math.log(eps / 0.5) / Math.log(1 - alpha));
        // guard against landing exactly on the boundary in floating point
        if (Math.abs(0.5 + 0.5 * Math.pow(1 - alpha, m) - (0.5 + eps)) < 1e-9) eps += 1e-6;
        m = (int) Math.ceil(Math.log(eps / 0.5) / Math.log(1 - alpha));
        var rule = new FirstConfusionRule(span, eps);
        double want = j + m < k ? sigmas[j + m] : sigmas[k - 1];
        assertEquals(want, rule.sigmaMin(new Annotation.Trajectory("x", p), sigmas));
        // never confused: the largest sigma
        double[][] sure = new double[k][2];
        for (double[] row : sure) java.util.Arrays.fill(row, 0.99);
        assertEquals(sigmas[k - 1], rule.sigmaMin(new Annotation.Trajectory("x", sure), sigmas));
        // confused from the start: the smallest sigma
        double[][] none = new double[k][2];
        assertEquals(sigmas[0], rule.sigmaMin(new Annotation.Trajectory("x", none), sigmas));
        assertThrows(IllegalArgumentException.class, () -> rule.sigmaMin(new Annotation.Trajectory("x", none), new double[3]));
    }

    @Test
    void cropRulePicksTheLargestConfidentPatch() {
        TreeMap<Integer, double[]> m = new TreeMap<>();
        m.put(4, new double[] {0.9, 0.7});
        m.put(8, new double[] {0.6, 0.1});
        m.put(16, new double[] {0.2, 0.2});
        var crops = new Annotation.Crops("x", m);
        assertEquals(8, CropRule.DEFAULT.patchSize(crops));
        assertEquals(0.15, CropRule.DEFAULT.sigmaMax(crops));
        m.replaceAll((size, p) -> new double[] {0.1});
        assertEquals(0.01, CropRule.DEFAULT.sigmaMax(new Annotation.Crops("x", m)), "no confident patch: size 1");
        TreeMap<Integer, double[]> odd = new TreeMap<>();
        odd.put(12, new double[] {0.9});
        assertThrows(IllegalArgumentException.class, () -> CropRule.DEFAULT.sigmaMax(new Annotation.Crops("x", odd)));
    }

    @Test
    void everyMalformedLineIsReportedWithFileAndLine() throws IOException {
        String[][] cases = {
                {"{\"filename\": \"a.png\", \"annotation\": 1", "not valid JSON"},
                {"[1, 2]", "expected a JSON object"},
                {"{\"annotation\": 1.0}", "\"filename\""},
                {"{\"filename\": \"a.png\"}", "no annotation key"},
                {"{\"filename\": \"a.png\", \"annotation\": -0.5}", "non-negative"},
                {"{\"filename\": \"a.png\", \"sigma\": \"big\"}", "must be a number"},
                {"{\"filename\": \"a.png\", \"sigma_min\": 1.0}", "must come together"},
                {"{\"filename\": \"a.png\", \"sigma_min\": 1.0, \"sigma_max\": -1}", "sigma_max"},
                {"{\"filename\": \"a.png\", \"probabilities\": [[0.5, 0.2], [0.1]]}", "row 1"},
                {"{\"filename\": \"a.png\", \"probabilities\": [[1.5]]}", "not a probability"},
                {"{\"filename\": \"a.png\", \"crop_predictions_x\": [0.5]}", "patch size"},
                {"{\"filename\": \"a.png\", \"crop_predictions_8\": []}", "empty"},
        };
        Path file = tmp.resolve("bad.jsonl");
        for (String[] c : cases) {
            Files.writeString(file, "{\"filename\": \"ok.png\", \"annotation\": 0}\n\n" + c[0] + "\n");
            var e = assertThrows(BadInputException.class, () -> AnnotationFile.read(file), c[0]);
            assertEquals(3, e.line(), e.getMessage());
            assertTrue(e.getMessage().contains("bad.jsonl:3") && e.getMessage().contains(c[1]), e.getMessage());
        }
        Files.writeString(file, "{\"filename\": \"a.png\", \"annotation\": 0}\nnot json\n{\"filename\": \"a.png\", \"annotation\": 1}\n");
        var e = assertThrows(BadInputException.class, () -> AnnotationFile.read(file));
        assertEquals(2, e.line());
        assertEquals(1, e.getSuppressed().length, "the second bad line is attached");
        assertTrue(e.getSuppressed()[0].getMessage().contains("bad.jsonl:3") && e.getSuppressed()[0].getMessage().contains("twice"));

        Files.writeString(tmp.resolve("sigmas.txt"), "0.5\nlarge\n");
        var s = assertThrows(BadInputException.class, () -> AnnotationFile.readSigmas(tmp.resolve("sigmas.txt")));
        assertTrue(s.getMessage().contains("sigmas.txt:2"), s.getMessage());
        Files.writeString(tmp.resolve("sigmas.txt"), "0.5\n-1\n");
        assertThrows(BadInputException.class, () -> AnnotationFile.readSigmas(tmp.resolve("sigmas.txt")));
    }

    @Test
    void unknownOrAmbiguousFilesAreErrorsNamingTheLine() throws IOException {
        Path file = tmp.resolve("annotations.jsonl");
        List<String> names = List.of("00000/img00000000.png", "00000/img00000001.png", "cats/x.png", "dogs/x.png");
        Files.writeString(file, "{\"filename\": \"img00000000.png\", \"annotation\": 1}\n{\"filename\": \"nope.png\", \"annotation\": 1}\n");
        var e = assertThrows(BadInputException.class, () -> AnnotationTable.resolve(AnnotationFile.read(file), names));
        assertTrue(e.getMessage().contains(":2") && e.getMessage().contains("nope.png"), e.getMessage());
        Files.writeString(file, "{\"filename\": \"x.png\", \"annotation\": 1}\n");
        var a = assertThrows(BadInputException.class, () -> AnnotationTable.resolve(AnnotationFile.read(file), names));
        assertTrue(a.getMessage().contains("several"), a.getMessage());
        Files.writeString(file, "{\"filename\": \"img00000001.png\", \"annotation\": 1}\n{\"filename\": \"00000/img00000001.png\", \"annotation\": 2}\n");
        var d = assertThrows(BadInputException.class, () -> AnnotationTable.resolve(AnnotationFile.read(file), names));
        assertTrue(d.getMessage().contains("already annotated on line 1"), d.getMessage());
        Files.writeString(file, "{\"filename\": \"cats/x.png\", \"probabilities\": [[0.5]]}\n");
        var g = assertThrows(BadInputException.class, () -> AnnotationTable.resolve(AnnotationFile.read(file), names));
        assertTrue(g.getMessage().contains("sigmas.txt"), g.getMessage());
    }

    @Test
    void fixedAnnotationGivesOneLevelToEveryCorruptedSample() throws IOException {
        SplittableRandom random = freshRandom();
        int n = 50;
        List<String> names = new ArrayList<>();
        boolean[] corrupted = new boolean[n];
        for (int i = 0; i < n; i++) {
            names.add(String.format("%05d/img%08d.png", 0, i));
            corrupted[i] = random.nextDouble() < 0.9;
        }
        var lines = FixedAnnotation.annotate(names, corrupted, FixedAnnotation.SIGMA_MIN_BLUR_0_8, 0);
        Path file = tmp.resolve("annotations.jsonl");
        AnnotationFile.write(file, lines);
        AnnotationTable t = AnnotationTable.resolve(AnnotationFile.read(file), names);
        AnnotationTable direct = FixedAnnotation.table(corrupted, 1.89, 0);
        for (int i = 0; i < n; i++) {
            assertEquals(corrupted[i] ? 1.89 : 0, t.sigmaMin()[i]);
            assertEquals(0, t.sigmaMax()[i]);
            assertEquals(t.sigmaMin()[i], direct.sigmaMin()[i]);
        }
        assertThrows(IllegalArgumentException.class, () -> FixedAnnotation.annotate(names, corrupted, -1, 0));
    }
}
