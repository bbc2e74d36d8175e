package dev.ambient.model.eval;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.ambient.model.data.BadInputException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.function.Function;

/**
 * The metrics of one evaluation: a generated set (a method, a seed, a checkpoint after some number
 * of training images) against a reference set. A metric that was not measured is null, and is left
 * out of the JSON and shown as "-" in tables.
 *
 * @param label           what was evaluated, e.g. the method's name ("ambient-fixed") or a folder
 * @param seed            the training or sampling seed, if there is one
 * @param trainingImages  training images seen by the checkpoint that generated the set, if known
 * @param generatedCount  generated images evaluated
 * @param referenceCount  reference images they were compared with
 * @param fdFeat          Fréchet distance in the feature classifier's penultimate features
 * @param fdPix           Fréchet distance on downsampled pixels ({@link FdPixels})
 * @param precision       improved precision, {@link PrecisionRecall}
 * @param recall          improved recall, {@link PrecisionRecall}
 * @param k               the k of precision and recall
 * @param sharpnessRatio  high-frequency energy, generated / reference ({@link Sharpness})
 * @param featureAccuracy the feature classifier's accuracy on held-out clean data
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record EvaluationReport(
        String label, Long seed, Long trainingImages, int generatedCount, int referenceCount,
        Double fdFeat, Double fdPix, Double precision, Double recall, Integer k,
        Double sharpnessRatio, Double featureAccuracy) {

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    public EvaluationReport {
        if (label == null || label.isBlank()) throw new IllegalArgumentException("a report needs a label");
        if (generatedCount < 0 || referenceCount < 0) throw new IllegalArgumentException("counts must be >= 0, got " + generatedCount + " generated, " + referenceCount + " reference");
        if (trainingImages != null && trainingImages < 0) throw new IllegalArgumentException("trainingImages must be >= 0, got " + trainingImages);
        nonNegative("fdFeat", fdFeat);
        nonNegative("fdPix", fdPix);
        nonNegative("sharpnessRatio", sharpnessRatio);
        unit("precision", precision);
        unit("recall", recall);
        unit("featureAccuracy", featureAccuracy);
        if (k != null && k < 1) throw new IllegalArgumentException("k must be >= 1, got " + k);
    }

    /** A report with only the label and the set sizes; add metrics with the {@code with...} methods. */
    public static EvaluationReport of(String label, int generatedCount, int referenceCount) {
        return new EvaluationReport(label, null, null, generatedCount, referenceCount, null, null, null, null, null, null, null);
    }

    public EvaluationReport withSeed(long s) {
        return new EvaluationReport(label, s, trainingImages, generatedCount, referenceCount, fdFeat, fdPix, precision, recall, k, sharpnessRatio, featureAccuracy);
    }

    public EvaluationReport withTrainingImages(long n) {
        return new EvaluationReport(label, seed, n, generatedCount, referenceCount, fdFeat, fdPix, precision, recall, k, sharpnessRatio, featureAccuracy);
    }

    public EvaluationReport withFdFeat(double fd, double classifierAccuracy) {
        return new EvaluationReport(label, seed, trainingImages, generatedCount, referenceCount, fd, fdPix, precision, recall, k, sharpnessRatio, classifierAccuracy);
    }

    public EvaluationReport withFdPix(double fd) {
        return new EvaluationReport(label, seed, trainingImages, generatedCount, referenceCount, fdFeat, fd, precision, recall, k, sharpnessRatio, featureAccuracy);
    }

    public EvaluationReport withPrecisionRecall(PrecisionRecall.Result r) {
        return new EvaluationReport(label, seed, trainingImages, generatedCount, referenceCount, fdFeat, fdPix, r.precision(), r.recall(), r.k(), sharpnessRatio, featureAccuracy);
    }

    public EvaluationReport withSharpnessRatio(double ratio) {
        return new EvaluationReport(label, seed, trainingImages, generatedCount, referenceCount, fdFeat, fdPix, precision, recall, k, ratio, featureAccuracy);
    }

    /** The report as an indented JSON object; metrics that were not measured are left out. */
    public String toJson() {
        try {
            return JSON.writeValueAsString(this);
        } catch (JsonProcessingException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Parses {@link #toJson}'s form; unknown or malformed fields are refused. */
    public static EvaluationReport fromJson(String json) throws JsonProcessingException {
        return JSON.readValue(json, EvaluationReport.class);
    }

    /** Writes the JSON through a temporary file and a rename. */
    public void write(Path file) throws IOException {
        Path dir = file.toAbsolutePath().getParent();
        Files.createDirectories(dir);
        Path tmp = Files.createTempFile(dir, file.getFileName().toString(), ".tmp");
        try {
            Files.writeString(tmp, toJson() + "\n", StandardCharsets.UTF_8);
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /** Reads a report written by {@link #write}; a malformed one is a {@link BadInputException} naming the file. */
    public static EvaluationReport read(Path file) throws IOException {
        String text = Files.readString(file, StandardCharsets.UTF_8);
        try {
            return fromJson(text);
        } catch (JsonProcessingException e) {
            throw BadInputException.of(file, "not an evaluation report: " + e.getOriginalMessage());
        } catch (IllegalArgumentException e) { // a well-formed file with impossible values
            throw BadInputException.of(file, e.getMessage());
        }
    }

    /** This report as a one-row table. */
    public String toTable() { return table(List.of(this)); }

    /** One row per report, the columns every report can fill, aligned for a terminal. */
    public static String table(List<EvaluationReport> reports) {
        Objects.requireNonNull(reports, "reports");
        List<String> header = List.of("label", "seed", "images", "n_gen", "n_ref", "FD_feat", "FD_pix", "precision", "recall", "sharpness", "clf_acc");
        List<List<String>> rows = new ArrayList<>();
        for (EvaluationReport r : reports) {
            rows.add(List.of(r.label, str(r.seed), str(r.trainingImages), Integer.toString(r.generatedCount), Integer.toString(r.referenceCount),
                    fmt(r.fdFeat, 3), fmt(r.fdPix, 4), fmt(r.precision, 3), fmt(r.recall, 3), fmt(r.sharpnessRatio, 3), fmt(r.featureAccuracy, 3)));
        }
        return align(header, rows);
    }

    /**
     * Mean ± sample standard deviation of each metric over the reports that share a label (the
     * seeds of one method), labels in order of first appearance. A metric missing from some of a
     * label's reports is averaged over those that have it, and the row says how many runs there were.
     */
    public static String summaryTable(List<EvaluationReport> reports) {
        Objects.requireNonNull(reports, "reports");
        Map<String, List<EvaluationReport>> byLabel = new LinkedHashMap<>();
        for (EvaluationReport r : reports) byLabel.computeIfAbsent(r.label, l -> new ArrayList<>()).add(r);
        List<String> header = List.of("label", "runs", "FD_feat", "FD_pix", "precision", "recall", "sharpness");
        List<List<String>> rows = new ArrayList<>();
        for (var e : byLabel.entrySet()) {
            List<EvaluationReport> g = e.getValue();
            rows.add(List.of(e.getKey(), Integer.toString(g.size()),
                    meanStd(g, EvaluationReport::fdFeat, 3), meanStd(g, EvaluationReport::fdPix, 4),
                    meanStd(g, EvaluationReport::precision, 3), meanStd(g, EvaluationReport::recall, 3),
                    meanStd(g, EvaluationReport::sharpnessRatio, 3)));
        }
        return align(header, rows);
    }

    private static String meanStd(List<EvaluationReport> group, Function<EvaluationReport, Double> metric, int digits) {
        double sum = 0, sum2 = 0;
        int n = 0;
        for (EvaluationReport r : group) {
            Double v = metric.apply(r);
            if (v == null) continue;
            sum += v;
            n++;
        }
        if (n == 0) return "-";
        double mean = sum / n;
        if (n == 1) return fmt(mean, digits);
        for (EvaluationReport r : group) {
            Double v = metric.apply(r);
            if (v != null) sum2 += (v - mean) * (v - mean);
        }
        return fmt(mean, digits) + " ± " + fmt(Math.sqrt(sum2 / (n - 1)), digits);
    }

    private static String align(List<String> header, List<List<String>> rows) {
        int[] widths = new int[header.size()];
        for (int c = 0; c < widths.length; c++) {
            widths[c] = header.get(c).length();
            for (List<String> row : rows) widths[c] = Math.max(widths[c], row.get(c).length());
        }
        StringBuilder sb = new StringBuilder();
        appendRow(sb, header, widths);
        for (int c = 0; c < widths.length; c++) sb.append(c == 0 ? "" : "  ").append("-".repeat(widths[c]));
        sb.append('\n');
        for (List<String> row : rows) appendRow(sb, row, widths);
        return sb.toString();
    }

    private static void appendRow(StringBuilder sb, List<String> cells, int[] widths) {
        for (int c = 0; c < cells.size(); c++) {
            String s = cells.get(c);
            if (c > 0) sb.append("  ");
            // the label left-aligned, numbers right-aligned so that digits line up
            sb.append(c == 0 ? s + " ".repeat(widths[c] - s.length()) : " ".repeat(widths[c] - s.length()) + s);
        }
        int end = sb.length();
        while (end > 0 && sb.charAt(end - 1) == ' ') end--;
        sb.setLength(end);
        sb.append('\n');
    }

    private static String str(Long v) { return v == null ? "-" : Long.toString(v); }

    private static String fmt(Double v, int digits) { return v == null ? "-" : String.format(Locale.ROOT, "%." + digits + "f", v); }

    private static void nonNegative(String name, Double v) {
        if (v != null && !(v >= 0 && v < Double.POSITIVE_INFINITY)) throw new IllegalArgumentException(name + " must be a finite value >= 0, got " + v);
    }

    private static void unit(String name, Double v) {
        if (v != null && !(v >= 0 && v <= 1)) throw new IllegalArgumentException(name + " must be in [0, 1], got " + v);
    }
}
