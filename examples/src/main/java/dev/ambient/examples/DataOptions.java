package dev.ambient.examples;

import dev.ambient.model.annotate.AnnotationFile;
import dev.ambient.model.annotate.AnnotationTable;
import dev.ambient.model.annotate.FixedAnnotation;
import dev.ambient.model.corrupt.Corrupter;
import dev.ambient.model.corrupt.Corruption;
import dev.ambient.model.data.Cifar10;
import dev.ambient.model.data.ImageDataset;
import dev.ambient.model.data.ImageFolder;
import dev.ambient.model.data.ProceduralShapes;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The data options the programs share: which images, which corruptions make the bad part, and
 * which annotations say how each sample may be used.
 */
final class DataOptions {

    @Option(names = "--data", defaultValue = "builtin", paramLabel = "SOURCE",
            description = "builtin (procedural coloured shapes, labelled), an image folder or .zip (PNG/JPEG, optional dataset.json), or cifar10:DIR (the binary batches). Default ${DEFAULT-VALUE}.")
    String source;

    @Option(names = "--builtin-images", defaultValue = "4096", description = "Images of the built-in dataset (default ${DEFAULT-VALUE}).")
    int builtinImages;

    @Option(names = "--resolution", defaultValue = "16", description = "Side of the built-in dataset's images (default ${DEFAULT-VALUE}).")
    int resolution;

    @Option(names = "--data-seed", defaultValue = "0", description = "Seed of the built-in dataset and of the corruptions (default ${DEFAULT-VALUE}).")
    long dataSeed;

    @Option(names = "--skip-bad", description = "Skip unreadable images (counted and named) instead of stopping.")
    boolean skipBad;

    @Option(names = "--corrupt", split = ",", paramLabel = "NAME",
            description = "Corrupt part of the data with these (one drawn per sample): blur0-8, jpeg25, motionblur3, noise0-1, downsample2, ...")
    List<String> corruptions = new ArrayList<>();

    @Option(names = "--clean-fraction", defaultValue = "0.1", description = "With --corrupt: the fraction left clean (default ${DEFAULT-VALUE}, the paper's 10%%).")
    double cleanFraction;

    @Option(names = "--annotations", paramLabel = "FILE", description = "Per-sample annotations (JSON Lines, the reference's keys) for the corrupted data.")
    Path annotations;

    @Option(names = "--sigma-min", description = "Fixed annotation: every corrupted sample gets this sigma_min (e.g. 1.89 for blur0-8 in the paper).")
    Double sigmaMin;

    @Option(names = "--sigma-max", defaultValue = "0", description = "With --sigma-min: the corrupted samples' sigma_max (default ${DEFAULT-VALUE}: never used at low noise).")
    double sigmaMax;

    @Option(names = "--use", defaultValue = "ambient", paramLabel = "MODE",
            description = "ambient (annotations decide), clean-only (drop the corrupted samples: filtering), or all-clean (every sample as if clean). Default ${DEFAULT-VALUE}.")
    String mode;

    /** The data to train on and how each sample may be used. */
    record Prepared(ImageDataset dataset, AnnotationTable annotations, String description) {}

    Prepared prepare() throws IOException {
        ImageDataset clean = load();
        String what = describe(clean);
        ImageDataset data = clean;
        boolean[] corrupted = new boolean[clean.size()];
        if (!corruptions.isEmpty()) {
            Corrupter.Result r = corrupt(clean);
            data = r.dataset();
            corrupted = r.corruptedMask();
            what += String.format(", %d of them corrupted with %s", r.corruptedCount(), String.join("/", corruptions));
        }
        AnnotationTable table;
        switch (mode) {
            case "all-clean" -> {
                table = AnnotationTable.clean(data.size());
                what += "; every sample used as clean (the 'treat all data alike' baseline)";
            }
            case "clean-only" -> {
                List<Integer> keep = new ArrayList<>();
                for (int i = 0; i < corrupted.length; i++) if (!corrupted[i]) keep.add(i);
                data = data.subset(keep.stream().mapToInt(Integer::intValue).toArray());
                table = AnnotationTable.clean(data.size());
                what += "; only the " + data.size() + " clean samples (the filtering baseline)";
            }
            case "ambient" -> {
                if (annotations != null && sigmaMin != null) throw new IllegalArgumentException("give --annotations or --sigma-min, not both");
                if (annotations != null) {
                    table = AnnotationTable.resolve(AnnotationFile.read(annotations), data.names());
                    what += "; annotations from " + annotations;
                } else if (sigmaMin != null) {
                    if (!(sigmaMin >= 0) || !(sigmaMax >= 0)) throw new IllegalArgumentException("--sigma-min and --sigma-max must be non-negative");
                    table = FixedAnnotation.table(corrupted, sigmaMin, sigmaMax);
                    what += String.format("; corrupted samples annotated sigma_min = %s, sigma_max = %s", sigmaMin, sigmaMax);
                } else {
                    if (!corruptions.isEmpty()) {
                        throw new IllegalArgumentException("corrupted data needs annotations: --sigma-min X (fixed), --annotations FILE, "
                                + "or --use all-clean / clean-only for the baselines");
                    }
                    table = AnnotationTable.clean(data.size());
                }
            }
            default -> throw new IllegalArgumentException("--use " + mode + ": expected ambient, clean-only or all-clean");
        }
        return new Prepared(data, table, what);
    }

    /** The clean data with the asked-for corruptions applied, as training sees them. */
    Corrupter.Result corrupt(ImageDataset clean) {
        List<Corruption> choices = new ArrayList<>();
        for (String c : corruptions) choices.add(Corruption.parse(c));
        return Corrupter.withCleanFraction(clean, choices, cleanFraction, dataSeed);
    }

    ImageDataset load() throws IOException {
        if (source.equals("builtin")) return ProceduralShapes.generate(builtinImages, resolution, dataSeed);
        if (source.startsWith("cifar10:")) return Cifar10.train(Path.of(source.substring("cifar10:".length())));
        List<String> skipped = new ArrayList<>();
        ImageDataset d = skipBad ? ImageFolder.load(Path.of(source), skipped) : ImageFolder.load(Path.of(source));
        if (!skipped.isEmpty()) System.out.println("skipped " + skipped.size() + " unreadable image(s): " + skipped);
        return d;
    }

    private String describe(ImageDataset d) {
        return String.format("%s: %d images %dx%dx%d%s", source, d.size(), d.height(), d.width(), d.channels(),
                d.hasLabels() ? ", " + d.labelCount() + " classes" : "");
    }
}
