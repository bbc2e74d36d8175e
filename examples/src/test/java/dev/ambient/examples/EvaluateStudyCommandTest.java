package dev.ambient.examples;

import dev.ambient.model.eval.EvaluationReport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** ./ambient evaluate and ./ambient study end to end at toy sizes: files written, reports readable, a rerun resumes. */
class EvaluateStudyCommandTest {

    @Test
    void evaluateTrainsCachesAndScoresANetworkAndAFolder(@TempDir Path dir) throws Exception {
        StringWriter err = new StringWriter();
        Path features = dir.resolve("features.safetensors");
        assertEquals(0, TrainCommandTest.run(err, "evaluate", "train-features", "--features", features.toString(), "--feature-steps", "20",
                "--feature-images", "200"), err.toString());
        assertTrue(Files.isRegularFile(features));
        Path run = dir.resolve("run");
        assertEquals(0, TrainCommandTest.run(err, "train", "--builtin-images", "64", "--kimg", "0.064", "--checkpoint-kimg", "0.064",
                "--grid-kimg", "0", "--out", run.toString()), err.toString());
        Path snapshot = Demo.newest(run, "network-snapshot-");
        Path json = dir.resolve("report.json");
        assertEquals(0, TrainCommandTest.run(err, "evaluate", "--features", features.toString(), "--reference-images", "100",
                "--network", snapshot.toString(), "--count", "20", "--steps", "2", "--label", "toy", "--json", json.toString()), err.toString());
        EvaluationReport r = EvaluationReport.read(json);
        assertEquals("toy", r.label());
        assertEquals(20, r.generatedCount());
        assertEquals(100, r.referenceCount());
        assertTrue(r.fdFeat() > 0 && r.fdPix() > 0 && r.precision() != null && r.recall() != null && r.sharpnessRatio() > 0, r.toJson());

        err = new StringWriter();
        assertEquals(2, TrainCommandTest.run(err, "evaluate", "--features", features.toString(), "--count", "20"));
        assertTrue(err.toString().contains("--images DIR or --network FILE"), err.toString());
        err = new StringWriter();
        assertEquals(2, TrainCommandTest.run(err, "evaluate", "--features", features.toString(), "--reference-images", "100",
                "--images", dir.resolve("nothing").toString()));
        assertTrue(err.toString().contains("nothing"), err.toString());
    }

    @Test
    void studyWritesASummaryAndResumes(@TempDir Path dir) throws Exception {
        StringWriter err = new StringWriter();
        Path out = dir.resolve("study");
        String[] args = {"study", "--out", out.toString(), "--features", dir.resolve("f.safetensors").toString(), "--feature-steps", "10",
                "--methods", "clean-only,ambient-fixed,target-only", "--seeds", "2", "--kimg", "0.128", "--eval-kimg", "0.064",
                "--eval-images", "8", "--eval-steps", "2", "--builtin-images", "64"};
        assertEquals(0, TrainCommandTest.run(err, args), err.toString());
        List<String> lines = Files.readAllLines(out.resolve("evaluations.jsonl"));
        assertEquals(3 * 2 * 2, lines.size(), "3 methods x 2 seeds x 2 snapshots");
        for (String line : lines) EvaluationReport.fromJson(line);
        String summary = Files.readString(out.resolve("summary.txt"));
        for (String m : List.of("clean-only", "ambient-fixed", "target-only")) assertTrue(summary.contains(m), summary);
        assertTrue(summary.contains("ambient-fixed") && summary.contains("vs clean-only"), summary);
        // the data themselves, scored for scale: 6 of the 64 images stay clean, 58 are blurred
        for (String row : List.of("data: copies of the 6 clean training images", "data: the 58 corrupted training images",
                "data: 8 fresh clean images", "target training images")) {
            assertTrue(summary.contains(row), row + " missing from\n" + summary);
        }
        for (String curve : List.of("curves-fd-feat.png", "curves-fd-pix.png", "curves-recall.png")) assertTrue(Files.size(out.resolve(curve)) > 1000, curve);
        assertTrue(Files.isRegularFile(out.resolve("ambient-fixed/seed1/evaluated")));

        // a second start finds every run done and evaluates nothing again
        assertEquals(0, TrainCommandTest.run(err, args), err.toString());
        assertEquals(lines, Files.readAllLines(out.resolve("evaluations.jsonl")));

        err = new StringWriter();
        assertEquals(2, TrainCommandTest.run(err, "study", "--out", out.toString(), "--methods", "everything"));
        assertTrue(err.toString().contains("unknown method everything"), err.toString());
    }
}
