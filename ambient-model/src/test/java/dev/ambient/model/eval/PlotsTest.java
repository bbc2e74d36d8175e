package dev.ambient.model.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.model.annotate.Annotation;
import dev.ambient.model.annotate.FirstConfusionRule;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.function.Executable;

/** Each figure is written, decodes as a PNG of the asked size with its series drawn, and bad input is refused before any file. */
class PlotsTest {

    @TempDir Path dir;

    static SplittableRandom freshRandom() {
        long seed = System.nanoTime();
        System.out.println("random seed " + seed);
        return new SplittableRandom(seed);
    }

    static BufferedImage readPng(Path file, int width, int height) throws IOException {
        assertTrue(Files.isRegularFile(file), file + " was not written");
        BufferedImage img = ImageIO.read(file.toFile());
        assertNotNull(img, file + " is not an image ImageIO can read");
        assertEquals(width, img.getWidth());
        assertEquals(height, img.getHeight());
        return img;
    }

    /** Pixels within a small distance of an RGB colour: the series' own colour is on the image. */
    static int pixelsNear(BufferedImage img, int rgb) {
        int n = 0;
        for (int y = 0; y < img.getHeight(); y++) for (int x = 0; x < img.getWidth(); x++) {
            int p = img.getRGB(x, y);
            int d = Math.abs(((p >> 16) & 255) - ((rgb >> 16) & 255)) + Math.abs(((p >> 8) & 255) - ((rgb >> 8) & 255)) + Math.abs((p & 255) - (rgb & 255));
            if (d < 24) n++;
        }
        return n;
    }

    @Test
    void theClassRunsAwtHeadlessUnlessToldOtherwise() throws IOException {
        String before = System.getProperty("java.awt.headless");
        Plots.histogram(dir.resolve("h.png"), "t", "x", new double[] {1, 2, 3}, 3, false);
        // surefire sets nothing, so loading Plots set it; a value given on the command line is kept
        assertEquals(before == null ? "true" : before, System.getProperty("java.awt.headless"));
    }

    @Test
    void metricCurvesAreDrawnPerSeries() throws IOException {
        SplittableRandom random = freshRandom();
        List<Plots.Series> series = new ArrayList<>();
        List<String> methods = List.of("clean only", "all as clean", "ambient-o fixed");
        for (int s = 0; s < methods.size(); s++) {
            int n = 3 + random.nextInt(10);
            double[] x = new double[n], y = new double[n];
            // apart by more than the line width: the series drawn first must not be hidden under the others
            for (int i = 0; i < n; i++) {
                x[i] = (i + 1) * 64_000.0;
                y[i] = 10 + 20 * s + 50 * Math.exp(-i / 3.0) + random.nextDouble();
            }
            series.add(new Plots.Series(methods.get(s), x, y));
        }
        Path file = dir.resolve("sub/fd.png");
        Plots.lineChart(file, "FD_feat against training images", "training images seen", "FD_feat", series);
        BufferedImage img = readPng(file, Plots.DEFAULT_WIDTH, Plots.DEFAULT_HEIGHT);
        assertTrue(pixelsNear(img, 0x1f77b4) > 50, "first series' colour is drawn");
        assertTrue(pixelsNear(img, 0xd62728) > 50, "second series' colour is drawn");
        assertTrue(pixelsNear(img, 0x2ca02c) > 50, "third series' colour is drawn");
        Path log = dir.resolve("fd-log.png");
        Plots.lineChart(log, "log", "images", "FD", series, true, 640, 400);
        readPng(log, 640, 400);
        try (var files = Files.list(dir)) {
            assertFalse(files.anyMatch(f -> f.toString().endsWith(".tmp")), "no temporary file is left");
        }
    }

    @Test
    void trajectoriesAreDrawnOnALogSigmaAxisWithTheirSigmaMin() throws IOException {
        SplittableRandom random = freshRandom();
        double[] sigmas = new double[40];
        for (int k = 0; k < sigmas.length; k++) sigmas[k] = 0.002 * Math.pow(80 / 0.002, k / 39.0);
        List<Annotation.Trajectory> records = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
            double centre = Math.log(sigmas[5 + random.nextInt(30)]);
            double[][] p = new double[sigmas.length][3];
            // confident at low noise, confused (0.5) at high noise, with trial noise
            for (int k = 0; k < sigmas.length; k++) for (int i = 0; i < 3; i++) {
                double v = 0.5 + 0.5 / (1 + Math.exp(2 * (Math.log(sigmas[k]) - centre))) + random.nextDouble(-0.03, 0.03);
                p[k][i] = Math.min(1, Math.max(0, v));
            }
            records.add(new Annotation.Trajectory("img" + t + ".png", p));
        }
        List<Plots.Trajectory> trajectories = Plots.trajectories(records, sigmas, FirstConfusionRule.DEFAULT);
        for (int t = 0; t < records.size(); t++) {
            assertEquals(FirstConfusionRule.DEFAULT.sigmaMin(records.get(t), sigmas), trajectories.get(t).sigmaMin());
            assertEquals(records.get(t).mean(7), trajectories.get(t).probabilities()[7]);
        }
        Path file = dir.resolve("trajectories.png");
        Plots.trajectoryChart(file, "noise classifier", trajectories, 800, 500);
        BufferedImage img = readPng(file, 800, 500);
        assertTrue(pixelsNear(img, 0x1f77b4) > 50 && pixelsNear(img, 0xff7f0e) > 50, "series colours are drawn");
    }

    @Test
    void histogramsOnLinearAndLogAxes() throws IOException {
        SplittableRandom random = freshRandom();
        double[] sigmaMin = new double[500];
        for (int i = 0; i < sigmaMin.length; i++) sigmaMin[i] = i < 50 ? 0 : Math.exp(random.nextDouble(-3, 2));
        Path lin = dir.resolve("lin.png"), log = dir.resolve("log.png"), one = dir.resolve("one.png");
        Plots.histogram(lin, "annotations", "sigma_min", sigmaMin, 30, false);
        Plots.histogram(log, "annotations", "sigma_min", sigmaMin, 30, true, 700, 450);
        double[] fixed = new double[100];
        java.util.Arrays.fill(fixed, 1.5); // the fixed annotation: one value
        Plots.histogram(one, "fixed", "sigma_min", fixed, 10, true);
        assertTrue(pixelsNear(readPng(lin, Plots.DEFAULT_WIDTH, Plots.DEFAULT_HEIGHT), 0x1f77b4) > 500);
        assertTrue(pixelsNear(readPng(log, 700, 450), 0x1f77b4) > 500);
        assertTrue(pixelsNear(readPng(one, Plots.DEFAULT_WIDTH, Plots.DEFAULT_HEIGHT), 0x1f77b4) > 500);
    }

    @Test
    void badInputsAreRefusedBeforeAnyFileIsWritten() {
        Path file = dir.resolve("bad.png");
        double[] x = {1, 2, 3};
        List<Executable> cases = List.of(
                () -> new Plots.Series("a", x, new double[] {1, 2}),
                () -> new Plots.Series("a", new double[0], new double[0]),
                () -> new Plots.Series("a", x, new double[] {1, Double.NaN, 3}),
                () -> Plots.lineChart(file, "t", "x", "y", List.of()),
                () -> Plots.lineChart(file, "t", "x", "y", List.of(new Plots.Series("a", x, x), new Plots.Series("a", x, x))),
                () -> Plots.lineChart(file, "t", "x", "y", List.of(new Plots.Series("a", x, new double[] {1, 0, 2})), true, 400, 300),
                () -> Plots.lineChart(file, "t", "x", "y", List.of(new Plots.Series("a", x, x)), false, 10, 300),
                () -> new Plots.Trajectory("t", new double[] {0, 1}, new double[] {0.9, 0.5}, 1),
                () -> new Plots.Trajectory("t", new double[] {1, 2}, new double[] {0.9, 1.5}, 1),
                () -> new Plots.Trajectory("t", new double[] {1, 2}, new double[] {0.9, 0.5}, 0),
                () -> new Plots.Trajectory("t", new double[] {1, 2}, new double[] {0.9}, 1),
                () -> Plots.trajectoryChart(file, "t", List.of()),
                () -> Plots.histogram(file, "t", "x", new double[0], 10, false),
                () -> Plots.histogram(file, "t", "x", x, 0, false),
                () -> Plots.histogram(file, "t", "x", new double[] {0, 0, -1}, 10, true),
                () -> Plots.histogram(file, "t", "x", new double[] {1, Double.POSITIVE_INFINITY}, 10, false));
        for (int i = 0; i < cases.size(); i++) {
            var e = assertThrows(IllegalArgumentException.class, cases.get(i), "case " + i);
            assertNotNull(e.getMessage(), "case " + i);
            System.out.println("case " + i + ": " + e.getMessage());
        }
        assertFalse(Files.exists(file));
    }
}
