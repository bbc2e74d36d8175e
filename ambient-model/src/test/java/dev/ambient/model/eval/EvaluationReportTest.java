package dev.ambient.model.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ambient.model.data.BadInputException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The report's JSON round trip, its checks, and the tables. */
class EvaluationReportTest {

    @TempDir Path dir;

    static SplittableRandom freshRandom() {
        long seed = System.nanoTime();
        System.out.println("random seed " + seed);
        return new SplittableRandom(seed);
    }

    static EvaluationReport random(SplittableRandom r, String label) {
        return EvaluationReport.of(label, 1000 + r.nextInt(1000), 5000)
                .withSeed(r.nextLong())
                .withTrainingImages(r.nextLong(1, 10_000_000))
                .withFdFeat(r.nextDouble(0, 100), r.nextDouble(0.5, 1))
                .withFdPix(r.nextDouble(0, 1))
                .withPrecisionRecall(new PrecisionRecall.Result(r.nextDouble(), r.nextDouble(), 3, 5000, 1000))
                .withSharpnessRatio(r.nextDouble(0.2, 1.5));
    }

    @Test
    void jsonRoundTripsAndLeavesOutWhatWasNotMeasured() throws IOException {
        SplittableRandom random = freshRandom();
        EvaluationReport full = random(random, "ambient-fixed");
        Path file = dir.resolve("out/report.json");
        full.write(file);
        assertEquals(full, EvaluationReport.read(file));
        JsonNode node = new ObjectMapper().readTree(Files.readString(file));
        assertEquals(full.fdFeat(), node.get("fdFeat").asDouble());
        assertEquals(3, node.get("k").asInt());

        EvaluationReport partial = EvaluationReport.of("folder", 200, 300).withFdPix(0.125);
        JsonNode p = new ObjectMapper().readTree(partial.toJson());
        assertFalse(p.has("fdFeat"), partial.toJson());
        assertFalse(p.has("seed"));
        assertEquals(0.125, p.get("fdPix").asDouble());
        assertEquals(partial, EvaluationReport.fromJson(partial.toJson()));
    }

    @Test
    void tablesShowEveryReportAndMeanAndSpreadPerLabel() {
        EvaluationReport a = EvaluationReport.of("clean-only", 100, 200).withFdFeat(10, 0.9).withSeed(1);
        EvaluationReport b = EvaluationReport.of("clean-only", 100, 200).withFdFeat(14, 0.9).withSeed(2);
        EvaluationReport c = EvaluationReport.of("ambient-o", 100, 200).withFdFeat(7.5, 0.9).withFdPix(0.01).withSeed(1);
        String table = EvaluationReport.table(List.of(a, b, c));
        System.out.print(table);
        String[] lines = table.split("\n");
        assertEquals(5, lines.length, "header, rule, three rows");
        assertTrue(lines[0].startsWith("label") && lines[0].contains("FD_feat") && lines[0].contains("recall"));
        assertTrue(lines[2].startsWith("clean-only") && lines[2].contains("10.000"), lines[2]);
        assertTrue(lines[4].contains("7.500") && lines[4].contains("0.0100"), lines[4]);
        assertTrue(lines[2].contains(" - "), "an unmeasured metric shows as -");
        assertEquals(a.toTable().split("\n")[2].trim(), EvaluationReport.table(List.of(a)).split("\n")[2].trim());

        String summary = EvaluationReport.summaryTable(List.of(a, b, c));
        System.out.print(summary);
        String[] s = summary.split("\n");
        assertEquals(4, s.length);
        // mean 12, sample standard deviation sqrt(((10-12)^2 + (14-12)^2) / 1) = 2.828
        assertTrue(s[2].startsWith("clean-only") && s[2].contains("12.000 ± 2.828"), s[2]);
        assertTrue(s[3].startsWith("ambient-o") && s[3].contains("7.500") && !s[3].contains("±"), s[3]);
    }

    @Test
    void impossibleValuesAreRefused() throws IOException {
        assertThrows(IllegalArgumentException.class, () -> EvaluationReport.of(" ", 1, 1));
        assertThrows(IllegalArgumentException.class, () -> EvaluationReport.of("x", -1, 1));
        assertThrows(IllegalArgumentException.class, () -> EvaluationReport.of("x", 1, 1).withFdFeat(-0.5, 0.9));
        assertThrows(IllegalArgumentException.class, () -> EvaluationReport.of("x", 1, 1).withFdPix(Double.NaN));
        assertThrows(IllegalArgumentException.class, () -> EvaluationReport.of("x", 1, 1).withFdFeat(1, 1.5));
        assertThrows(IllegalArgumentException.class, () -> EvaluationReport.of("x", 1, 1).withPrecisionRecall(new PrecisionRecall.Result(1.2, 0.5, 3, 10, 10)));
        Path bad = dir.resolve("bad.json");
        Files.writeString(bad, "{\"label\": \"x\", \"precision\": 2.0}");
        var e = assertThrows(BadInputException.class, () -> EvaluationReport.read(bad));
        assertTrue(e.getMessage().contains("bad.json") && e.getMessage().contains("precision"), e.getMessage());
        Files.writeString(bad, "{\"label\": \"x\", \"fid\": 2.0}");
        var f = assertThrows(BadInputException.class, () -> EvaluationReport.read(bad));
        assertTrue(f.getMessage().contains("fid"), f.getMessage());
        Files.writeString(bad, "{\"label\": ");
        assertThrows(BadInputException.class, () -> EvaluationReport.read(bad));
    }
}
