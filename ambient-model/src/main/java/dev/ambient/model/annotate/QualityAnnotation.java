package dev.ambient.model.annotate;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ambient.model.data.BadInputException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * Annotation from per-image quality scores (spec §1.8; the reference scores ImageNet with
 * CLIP-IQA, globally and averaged over the patches of each size). Higher scores are better.
 *
 * <ul>
 * <li>σ_min: images ranked by their global score, best first; the best {@code int(N·(1 − p_bad))}
 * get σ_min = 0, the rest σ_bad (reference: p_bad = 0.9 in every training script, σ_bad = 0.2).
 * <li>σ_max: for each patch size K with scores, in ascending order of K, the images whose
 * K-score ranks among the best {@code int(N·(1 − p_bad))} get σ_max = table(K) (a larger K
 * overrides a smaller one); the others keep what they had, initially 0.
 * </ul>
 * The rank is the real rank (position of image i in the best-first order). The released code
 * used the sort permutation itself as the "rank" (spec §1.17, defect 6), which labels image i
 * by the score of another image; {@link #ranks} with {@code released = true} reproduces that
 * for comparison only.
 *
 * <p>Score files: JSON Lines, one object per image, {@code {"filename": f, "score": q}} with
 * optional patch scores {@code "score_<K>": q_K} (K the patch side in pixels); or CSV with a
 * header line {@code filename,score[,score_<K>...]} and one row per image (no quoting; file
 * names must not contain commas). Every image needs the same patch keys.
 */
public final class QualityAnnotation {

    /** The reference's table keyed by pixel patch K = 8 × the latent receptive field: 32 → 0.10, ..., 512 → 200. */
    public static final SortedMap<Integer, Double> LATENT_PATCH_TABLE;
    static {
        TreeMap<Integer, Double> t = new TreeMap<>();
        for (var e : CropRule.LATENT_TABLE.entrySet()) t.put(8 * e.getKey(), e.getValue());
        LATENT_PATCH_TABLE = Collections.unmodifiableSortedMap(t);
    }

    /** Per image: its name, global score and scores per patch size. */
    public record Scores(List<String> filenames, double[] score, SortedMap<Integer, double[]> patchScores) {
        public Scores {
            filenames = List.copyOf(filenames);
            if (score.length != filenames.size()) throw new IllegalArgumentException(filenames.size() + " names but " + score.length + " scores");
            for (var e : patchScores.entrySet()) {
                if (e.getValue().length != score.length) throw new IllegalArgumentException("score_" + e.getKey() + " has " + e.getValue().length + " values for " + score.length + " images");
            }
            patchScores = Collections.unmodifiableSortedMap(new TreeMap<>(patchScores));
        }
        public int size() { return score.length; }
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    private QualityAnnotation() {}

    /**
     * The rank of each image, 0 for the best (highest score; ties by index). With
     * {@code released}, the released code's value instead: the sort permutation itself (entry i
     * is the index of the i-th best image).
     */
    public static int[] ranks(double[] scores, boolean released) {
        Integer[] order = new Integer[scores.length];
        for (int i = 0; i < order.length; i++) order[i] = i;
        Arrays.sort(order, (a, b) -> {
            int c = Double.compare(scores[b], scores[a]);
            return c != 0 ? c : Integer.compare(a, b);
        });
        int[] out = new int[scores.length];
        for (int pos = 0; pos < order.length; pos++) {
            if (released) out[pos] = order[pos];
            else out[order[pos]] = pos;
        }
        return out;
    }

    /**
     * One {@link Annotation.Bounds} per image, in file order.
     *
     * @param badFraction p_bad, the fraction treated as low quality, in [0, 1]
     * @param sigmaBad σ_min of the low-quality images
     * @param table σ_max per patch size (pixels); patch sizes of the scores missing from it are an error
     * @param useCrops whether patch scores set σ_max (the reference's use_ambient_crops)
     */
    public static List<Annotation.Bounds> annotate(Scores s, double badFraction, double sigmaBad, SortedMap<Integer, Double> table,
                                                   boolean useCrops, boolean released) {
        if (!(badFraction >= 0 && badFraction <= 1)) throw new IllegalArgumentException("bad fraction must be in [0, 1], got " + badFraction);
        int n = s.size();
        int keep = (int) (n * (1 - badFraction));
        int[] rank = ranks(s.score(), released);
        double[] hi = new double[n];
        if (useCrops) {
            for (var e : s.patchScores().entrySet()) {
                Double sigmaMax = table.get(e.getKey());
                if (sigmaMax == null) throw new IllegalArgumentException("patch size " + e.getKey() + " is not in the table " + table.keySet());
                int[] r = ranks(e.getValue(), released);
                for (int i = 0; i < n; i++) if (r[i] < keep) hi[i] = sigmaMax;
            }
        }
        List<Annotation.Bounds> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) out.add(new Annotation.Bounds(s.filenames().get(i), rank[i] < keep ? 0 : sigmaBad, hi[i]));
        return out;
    }

    /** Reads a score file: CSV when its name ends in .csv, JSON Lines otherwise. */
    public static Scores read(Path path) throws IOException {
        if (!Files.isRegularFile(path)) throw BadInputException.of(path, "no such score file");
        List<String> lines = Files.readAllLines(path, StandardCharsets.UTF_8);
        List<String> names = new ArrayList<>();
        List<Double> scores = new ArrayList<>();
        TreeMap<Integer, List<Double>> patches = new TreeMap<>();
        Set<String> seen = new HashSet<>();
        boolean csv = path.getFileName().toString().toLowerCase().endsWith(".csv");
        String[] header = null;
        Set<Integer> keys = null;
        for (int k = 0; k < lines.size(); k++) {
            String line = lines.get(k).strip();
            if (line.isEmpty()) continue;
            try {
                String name;
                double score;
                TreeMap<Integer, Double> patch = new TreeMap<>();
                if (csv) {
                    String[] cells = line.split(",", -1);
                    if (header == null) {
                        header = cells;
                        if (cells.length < 2 || !cells[0].strip().equals("filename") || !cells[1].strip().equals("score")) {
                            throw new IllegalArgumentException("the header must start with filename,score (then optional score_<K> columns)");
                        }
                        for (int c = 2; c < cells.length; c++) patchSize(cells[c].strip());
                        continue;
                    }
                    if (cells.length != header.length) throw new IllegalArgumentException(cells.length + " cells, the header has " + header.length);
                    name = cells[0].strip();
                    score = parse(cells[1], "score");
                    for (int c = 2; c < cells.length; c++) patch.put(patchSize(header[c].strip()), parse(cells[c], header[c].strip()));
                } else {
                    JsonNode node;
                    try {
                        node = JSON.readTree(line);
                    } catch (JacksonException e) {
                        throw new IllegalArgumentException("not valid JSON: " + e.getOriginalMessage());
                    }
                    if (node == null || !node.isObject()) throw new IllegalArgumentException("expected a JSON object");
                    JsonNode f = node.get("filename");
                    if (f == null || !f.isTextual()) throw new IllegalArgumentException("\"filename\" is missing or not a string");
                    name = f.asText();
                    score = number(node.get("score"), "score");
                    for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
                        var e = it.next();
                        if (e.getKey().startsWith("score_")) patch.put(patchSize(e.getKey()), number(e.getValue(), e.getKey()));
                    }
                }
                if (name.isEmpty()) throw new IllegalArgumentException("empty file name");
                if (!seen.add(name)) throw new IllegalArgumentException(name + " is scored twice");
                if (keys == null) keys = patch.keySet();
                else if (!keys.equals(patch.keySet())) throw new IllegalArgumentException("patch scores " + patch.keySet() + " differ from the first line's " + keys);
                names.add(name);
                scores.add(score);
                for (var e : patch.entrySet()) patches.computeIfAbsent(e.getKey(), x -> new ArrayList<>()).add(e.getValue());
            } catch (IllegalArgumentException e) {
                throw BadInputException.atLine(path, k + 1, e.getMessage(), e);
            }
        }
        if (names.isEmpty()) throw BadInputException.of(path, "holds no scores");
        TreeMap<Integer, double[]> patchArrays = new TreeMap<>();
        for (var e : patches.entrySet()) patchArrays.put(e.getKey(), e.getValue().stream().mapToDouble(Double::doubleValue).toArray());
        return new Scores(names, scores.stream().mapToDouble(Double::doubleValue).toArray(), patchArrays);
    }

    private static int patchSize(String key) {
        try {
            int k = Integer.parseInt(key.substring("score_".length()));
            if (k <= 0 || !key.startsWith("score_")) throw new NumberFormatException();
            return k;
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("column \"" + key + "\" is not score_<patch size>");
        }
    }

    private static double parse(String cell, String key) {
        try {
            return finite(Double.parseDouble(cell.strip()), key);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("\"" + key + "\" is not a number: " + cell);
        }
    }

    private static double number(JsonNode v, String key) {
        if (v == null || !v.isNumber()) throw new IllegalArgumentException("\"" + key + "\" must be a number, got " + v);
        return finite(v.doubleValue(), key);
    }

    private static double finite(double v, String key) {
        if (!Double.isFinite(v)) throw new IllegalArgumentException("\"" + key + "\" must be finite, got " + v);
        return v;
    }
}
