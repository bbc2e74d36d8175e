package dev.ambient.examples;

import dev.ambient.model.annotate.Annotation;
import dev.ambient.model.annotate.AnnotationFile;
import dev.ambient.model.data.ProceduralShapes;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AnnotateCommandTest {

    static final String[] DATA = {"--resolution", "8", "--builtin-images", "48"};
    static final String[] CLS = {"--cls-channels", "8", "--cls-steps", "4", "--cls-batch", "8", "--eval-batch", "32"};

    static int run(StringWriter err, Path out, String command, String... extra) {
        List<String> a = new java.util.ArrayList<>(List.of("annotate", command, "--out", out.toString()));
        a.addAll(List.of(DATA));
        a.addAll(List.of(extra));
        return TrainCommandTest.run(err, a.toArray(String[]::new));
    }

    static String[] with(String[] a, String... b) {
        String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    @Test
    void everyMethodWritesAFileThatTrainReads(@TempDir Path dir) throws Exception {
        StringWriter err = new StringWriter();
        assertEquals(0, run(err, dir.resolve("fixed"), "fixed", "--corrupt", "blur0-8", "--sigma-min", "1.5"), err.toString());
        List<Annotation> fixed = AnnotationFile.read(dir.resolve("fixed/annotations.jsonl")).annotations();
        assertEquals(48, fixed.size());
        assertTrue(fixed.stream().anyMatch(a -> a.equals(new Annotation.Bounds(a.filename(), 1.5, 0))));

        assertEquals(0, run(err, dir.resolve("cls"), "classifier", with(CLS, "--corrupt", "blur0-8", "--num-sigmas", "8", "--trials", "2",
                "--form", "probabilities")), err.toString());
        assertTrue(Files.exists(dir.resolve("cls/sigmas.txt")));
        assertTrue(AnnotationFile.read(dir.resolve("cls/annotations.jsonl")).annotations().stream().anyMatch(a -> a instanceof Annotation.Trajectory));
        assertEquals(0, run(err, dir.resolve("cls2"), "classifier", with(CLS, "--corrupt", "blur0-8", "--num-sigmas", "8", "--trials", "1",
                "--train-on", "annotated")), err.toString());

        assertEquals(0, run(err, dir.resolve("crops"), "crops", with(CLS, "--ood-classes", "4,5")), err.toString());
        assertTrue(AnnotationFile.read(dir.resolve("crops/annotations.jsonl")).annotations().stream().anyMatch(a -> a instanceof Annotation.Crops));

        StringBuilder scores = new StringBuilder("filename,score,score_4\n");
        var names = ProceduralShapes.generate(48, 8, 0).names();
        for (int i = 0; i < names.size(); i++) scores.append(names.get(i)).append(',').append(i * 0.1).append(',').append(1 - i * 0.01).append('\n');
        Files.writeString(dir.resolve("scores.csv"), scores);
        assertEquals(0, run(err, dir.resolve("q"), "quality", "--scores", dir.resolve("scores.csv").toString(), "--bad-fraction", "0.5",
                "--table", "pixel"), err.toString());
        List<Annotation> q = AnnotationFile.read(dir.resolve("q/annotations.jsonl")).annotations();
        // the highest scores are the last names: they keep sigma_min 0; the first names have the best patch scores
        assertEquals(new Annotation.Bounds(names.get(47), 0, 0), q.get(47));
        assertEquals(new Annotation.Bounds(names.get(0), 0.2, 0.05), q.get(0));
    }

    @Test
    void badInputIsOneClearLine(@TempDir Path dir) throws Exception {
        StringWriter err = new StringWriter();
        assertEquals(2, run(err, dir.resolve("a"), "classifier", "--cls-steps", "1"));
        assertTrue(err.toString().contains("needs corrupted samples"), err.toString());
        err = new StringWriter();
        Files.writeString(dir.resolve("s.jsonl"), "{\"filename\": \"nope.png\", \"score\": 1}\n");
        assertEquals(2, run(err, dir.resolve("b"), "quality", "--scores", dir.resolve("s.jsonl").toString()));
        assertTrue(err.toString().contains("1 images, the dataset has 48"), err.toString());
        err = new StringWriter();
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < 48; i++) s.append("{\"filename\": \"x").append(i).append(".png\", \"score\": 1}\n");
        Files.writeString(dir.resolve("s2.jsonl"), s);
        assertEquals(2, run(err, dir.resolve("c"), "quality", "--scores", dir.resolve("s2.jsonl").toString()));
        assertTrue(err.toString().contains("x0.png, which is not in the dataset"), err.toString());
    }
}
