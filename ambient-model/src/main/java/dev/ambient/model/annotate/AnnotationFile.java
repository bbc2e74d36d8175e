package dev.ambient.model.annotate;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ambient.model.data.BadInputException;
import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Annotation files in the reference's layout (spec §1.4): {@code annotations.jsonl}, one JSON
 * object per line, and {@code sigmas.txt}, one noise level per line, for files with
 * {@code "probabilities"}.
 *
 * <p>A line is read, like the reference's training loop does, by the first of these keys it
 * holds: {@code probabilities}; any {@code crop_predictions_<size>}; {@code annotation} or
 * {@code sigma}; {@code sigma_min} with {@code sigma_max}. Other keys are ignored. Every
 * malformed line (not JSON, no filename, no annotation key, a negative or non-finite noise level,
 * a probability outside [0, 1], a ragged matrix, a file named twice) is reported with the file
 * and its line number; when several lines are bad, the exception names the first and carries
 * the others as suppressed exceptions. Blank lines are skipped.
 *
 * @param path the file read (for messages)
 * @param annotations the annotations, in file order
 * @param lines the 1-based line number of each annotation
 */
public record AnnotationFile(Path path, List<Annotation> annotations, List<Integer> lines) {

    /** The name the reference gives the annotation file inside a dataset folder. */
    public static final String ANNOTATIONS = "annotations.jsonl";
    /** The name of the σ grid file beside it. */
    public static final String SIGMAS = "sigmas.txt";

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int MAX_REPORTED = 100;

    public AnnotationFile {
        annotations = List.copyOf(annotations);
        lines = List.copyOf(lines);
        if (annotations.size() != lines.size()) throw new IllegalArgumentException("one line number per annotation");
    }

    /** The line an annotation came from. */
    public int lineOf(int k) { return lines.get(k); }

    /** Reads and checks every line of {@code path}. */
    public static AnnotationFile read(Path path) throws IOException {
        if (!Files.isRegularFile(path)) throw BadInputException.of(path, "no such annotation file");
        List<Annotation> out = new ArrayList<>();
        List<Integer> lineNumbers = new ArrayList<>();
        Map<String, Integer> seen = new HashMap<>();
        List<Integer> badLines = new ArrayList<>();
        List<String> reasons = new ArrayList<>();
        try (BufferedReader reader = Files.newBufferedReader(path, StandardCharsets.UTF_8)) {
            String text;
            int line = 0;
            while ((text = reader.readLine()) != null) {
                line++;
                if (text.isBlank()) continue;
                try {
                    Annotation a = parse(text);
                    Integer first = seen.putIfAbsent(a.filename(), line);
                    if (first != null) throw new IllegalArgumentException(a.filename() + " is annotated twice (first on line " + first + ")");
                    out.add(a);
                    lineNumbers.add(line);
                } catch (IllegalArgumentException e) {
                    badLines.add(line);
                    reasons.add(e.getMessage());
                }
            }
        }
        if (!badLines.isEmpty()) {
            int more = badLines.size() - 1;
            BadInputException error = BadInputException.atLine(path, badLines.get(0), reasons.get(0)
                    + (more > 0 ? " (and " + more + " more bad line" + (more > 1 ? "s" : "") + ", attached as suppressed)" : ""), null);
            for (int k = 1; k < Math.min(badLines.size(), MAX_REPORTED); k++) {
                error.addSuppressed(BadInputException.atLine(path, badLines.get(k), reasons.get(k), null));
            }
            throw error;
        }
        return new AnnotationFile(path, out, lineNumbers);
    }

    /** One line's annotation; an {@link IllegalArgumentException} says what is wrong with it. */
    public static Annotation parse(String line) {
        JsonNode node;
        try {
            node = JSON.readTree(line);
        } catch (JacksonException e) {
            throw new IllegalArgumentException("not valid JSON: " + e.getOriginalMessage());
        }
        if (node == null || !node.isObject()) throw new IllegalArgumentException("expected a JSON object, got " + abbreviate(line));
        JsonNode name = node.get("filename");
        if (name == null || !name.isTextual() || name.asText().isBlank()) {
            throw new IllegalArgumentException("\"filename\" is missing or not a non-empty string");
        }
        String filename = name.asText();
        if (node.has("probabilities")) {
            JsonNode rows = node.get("probabilities");
            if (!rows.isArray() || rows.isEmpty()) throw new IllegalArgumentException("\"probabilities\" must be a non-empty K x T list of lists");
            double[][] p = new double[rows.size()][];
            for (int k = 0; k < p.length; k++) {
                JsonNode row = rows.get(k);
                // a flat list is a trajectory with one trial per sigma
                p[k] = row.isArray() ? numbers(row, "probabilities[" + k + "]") : new double[] {number(row, "probabilities[" + k + "]")};
            }
            return new Annotation.Trajectory(filename, p);
        }
        TreeMap<Integer, double[]> crops = new TreeMap<>();
        for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) {
            String key = it.next();
            if (!key.startsWith("crop_predictions")) continue;
            int size;
            try {
                size = Integer.parseInt(key.substring(key.lastIndexOf('_') + 1));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("\"" + key + "\" does not end in _<patch size>");
            }
            JsonNode list = node.get(key);
            if (!list.isArray()) throw new IllegalArgumentException("\"" + key + "\" must be a list of probabilities");
            crops.put(size, numbers(list, key));
        }
        if (!crops.isEmpty()) return new Annotation.Crops(filename, crops);
        for (String key : new String[] {"annotation", "sigma"}) {
            if (node.has(key)) return new Annotation.Level(filename, number(node.get(key), key), key.equals("sigma"));
        }
        boolean hasMin = node.has("sigma_min"), hasMax = node.has("sigma_max");
        if (hasMin && hasMax) {
            return new Annotation.Bounds(filename, number(node.get("sigma_min"), "sigma_min"), number(node.get("sigma_max"), "sigma_max"));
        }
        if (hasMin || hasMax) throw new IllegalArgumentException("\"sigma_min\" and \"sigma_max\" must come together");
        throw new IllegalArgumentException("no annotation key; expected one of \"probabilities\", \"crop_predictions_<size>\", "
                + "\"annotation\", \"sigma\", or \"sigma_min\" with \"sigma_max\"");
    }

    private static double number(JsonNode v, String key) {
        if (v == null || !v.isNumber()) throw new IllegalArgumentException("\"" + key + "\" must be a number, got " + v);
        return v.doubleValue();
    }

    private static double[] numbers(JsonNode list, String key) {
        double[] out = new double[list.size()];
        for (int k = 0; k < out.length; k++) out[k] = number(list.get(k), key + "[" + k + "]");
        return out;
    }

    private static String abbreviate(String s) {
        return s.length() <= 60 ? s : s.substring(0, 57) + "...";
    }

    /** The JSON object of one annotation, with the reference's keys. */
    public static ObjectNode toJson(Annotation a) {
        ObjectNode node = JSON.createObjectNode();
        node.put("filename", a.filename());
        switch (a) {
            case Annotation.Level l -> node.put(l.key(), l.sigma());
            case Annotation.Bounds b -> {
                node.put("sigma_min", b.sigmaMin());
                node.put("sigma_max", b.sigmaMax());
            }
            case Annotation.Trajectory t -> {
                ArrayNode rows = node.putArray("probabilities");
                for (double[] row : t.probabilities()) {
                    ArrayNode r = rows.addArray();
                    for (double p : row) r.add(p);
                }
            }
            case Annotation.Crops c -> {
                for (var e : c.predictions().entrySet()) {
                    ArrayNode list = node.putArray("crop_predictions_" + e.getKey());
                    for (double p : e.getValue()) list.add(p);
                }
            }
        }
        return node;
    }

    /** Writes one line per annotation, through a temporary file renamed into place. */
    public static void write(Path path, List<? extends Annotation> annotations) throws IOException {
        writeAtomically(path, out -> {
            for (Annotation a : annotations) {
                out.write(JSON.writeValueAsString(toJson(a)));
                out.write('\n');
            }
        });
    }

    /** Reads {@code sigmas.txt}: one positive finite number per line, returned sorted ascending. */
    public static double[] readSigmas(Path path) throws IOException {
        if (!Files.isRegularFile(path)) throw BadInputException.of(path, "no such sigma grid file (needed for \"probabilities\" annotations)");
        List<String> lines = Files.readAllLines(path, StandardCharsets.UTF_8);
        double[] out = new double[lines.size()];
        int n = 0;
        for (int k = 0; k < lines.size(); k++) {
            String s = lines.get(k).strip();
            if (s.isEmpty()) continue;
            double v;
            try {
                v = Double.parseDouble(s);
            } catch (NumberFormatException e) {
                throw BadInputException.atLine(path, k + 1, "not a number: " + abbreviate(s), e);
            }
            if (!(v > 0) || Double.isInfinite(v)) throw BadInputException.atLine(path, k + 1, "noise level must be positive and finite, got " + s, null);
            out[n++] = v;
        }
        if (n == 0) throw BadInputException.of(path, "holds no noise levels");
        out = Arrays.copyOf(out, n);
        Arrays.sort(out);
        return out;
    }

    /** Writes a σ grid, one value per line (shortest exact decimal), through a temporary file. */
    public static void writeSigmas(Path path, double[] sigmas) throws IOException {
        writeAtomically(path, out -> {
            for (double s : sigmas) {
                out.write(Double.toString(s));
                out.write('\n');
            }
        });
    }

    private interface Body {
        void write(BufferedWriter out) throws IOException;
    }

    private static void writeAtomically(Path path, Body body) throws IOException {
        Path dir = path.toAbsolutePath().getParent();
        Files.createDirectories(dir);
        Path tmp = Files.createTempFile(dir, path.getFileName().toString(), ".tmp");
        try {
            try (BufferedWriter out = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8)) {
                body.write(out);
            }
            Files.move(tmp, path, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }
}
