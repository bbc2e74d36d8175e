package dev.ambient.examples;

import dev.ambient.kernels.Device;
import dev.ambient.model.annotate.Annotation;
import dev.ambient.model.annotate.AnnotationFile;
import dev.ambient.model.annotate.AnnotationTable;
import dev.ambient.model.annotate.CropClassifierAnnotator;
import dev.ambient.model.annotate.CropRule;
import dev.ambient.model.annotate.FirstConfusionRule;
import dev.ambient.model.annotate.FixedAnnotation;
import dev.ambient.model.annotate.NoiseClassifierAnnotator;
import dev.ambient.model.annotate.QualityAnnotation;
import dev.ambient.model.corrupt.Corrupter;
import dev.ambient.model.corrupt.Corruption;
import dev.ambient.model.data.ImageDataset;
import dev.ambient.model.eval.Plots;
import dev.ambient.model.unet.EncoderClassifier;
import dev.ambient.model.unet.UNetConfig;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.concurrent.Callable;

/**
 * {@code ./ambient annotate fixed|classifier|quality|crops}: writes {@code annotations.jsonl}
 * (and {@code sigmas.txt} for classifier trajectories) in the reference's format, for
 * {@code ./ambient train --annotations}. The data options are train's, so the same options
 * name the same samples.
 */
@Command(name = "annotate", mixinStandardHelpOptions = true,
        description = {"Annotate each sample with the noise levels at which it may be used (sigma_min, sigma_max).",
                "Example: ./ambient annotate classifier --corrupt blur0-8 --clean-fraction 0.1",
                "then:    ./ambient train --corrupt blur0-8 --clean-fraction 0.1 --annotations runs/annotate/annotations.jsonl"},
        subcommands = {Annotate.Fixed.class, Annotate.Classifier.class, Annotate.Quality.class, Annotate.Crops.class})
final class Annotate implements Runnable {

    @Override
    public void run() {
        new CommandLine(this).usage(System.out);
    }

    /** The output folder shared by the subcommands. */
    static final class Output {
        @Option(names = "--out", defaultValue = "runs/annotate", description = "Folder for annotations.jsonl (default ${DEFAULT-VALUE}).")
        Path out;

        Path annotations() {
            return out.resolve(AnnotationFile.ANNOTATIONS);
        }
    }

    /** The data and which samples are corrupted, exactly as train builds them from the same options. */
    record Data(ImageDataset dataset, boolean[] corrupted, String description, ImageDataset clean, List<Corruption> choices) {}

    static Data data(DataOptions options, boolean needCorruption) throws IOException {
        ImageDataset clean = options.load();
        String what = String.format("%s: %d images %dx%dx%d", options.source, clean.size(), clean.height(), clean.width(), clean.channels());
        if (options.corruptions.isEmpty()) {
            if (needCorruption) throw new IllegalArgumentException("this annotation needs corrupted samples: --corrupt NAME (e.g. blur0-8)");
            return new Data(clean, new boolean[clean.size()], what, clean, List.of());
        }
        List<Corruption> choices = new ArrayList<>();
        for (String c : options.corruptions) choices.add(Corruption.parse(c));
        Corrupter.Result r = Corrupter.withCleanFraction(clean, choices, options.cleanFraction, options.dataSeed);
        return new Data(r.dataset(), r.corruptedMask(),
                what + String.format(", %d of them corrupted with %s", r.corruptedCount(), String.join("/", options.corruptions)), clean, choices);
    }

    /** The first dozen scored samples' smoothed probability trajectories, each with its sigma_min marked. */
    static void plotTrajectories(Path file, NoiseClassifierAnnotator.Result r, List<String> names) throws IOException {
        List<Annotation.Trajectory> shown = new ArrayList<>();
        for (int i = 0; i < names.size() && shown.size() < 12; i++) {
            if (r.trajectories()[i] != null) shown.add(new Annotation.Trajectory(names.get(i), r.trajectories()[i]));
        }
        if (shown.isEmpty()) return;
        Plots.trajectoryChart(file, "Noise classifier: P(corrupted) against sigma, sigma_min marked", Plots.trajectories(shown, r.sigmas(), r.rule()));
        System.out.println("wrote " + file.toAbsolutePath());
    }

    /** Checks the written file against the dataset as train will read it, and prints a summary. */
    static void report(Path file, ImageDataset data, long started) throws IOException {
        AnnotationTable t = AnnotationTable.resolve(AnnotationFile.read(file), data.names());
        int low = 0, high = 0;
        double sumMin = 0, sumMax = 0;
        for (int i = 0; i < t.size(); i++) {
            if (t.sigmaMin()[i] > 0) {
                high++;
                sumMin += t.sigmaMin()[i];
            }
            if (t.sigmaMax()[i] > 0) {
                low++;
                sumMax += t.sigmaMax()[i];
            }
        }
        if (high > 0) {
            double[] levels = java.util.Arrays.stream(t.sigmaMin()).filter(v -> v > 0).toArray();
            Path histogram = file.resolveSibling("sigma_min.png");
            Plots.histogram(histogram, "Annotations: sigma_min of the " + high + " samples restricted to high noise", "sigma_min", levels, 30, true);
            System.out.println("wrote " + histogram.toAbsolutePath());
        }
        System.out.printf("%d samples: %d with sigma_min > 0 (mean %.3f), %d with sigma_max > 0 (mean %.3f); %.0f s%n", t.size(), high,
                high == 0 ? 0 : sumMin / high, low, low == 0 ? 0 : sumMax / low, (System.nanoTime() - started) / 1e9);
        System.out.println("wrote " + file.toAbsolutePath());
    }

    @Command(name = "fixed", mixinStandardHelpOptions = true, sortOptions = false,
            description = {"One sigma_min (--sigma-min, default 1.89: the paper's level for blur0-8) for every corrupted sample, (0, 0) for the clean ones.",
                    "Example: ./ambient annotate fixed --corrupt blur0-8 --sigma-min 1.89"})
    static final class Fixed implements Callable<Integer> {
        @Mixin DataOptions dataOptions;
        @Mixin Output output;

        @Override
        public Integer call() throws IOException {
            long started = System.nanoTime();
            Data d = data(dataOptions, true);
            System.out.println("data: " + d.description());
            double sigmaMin = dataOptions.sigmaMin != null ? dataOptions.sigmaMin : FixedAnnotation.SIGMA_MIN_BLUR_0_8;
            if (!(sigmaMin >= 0) || !(dataOptions.sigmaMax >= 0)) throw new IllegalArgumentException("--sigma-min and --sigma-max must be non-negative");
            AnnotationFile.write(output.annotations(), FixedAnnotation.annotate(d.dataset().names(), d.corrupted(), sigmaMin, dataOptions.sigmaMax));
            report(output.annotations(), d.dataset(), started);
            return 0;
        }
    }

    @Command(name = "classifier", mixinStandardHelpOptions = true, sortOptions = false,
            description = {"Noise classifier: learn to tell noisy clean from noisy corrupted samples at every sigma; a corrupted sample's",
                    "sigma_min is the first sigma of a sorted grid where the classifier, smoothed over the grid, is confused (P(corrupted) < 0.5 + epsilon).",
                    "Example: ./ambient annotate classifier --corrupt blur0-8 --clean-fraction 0.1"})
    static final class Classifier implements Callable<Integer> {
        @Mixin DataOptions dataOptions;
        @Mixin ClassifierOptions cls;
        @Mixin Output output;

        @Option(names = "--num-sigmas", defaultValue = "64", description = "K, noise levels of the grid (default ${DEFAULT-VALUE}; the reference 2048).")
        int numSigmas;

        @Option(names = "--trials", defaultValue = "4", description = "T, noisy copies per level (default ${DEFAULT-VALUE}, the reference's).")
        int trials;

        @Option(names = "--grid-seed", defaultValue = "42", description = "Seed of the sigma grid (default ${DEFAULT-VALUE}, the reference's).")
        long gridSeed;

        @Option(names = "--ema-span", description = "EMA span over the grid (default: the reference's 32 scaled to the grid, 32 K / 2048, at least 1).")
        Double emaSpan;

        @Option(names = "--epsilon", defaultValue = "0.05", description = "Confused when the smoothed P(corrupted) < 0.5 + epsilon (default ${DEFAULT-VALUE}, the reference's).")
        double epsilon;

        @Option(names = "--p-mean", defaultValue = "-1.2", description = "Mean of ln(sigma) for training and the grid (default ${DEFAULT-VALUE}, the reference's).")
        double pMean;

        @Option(names = "--p-std", defaultValue = "1.2", description = "Std of ln(sigma) (default ${DEFAULT-VALUE}).")
        double pStd;

        @Option(names = "--score-all", description = "Score the clean samples too (the paper's per-sample reading); the reference gives them 0.")
        boolean scoreAll;

        @Option(names = "--train-on", defaultValue = "balanced", paramLabel = "SET",
                description = "balanced: train the classifier on a fresh corruption of the clean images with p = 0.5, as the reference does for its synthetic corruptions; annotated: on the annotated set itself (half clean, half corrupted batches), the only choice for real data. Default ${DEFAULT-VALUE}.")
        String trainOn;

        @Option(names = "--form", defaultValue = "levels", paramLabel = "FORM",
                description = "levels: sigma_min/sigma_max per sample, decided here; probabilities: the reference's raw K x T trajectories plus sigmas.txt, decided when train reads them (with its span 32, meant for K = 2048). Default ${DEFAULT-VALUE}.")
        String form;

        @Override
        public Integer call() throws IOException {
            long started = System.nanoTime();
            if (!form.equals("levels") && !form.equals("probabilities")) throw new IllegalArgumentException("--form " + form + ": levels or probabilities");
            if (!trainOn.equals("balanced") && !trainOn.equals("annotated")) throw new IllegalArgumentException("--train-on " + trainOn + ": balanced or annotated");
            Data d = data(dataOptions, true);
            System.out.println("data: " + d.description());
            double span = emaSpan != null ? emaSpan : NoiseClassifierAnnotator.scaledSpan(numSigmas);
            FirstConfusionRule rule = new FirstConfusionRule(span, epsilon);
            NoiseClassifierAnnotator.Options o = new NoiseClassifierAnnotator.Options(cls.steps, cls.batch, pMean, pStd, cls.optimizer(),
                    numSigmas, trials, gridSeed, cls.evalBatch, scoreAll, cls.seed);
            UNetConfig config = cls.config(d.dataset().height(), d.dataset().channels());
            Device device = cls.device();
            NoiseClassifierAnnotator.Result r;
            try (EncoderClassifier model = cls.network(config, device)) {
                System.out.println(cls.describe(model) + " on " + device);
                System.out.printf("grid: %d sigmas x %d trials, EMA span %.3g, epsilon %.3g%n", numSigmas, trials, span, epsilon);
                if (trainOn.equals("balanced")) {
                    Corrupter.Result half = Corrupter.withProbability(d.clean(), d.choices(), 0.5, dataOptions.dataSeed + 1);
                    System.out.printf("classifier data: the %d clean images, %d of them freshly corrupted (p = 0.5)%n", half.dataset().size(),
                            half.corruptedCount());
                    r = NoiseClassifierAnnotator.annotate(model, half.dataset(), half.corruptedMask(), d.dataset(), d.corrupted(), o, rule,
                            System.out::println);
                } else {
                    System.out.println("classifier data: the annotated set, batches half clean and half corrupted");
                    r = NoiseClassifierAnnotator.annotate(model, d.dataset(), d.corrupted(), o, rule, System.out::println);
                }
            }
            List<String> names = d.dataset().names();
            plotTrajectories(output.out.resolve("trajectories.png"), r, names);
            if (form.equals("probabilities")) {
                AnnotationFile.writeSigmas(output.out.resolve(AnnotationFile.SIGMAS), r.sigmas());
                AnnotationFile.write(output.annotations(), r.trajectoryAnnotations(names));
                System.out.println("wrote " + output.out.resolve(AnnotationFile.SIGMAS).toAbsolutePath());
            } else {
                AnnotationFile.write(output.annotations(), r.levelAnnotations(names));
            }
            report(output.annotations(), d.dataset(), started);
            return 0;
        }
    }

    @Command(name = "crops", mixinStandardHelpOptions = true, sortOptions = false,
            description = {"Crop classifier: per patch size, learn to tell random crops of the target data from crops of out-of-distribution (OOD) data;",
                    "each OOD image gets sigma_max from the largest patch size whose tiles look in-distribution (mean P(target) > threshold), sigma_min 300.",
                    "OOD: the samples of --ood-classes, or the corrupted samples (--corrupt), or by default the upper half of the labels.",
                    "Example: ./ambient annotate crops --ood-classes 3,4,5"})
    static final class Crops implements Callable<Integer> {
        @Mixin DataOptions dataOptions;
        @Mixin ClassifierOptions cls;
        @Mixin Output output;

        @Option(names = "--ood-classes", split = ",", description = "Labels of the out-of-distribution samples (a labelled dataset).")
        List<Integer> oodClasses;

        @Option(names = "--patch-sizes", split = ",", description = "Patch sizes to train a classifier for (default: the table's sizes above 1 and up to half the image).")
        List<Integer> patchSizes;

        @Option(names = "--threshold", defaultValue = "0.25", description = "Mean P(target) a patch size must exceed (default ${DEFAULT-VALUE}, the reference code's).")
        double threshold;

        @Option(names = "--p-mean", defaultValue = "-1.2", description = "Mean of ln(sigma) in training (default ${DEFAULT-VALUE}, the reference's).")
        double pMean;

        @Option(names = "--p-std", defaultValue = "1.2", description = "Std of ln(sigma) in training (default ${DEFAULT-VALUE}).")
        double pStd;

        @Override
        public Integer call() throws IOException {
            long started = System.nanoTime();
            Data d = data(dataOptions, false);
            ImageDataset data = d.dataset();
            boolean[] ood;
            String which;
            if (oodClasses != null || !dataOptions.corruptions.isEmpty()) {
                if (oodClasses != null && !dataOptions.corruptions.isEmpty()) throw new IllegalArgumentException("give --ood-classes or --corrupt, not both");
                ood = oodClasses != null ? byLabel(data, oodClasses) : d.corrupted();
                which = oodClasses != null ? "labels " + oodClasses : "the corrupted samples";
            } else {
                if (!data.hasLabels() || data.labelCount() < 2) throw new IllegalArgumentException("say which samples are out of distribution: --ood-classes or --corrupt");
                List<Integer> upper = new ArrayList<>();
                for (int l = data.labelCount() / 2; l < data.labelCount(); l++) upper.add(l);
                ood = byLabel(data, upper);
                which = "labels " + upper + " (the upper half; --ood-classes to choose)";
            }
            int count = 0;
            for (boolean b : ood) if (b) count++;
            System.out.println("data: " + d.description() + "; out of distribution: " + which + ", " + count + " samples");
            CropRule rule = new CropRule(CropRule.PIXEL_TABLE, threshold);
            int[] sizes = patchSizes != null ? patchSizes.stream().mapToInt(Integer::intValue).toArray() : defaultSizes(Math.min(data.height(), data.width()));
            for (int s : sizes) {
                if (!rule.table().containsKey(s)) throw new IllegalArgumentException("patch size " + s + " is not in the table " + rule.table().keySet());
            }
            System.out.println("patch sizes " + Arrays.toString(sizes) + " -> sigma_max " + rule.table());
            CropClassifierAnnotator.Options o = new CropClassifierAnnotator.Options(sizes, cls.steps, cls.batch, pMean, pStd, cls.optimizer(),
                    cls.evalBatch, cls.seed);
            UNetConfig config = cls.config(data.height(), data.channels());
            Device device = cls.device();
            try (EncoderClassifier probe = cls.network(config, device)) {
                System.out.println(cls.describe(probe) + " per patch size, on " + device);
            }
            List<Annotation> out = CropClassifierAnnotator.annotate(() -> cls.network(config, device), data, ood, o, System.out::println);
            AnnotationFile.write(output.annotations(), out);
            SortedMap<Integer, Integer> chosen = new TreeMap<>();
            for (Annotation a : out) if (a instanceof Annotation.Crops c) chosen.merge(rule.patchSize(c), 1, Integer::sum);
            System.out.println("patch size chosen (OOD samples): " + chosen);
            if (threshold != CropRule.DEFAULT.threshold()) {
                System.out.println("note: train reads crop predictions with the default threshold " + CropRule.DEFAULT.threshold());
            }
            report(output.annotations(), data, started);
            return 0;
        }

        private static boolean[] byLabel(ImageDataset data, List<Integer> labels) {
            if (!data.hasLabels()) throw new IllegalArgumentException("--ood-classes needs a labelled dataset");
            boolean[] ood = new boolean[data.size()];
            for (int i = 0; i < ood.length; i++) ood[i] = labels.contains(data.label(i));
            return ood;
        }

        private static int[] defaultSizes(int side) {
            return CropRule.PIXEL_TABLE.keySet().stream().filter(s -> s > 1 && s <= side / 2).mapToInt(Integer::intValue).toArray();
        }
    }

    @Command(name = "quality", mixinStandardHelpOptions = true, sortOptions = false,
            description = {"Quality scores: rank the samples by a given score (higher is better); the worst --bad-fraction get sigma_min = --sigma-bad,",
                    "and per-patch-size scores give sigma_max through a receptive-field table.",
                    "Scores: JSON Lines {\"filename\": f, \"score\": q, \"score_32\": q32, ...} or CSV with the header filename,score[,score_<K>...].",
                    "Example: ./ambient annotate quality --data images/ --scores scores.jsonl"})
    static final class Quality implements Callable<Integer> {
        @Mixin DataOptions dataOptions;
        @Mixin Output output;

        @Option(names = "--scores", required = true, paramLabel = "FILE", description = "Per-image scores (.jsonl or .csv).")
        Path scores;

        @Option(names = "--bad-fraction", defaultValue = "0.9", description = "Fraction treated as low quality (default ${DEFAULT-VALUE}, the reference's training scripts).")
        double badFraction;

        @Option(names = "--sigma-bad", defaultValue = "0.2", description = "sigma_min of the low-quality samples (default ${DEFAULT-VALUE}, the reference's).")
        double sigmaBad;

        @Option(names = "--table", defaultValue = "latent", paramLabel = "TABLE",
                description = "sigma_max per patch size in pixels: latent (the reference's, patch = 8 x latent receptive field: 32->0.10 ... 512->200), pixel (the crop table: 4->0.05 ... 64->1.00), or K=S,... (default ${DEFAULT-VALUE}).")
        String table;

        @Option(names = "--no-crops", description = "Leave sigma_max at 0 (ignore patch scores).")
        boolean noCrops;

        @Option(names = "--released-rank", description = "The released code's 'rank' (the sort permutation, spec defect 6) instead of the real rank; for comparison only.")
        boolean releasedRank;

        @Override
        public Integer call() throws IOException {
            long started = System.nanoTime();
            Data d = data(dataOptions, false);
            System.out.println("data: " + d.description());
            QualityAnnotation.Scores s = QualityAnnotation.read(scores);
            if (s.size() != d.dataset().size()) {
                throw new IllegalArgumentException(scores + " scores " + s.size() + " images, the dataset has " + d.dataset().size());
            }
            if (!(sigmaBad >= 0) || Double.isInfinite(sigmaBad)) throw new IllegalArgumentException("--sigma-bad must be non-negative and finite");
            SortedMap<Integer, Double> t = parseTable(table);
            System.out.printf("%d scores, patch sizes %s; the best %d keep sigma_min 0%n", s.size(), s.patchScores().keySet(),
                    (int) (s.size() * (1 - badFraction)));
            AnnotationFile.write(output.annotations(), QualityAnnotation.annotate(s, badFraction, sigmaBad, t, !noCrops, releasedRank));
            report(output.annotations(), d.dataset(), started);
            return 0;
        }

        static SortedMap<Integer, Double> parseTable(String text) {
            if (text.equals("latent")) return QualityAnnotation.LATENT_PATCH_TABLE;
            if (text.equals("pixel")) return CropRule.PIXEL_TABLE;
            TreeMap<Integer, Double> t = new TreeMap<>();
            for (String pair : text.split(",")) {
                String[] kv = pair.split("=");
                try {
                    if (kv.length != 2) throw new NumberFormatException();
                    t.put(Integer.parseInt(kv[0].strip()), Double.parseDouble(kv[1].strip()));
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("--table " + text + ": expected latent, pixel or K=S pairs such as 8=0.15,16=0.2");
                }
            }
            return t;
        }
    }
}
