package dev.ambient.model.annotate;

import dev.ambient.model.data.BadInputException;
import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Each dataset sample's {@code (σ_min, σ_max)}, by dataset index: what the sampler needs.
 * A sample with no annotation is clean, (0, 0), as in the reference's training loop.
 *
 * @param sigmaMin per sample; used at σ > b·σ_min (high noise)
 * @param sigmaMax per sample; used at σ < σ_max (low noise)
 * @param annotated how many samples had an annotation line
 */
public record AnnotationTable(double[] sigmaMin, double[] sigmaMax, int annotated) {

    public AnnotationTable {
        if (sigmaMin.length != sigmaMax.length) throw new IllegalArgumentException("sigmaMin and sigmaMax differ in length");
        for (int i = 0; i < sigmaMin.length; i++) {
            if (!(sigmaMin[i] >= 0) || !(sigmaMax[i] >= 0) || Double.isInfinite(sigmaMin[i])) {
                throw new IllegalArgumentException("sample " + i + " has (sigma_min, sigma_max) = (" + sigmaMin[i] + ", " + sigmaMax[i]
                        + "); both must be non-negative and sigma_min finite");
            }
        }
    }

    /** All {@code n} samples clean. */
    public static AnnotationTable clean(int n) {
        return new AnnotationTable(new double[n], new double[n], 0);
    }

    public int size() { return sigmaMin.length; }

    /**
     * Resolves a file against the dataset's names with the default rules; a file with
     * {@code "probabilities"} needs {@code sigmas.txt} beside it.
     */
    public static AnnotationTable resolve(AnnotationFile file, List<String> names) throws IOException {
        boolean trajectories = file.annotations().stream().anyMatch(a -> a instanceof Annotation.Trajectory);
        double[] sigmas = null;
        if (trajectories) {
            Path dir = file.path().toAbsolutePath().getParent();
            sigmas = AnnotationFile.readSigmas(dir.resolve(AnnotationFile.SIGMAS));
        }
        return resolve(file, names, sigmas, FirstConfusionRule.DEFAULT, CropRule.DEFAULT);
    }

    /**
     * Resolves each line of {@code file} to the dataset sample it names and turns it into
     * bounds: a level v → (v, 0); bounds as given; a trajectory → (first-confusion σ, 0); crop
     * predictions → (300, table σ_max). A line's filename matches a sample by its relative path,
     * or by its bare file name when exactly one sample has it (the reference's annotators write
     * bare names). A filename that matches no sample, matches several, or names a sample that
     * another line already annotated is an error naming the file and line.
     *
     * @param sortedSigmas the σ grid of the trajectories (ascending), or null when there are none
     */
    public static AnnotationTable resolve(AnnotationFile file, List<String> names, double[] sortedSigmas,
                                          FirstConfusionRule confusion, CropRule crops) throws BadInputException {
        Map<String, Integer> byPath = new HashMap<>(names.size() * 2);
        Map<String, Integer> byBase = new HashMap<>(names.size() * 2); // -1: several samples share it
        for (int i = 0; i < names.size(); i++) {
            byPath.put(names.get(i), i);
            byBase.merge(baseName(names.get(i)), i, (a, b) -> -1);
        }
        int n = names.size();
        double[] lo = new double[n], hi = new double[n];
        int[] lineOf = new int[n];
        int count = 0;
        for (int k = 0; k < file.annotations().size(); k++) {
            Annotation a = file.annotations().get(k);
            int line = file.lineOf(k);
            Integer index = byPath.get(a.filename());
            if (index == null) {
                index = byBase.get(a.filename());
                if (index == null) throw BadInputException.atLine(file.path(), line, "annotates " + a.filename() + ", which is not in the dataset", null);
                if (index < 0) throw BadInputException.atLine(file.path(), line, "bare name " + a.filename() + " matches several images of the dataset; use the relative path", null);
            }
            if (lineOf[index] != 0) {
                throw BadInputException.atLine(file.path(), line, names.get(index) + " is already annotated on line " + lineOf[index], null);
            }
            lineOf[index] = line;
            count++;
            try {
                switch (a) {
                    case Annotation.Level l -> lo[index] = l.sigma();
                    case Annotation.Bounds b -> {
                        lo[index] = b.sigmaMin();
                        hi[index] = b.sigmaMax();
                    }
                    case Annotation.Trajectory t -> {
                        if (sortedSigmas == null) throw new IllegalArgumentException("\"probabilities\" need a sigma grid (" + AnnotationFile.SIGMAS + ")");
                        lo[index] = confusion.sigmaMin(t, sortedSigmas);
                    }
                    case Annotation.Crops c -> {
                        lo[index] = Annotation.NEVER;
                        hi[index] = crops.sigmaMax(c);
                    }
                }
            } catch (IllegalArgumentException e) {
                throw BadInputException.atLine(file.path(), line, e.getMessage(), e);
            }
        }
        return new AnnotationTable(lo, hi, count);
    }

    private static String baseName(String path) {
        return path.substring(path.lastIndexOf('/') + 1);
    }
}
