package dev.ambient.examples;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ambient.kernels.Device;
import dev.ambient.model.annotate.AnnotationFile;
import dev.ambient.model.annotate.AnnotationTable;
import dev.ambient.model.checkpoint.SafeTensors;
import dev.ambient.model.corrupt.Corrupter;
import dev.ambient.model.data.ProceduralShapes;
import dev.ambient.model.data.ImageDataset;
import dev.ambient.model.eval.EvaluationReport;
import dev.ambient.model.eval.Evaluator;
import dev.ambient.model.eval.FeatureNetwork;
import dev.ambient.model.eval.Plots;
import dev.ambient.model.train.TrainingRun;
import dev.ambient.model.unet.UNetConfig;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.function.Function;
import java.util.stream.IntStream;
import java.util.stream.Stream;

/**
 * {@code ./ambient study}: the paper's comparison at a scale this machine runs. Every method gets
 * the same budget and the same seeds; each run's EMA snapshots along the way are sampled and
 * evaluated, so the result is a curve per method, not one point. Runs that finished are kept
 * and skipped when the study is started again with the same --out; an interrupted run resumes.
 */
@Command(name = "study", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Train and evaluate, with one budget and several seeds: clean-only (filtering), all-clean (everything as clean),",
                "ambient-fixed (fixed sigma_min), ambient-classifier (noise-classifier annotation); and out of distribution:",
                "target-only versus target-crops (other classes' crops at low noise, crop-classifier annotation).",
                "Writes summary.txt (mean ± std per method at the end of training, and the data themselves scored for scale), evaluations.jsonl,",
                "curves-fd-feat.png, curves-fd-pix.png, curves-recall.png (each method against training images) and per-run folders.",
                "Example: ./ambient study            (the built-in data, about 50 minutes on 2 cores)",
                "         ./ambient study --dataset cifar10 --data cifar-10-batches-bin --kimg 2000 --seeds 3"})
final class Study implements Callable<Integer> {

    static final List<String> ALL_METHODS = List.of("clean-only", "all-clean", "ambient-fixed", "ambient-classifier", "target-only", "target-crops");

    @Option(names = "--out", defaultValue = "runs/study", description = "Output folder (default ${DEFAULT-VALUE}).")
    Path out;

    @Option(names = "--dataset", defaultValue = "builtin", description = "builtin or cifar10 (default ${DEFAULT-VALUE}).")
    String dataset;

    @Option(names = "--data", paramLabel = "DIR", description = "CIFAR-10's binary batches, for --dataset cifar10.")
    Path data;

    @Option(names = "--methods", split = ",", description = "Which of " + "clean-only, all-clean, ambient-fixed, ambient-classifier, target-only, target-crops (default: all).")
    List<String> methods = new ArrayList<>(ALL_METHODS);

    @Option(names = "--seeds", defaultValue = "3", description = "Training seeds per method (default ${DEFAULT-VALUE}).")
    int seeds;

    @Option(names = "--kimg", defaultValue = "20", description = "Training budget per run in thousands of images (default ${DEFAULT-VALUE}).")
    double kimg;

    @Option(names = "--eval-kimg", defaultValue = "5", description = "Evaluate a snapshot every so many kimg (default ${DEFAULT-VALUE}).")
    double evalKimg;

    @Option(names = "--eval-images", defaultValue = "500", description = "Generated images per evaluation (default ${DEFAULT-VALUE}).")
    int evalImages;

    @Option(names = "--eval-steps", defaultValue = "12", description = "Heun steps for them (default ${DEFAULT-VALUE}).")
    int evalSteps;

    @Option(names = "--builtin-images", defaultValue = "256", description = "Training images of the built-in data (default ${DEFAULT-VALUE}: 26 clean ones, so clean-only sees each about 770 times and runs out of data).")
    int builtinImages;

    @Option(names = "--clean-fraction", defaultValue = "0.1", description = "Fraction left clean (default ${DEFAULT-VALUE}).")
    double cleanFraction;

    @Option(names = "--corrupt", defaultValue = "blur0-8", description = "Corruption of the rest (default ${DEFAULT-VALUE}, the paper's sigma_B = 0.8).")
    String corrupt;

    @Option(names = "--sigma-min", defaultValue = "1.89", description = "sigma_min of ambient-fixed (default ${DEFAULT-VALUE}, the paper's for blur0-8).")
    double sigmaMin;

    @Option(names = "--target-classes", split = ",", description = "Target classes of the out-of-distribution setting (default: circle for builtin, cat for CIFAR-10).")
    List<Integer> targetClasses;

    @Option(names = "--ood-classes", split = ",", description = "Classes whose crops are added (default: the other five shapes for builtin, dog for CIFAR-10).")
    List<Integer> oodClasses;

    @Option(names = "--batch", defaultValue = "32", description = "Batch size (default ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--ema-std", defaultValue = "0.10", description = "EDM2 power-function EMA width of the evaluated weights (default ${DEFAULT-VALUE}).")
    double emaStd;

    @Option(names = "--feature-steps", defaultValue = "1500", description = "Training steps of the feature network if it is not cached yet (default ${DEFAULT-VALUE}).")
    int featureSteps;

    @Option(names = "--features", paramLabel = "FILE", description = "Feature network (default: ./ambient evaluate's cache, trained there when missing).")
    Path features;

    @Option(names = "--device", defaultValue = "auto", description = "auto, cpu, cuda or cuda:N (default ${DEFAULT-VALUE}).")
    String device;

    private static final ObjectMapper JSON = new ObjectMapper();

    @Override
    public Integer call() throws Exception {
        long started = System.nanoTime();
        for (String m : methods) if (!ALL_METHODS.contains(m)) throw new IllegalArgumentException("--methods: unknown method " + m + "; expected " + ALL_METHODS);
        if (seeds < 1 || kimg <= 0 || evalKimg <= 0 || evalImages <= 3) throw new IllegalArgumentException("--seeds, --kimg, --eval-kimg must be positive and --eval-images > 3");
        boolean cifar = dataset.equals("cifar10");
        if (!cifar && !dataset.equals("builtin")) throw new IllegalArgumentException("--dataset " + dataset + ": builtin or cifar10");
        if (cifar && data == null) throw new IllegalArgumentException("--dataset cifar10 needs --data DIR (the binary batches)");
        List<Integer> target = targetClasses != null ? targetClasses : List.of(cifar ? 3 : 0);
        List<Integer> ood = oodClasses != null ? oodClasses : cifar ? List.of(5) : List.of(1, 2, 3, 4, 5);
        Files.createDirectories(out);
        PrintStream log = System.out;
        log.printf("Ambient study: %s, methods %s, %d seed(s), %.0f kimg each, evaluated every %.0f kimg on %d images (%d Heun steps)%n%n",
                dataset, methods, seeds, kimg, evalKimg, evalImages, evalSteps);

        // the reference sets (fresh draws for builtin, the test batch for CIFAR-10) and the feature network
        Evaluate.Reference reference = parse(new Evaluate.Reference(), referenceArgs(cifar, null));
        Evaluate.FeatureOptions featureOptions = parse(new Evaluate.FeatureOptions(), List.of("--feature-steps", Integer.toString(featureSteps)));
        Evaluate.Reference targetReference = parse(new Evaluate.Reference(), referenceArgs(cifar, target));
        Path evaluations = out.resolve("evaluations.jsonl");
        List<EvaluationReport> reports = readReports(evaluations);
        List<EvaluationReport> dataRows;
        try (FeatureNetwork features = reference.featureNetwork(featureOptions)) {
            Evaluator main = new Evaluator(features, reference.load());
            Evaluator targetOnly = methods.stream().anyMatch(m -> m.startsWith("target")) ? new Evaluator(features, targetReference.load()) : null;
            for (String method : methods) {
                boolean oodSetting = method.startsWith("target");
                for (int seed = 0; seed < seeds; seed++) {
                    Path dir = out.resolve(method).resolve("seed" + seed);
                    if (Files.isRegularFile(dir.resolve("evaluated"))) {
                        log.printf("== %s seed %d: done earlier (%s)%n", method, seed, dir);
                        continue;
                    }
                    log.printf("== %s seed %d -> %s%n", method, seed, dir);
                    train(method, seed, dir, cifar, target, ood, log);
                    List<EvaluationReport> runReports = evaluate(oodSetting ? targetOnly : main, method, seed, dir, log);
                    for (EvaluationReport r : runReports) {
                        Files.writeString(evaluations, JSON.writeValueAsString(r) + "\n", StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                                StandardOpenOption.APPEND);
                    }
                    reports.addAll(runReports);
                    Files.writeString(dir.resolve("evaluated"), "");
                    log.println();
                }
            }
            dataRows = dataRows(main, targetOnly, cifar, target);
        }
        summarize(reports, dataRows, log, System.nanoTime() - started);
        return 0;
    }

    private List<String> referenceArgs(boolean cifar, List<Integer> classes) {
        List<String> args = new ArrayList<>(List.of("--reference", cifar ? "cifar10:" + data : "builtin", "--device", device));
        if (!cifar) args.addAll(List.of("--resolution", "16", "--reference-images", classes == null ? "2000" : "6000"));
        if (classes != null) args.addAll(List.of("--classes", join(classes)));
        if (features != null) args.addAll(List.of("--features", features.toString()));
        return args;
    }

    /** The data options every method shares: the same images, the same corrupted ones. */
    private List<String> dataArgs(boolean cifar) {
        List<String> args = new ArrayList<>(cifar ? List.of("--data", "cifar10:" + data)
                : List.of("--data", "builtin", "--resolution", "16", "--builtin-images", Integer.toString(builtinImages)));
        args.addAll(List.of("--data-seed", "0"));
        return args;
    }

    private void train(String method, int seed, Path dir, boolean cifar, List<Integer> target, List<Integer> ood, PrintStream log) throws Exception {
        List<String> args = new ArrayList<>(dataArgs(cifar));
        boolean corrupted = !method.startsWith("target");
        if (corrupted) args.addAll(List.of("--corrupt", corrupt, "--clean-fraction", Double.toString(cleanFraction)));
        switch (method) {
            case "clean-only", "all-clean" -> args.addAll(List.of("--use", method));
            case "ambient-fixed" -> args.addAll(List.of("--use", "ambient", "--sigma-min", Double.toString(sigmaMin)));
            case "ambient-classifier" -> args.addAll(List.of("--use", "ambient", "--annotations", annotate("classifier", cifar, ood).toString()));
            case "target-crops" -> args.addAll(List.of("--use", "ambient", "--annotations", annotate("crops", cifar, ood).toString()));
            case "target-only" -> { }
            default -> throw new IllegalStateException(method);
        }
        args.addAll(List.of("--kimg", Double.toString(kimg), "--batch", Integer.toString(batch), "--seed", Integer.toString(seed),
                "--ema-std", Double.toString(emaStd), "--checkpoint-kimg", Double.toString(evalKimg), "--grid-kimg", Double.toString(kimg),
                "--status-seconds", "30", "--device", device, "--out", dir.toString()));
        if (TrainingRun.latestState(dir) != null) args.add("--resume");
        Train train = parse(new Train(), args);
        DataOptions.Prepared p = train.data.prepare();
        if (method.startsWith("target")) p = restrict(p, method.equals("target-only") ? target : union(target, ood));
        log.println("data: " + p.description());
        UNetConfig config = train.network.config(p.dataset().height(), p.dataset().channels(), 0);
        TrainingRun.Summary s = train.training.run(p, config, log);
        if (s.interrupted()) throw new InterruptedException("stopped by a signal; run the same command again to continue");
    }

    /** Keeps the samples of the given classes (and their annotations). */
    private static DataOptions.Prepared restrict(DataOptions.Prepared p, List<Integer> classes) {
        ImageDataset d = p.dataset();
        int[] keep = java.util.stream.IntStream.range(0, d.size()).filter(i -> classes.contains(d.label(i))).toArray();
        if (keep.length == 0) throw new IllegalArgumentException("no training image has a label in " + classes);
        AnnotationTable a = p.annotations();
        double[] lo = new double[keep.length], hi = new double[keep.length];
        int annotated = 0;
        for (int k = 0; k < keep.length; k++) {
            lo[k] = a.sigmaMin()[keep[k]];
            hi[k] = a.sigmaMax()[keep[k]];
            if (lo[k] > 0 || hi[k] > 0) annotated++;
        }
        return new DataOptions.Prepared(d.subset(keep), new AnnotationTable(lo, hi, annotated),
                p.description() + "; kept the " + keep.length + " samples of classes " + classes);
    }

    /** Runs an annotator once per study (the data do not change with the training seed); returns its file. */
    private Path annotate(String kind, boolean cifar, List<Integer> ood) throws Exception {
        Path dir = out.resolve("annotations-" + kind);
        Path file = dir.resolve(AnnotationFile.ANNOTATIONS);
        if (Files.isRegularFile(file)) return file;
        List<String> args = new ArrayList<>(List.of(kind));
        args.addAll(dataArgs(cifar));
        if (kind.equals("classifier")) args.addAll(List.of("--corrupt", corrupt, "--clean-fraction", Double.toString(cleanFraction)));
        else args.addAll(List.of("--ood-classes", join(ood)));
        args.addAll(List.of("--device", device, "--out", dir.toString()));
        System.out.println("-- ./ambient annotate " + String.join(" ", args));
        CommandLine cli = new CommandLine(new Annotate());
        int rc = cli.execute(args.toArray(String[]::new));
        if (rc != 0) throw new IllegalStateException("annotate " + kind + " failed (exit " + rc + ")");
        return file;
    }

    /**
     * The training data scored as if they were generated, to show the scale of the metrics: a
     * model that only copies its clean images (cycled to the evaluation's count), the corrupted
     * images themselves, and as many fresh clean images as an evaluation generates (the floor).
     */
    private List<EvaluationReport> dataRows(Evaluator main, Evaluator targetOnly, boolean cifar, List<Integer> target) throws IOException {
        List<String> args = new ArrayList<>(dataArgs(cifar));
        args.addAll(List.of("--corrupt", corrupt, "--clean-fraction", Double.toString(cleanFraction)));
        DataOptions data = parse(new Train(), args).data;
        ImageDataset clean = data.load();
        Corrupter.Result r = data.corrupt(clean);
        int n = clean.size();
        List<EvaluationReport> rows = new ArrayList<>();
        if (methods.stream().anyMatch(m -> !m.startsWith("target"))) {
            int[] good = IntStream.range(0, n).filter(i -> !r.corrupted(i)).toArray();
            int[] bad = IntStream.range(0, n).filter(r::corrupted).toArray();
            rows.add(scoreData(main, "data: copies of the " + good.length + " clean training images", r.dataset(), good));
            if (bad.length > 0) rows.add(scoreData(main, "data: the " + bad.length + " corrupted training images", r.dataset(), bad));
            ImageDataset fresh = cifar ? clean : ProceduralShapes.generate(evalImages, clean.height(), 5_000_000);
            rows.add(scoreData(main, "data: " + evalImages + (cifar ? " clean training images" : " fresh clean images"), fresh,
                    IntStream.range(0, Math.min(evalImages, fresh.size())).toArray()));
        }
        if (targetOnly != null) {
            int[] targets = IntStream.range(0, n).filter(i -> target.contains(clean.label(i))).toArray();
            if (targets.length > 0) rows.add(scoreData(targetOnly, "data: copies of the " + targets.length + " target training images", clean, targets));
        }
        return rows;
    }

    /** Evaluates the given images of d, cycled to the evaluation's count, as one generated set. */
    private EvaluationReport scoreData(Evaluator evaluator, String label, ImageDataset d, int[] indices) {
        int size = d.imageSize();
        float[] images = new float[evalImages * size];
        for (int k = 0; k < evalImages; k++) d.copyTo(indices[k % indices.length], images, k * size);
        return evaluator.evaluate(label, images, evalImages);
    }

    /** Samples and evaluates every EMA snapshot of a run, in order of training images. */
    private List<EvaluationReport> evaluate(Evaluator evaluator, String method, int seed, Path dir, PrintStream log) throws IOException {
        List<Path> snapshots;
        try (Stream<Path> files = Files.list(dir)) {
            snapshots = files.filter(f -> f.getFileName().toString().matches("network-snapshot-[\\d.]+-ema0\\.safetensors")).sorted().toList();
        }
        List<EvaluationReport> out = new ArrayList<>();
        Device d = device.equals("auto") ? Device.auto() : Device.parse(device);
        for (Path snapshot : snapshots) {
            long images = Long.parseLong(SafeTensors.read(snapshot).metadata().get("images"));
            long t0 = System.nanoTime();
            // the same noise for every method and seed: differences are the models'
            float[] generated = Evaluate.sample(snapshot, evalImages, evalSteps, 1_000_000, d);
            EvaluationReport r = evaluator.evaluate(method, generated, evalImages).withSeed(seed).withTrainingImages(images);
            log.printf("   %6.1f kimg: FD_feat %.2f, FD_pix %.4f, precision %.3f, recall %.3f, sharpness %.3f (%.0f s)%n", images / 1e3, r.fdFeat(),
                    r.fdPix(), r.precision(), r.recall(), r.sharpnessRatio(), (System.nanoTime() - t0) / 1e9);
            out.add(r);
        }
        return out;
    }

    private void summarize(List<EvaluationReport> reports, List<EvaluationReport> dataRows, PrintStream log, long nanos) throws IOException {
        long last = reports.stream().filter(r -> r.trainingImages() != null).mapToLong(EvaluationReport::trainingImages).max().orElse(0);
        // the final point of each run; runs end within one batch of the budget
        List<EvaluationReport> finals = reports.stream().filter(r -> r.trainingImages() != null && r.trainingImages() > last - batch).toList();
        StringBuilder text = new StringBuilder();
        text.append(String.format("Ambient study on %s: %d seed(s), %.0f kimg per run, %d generated images per evaluation%n", dataset, seeds, kimg, evalImages));
        text.append(String.format("Mean ± std over seeds after %.1f kimg (FD_feat, FD_pix lower is better; sharpness 1 = as sharp as the data):%n%n", last / 1e3));
        text.append(EvaluationReport.summaryTable(finals)).append('\n');
        text.append(verdict(finals));
        if (!dataRows.isEmpty()) {
            text.append(String.format("%nFor scale, the data scored as if generated (%d images each):%n%n", evalImages));
            text.append(EvaluationReport.table(dataRows));
        }
        text.append(String.format("%nTotal time of this invocation: %s%n", TrainingOptions.duration(nanos / 1e9)));
        Files.writeString(out.resolve("summary.txt"), text.toString());
        log.println();
        log.print(text);
        plotCurves(reports, "FD_feat", EvaluationReport::fdFeat, true, out.resolve("curves-fd-feat.png"));
        plotCurves(reports, "FD_pix", EvaluationReport::fdPix, true, out.resolve("curves-fd-pix.png"));
        plotCurves(reports, "recall", EvaluationReport::recall, false, out.resolve("curves-recall.png"));
        log.println("wrote " + out.resolve("summary.txt") + " and curves-fd-feat.png, curves-fd-pix.png, curves-recall.png beside it");
    }

    /** Whether the paper's claims hold here: c and d below a and b with the seed intervals apart, f below e. */
    static String verdict(List<EvaluationReport> finals) {
        Map<String, double[]> stats = new LinkedHashMap<>();
        Map<String, List<Double>> byMethod = new LinkedHashMap<>();
        for (EvaluationReport r : finals) byMethod.computeIfAbsent(r.label(), k -> new ArrayList<>()).add(r.fdFeat());
        byMethod.forEach((m, v) -> stats.put(m, meanStd(v)));
        StringBuilder s = new StringBuilder();
        for (String amb : List.of("ambient-fixed", "ambient-classifier")) {
            for (String base : List.of("clean-only", "all-clean")) s.append(compare(stats, amb, base));
        }
        s.append(compare(stats, "target-crops", "target-only"));
        return s.toString();
    }

    private static String compare(Map<String, double[]> stats, String better, String than) {
        double[] a = stats.get(better), b = stats.get(than);
        if (a == null || b == null) return "";
        String outcome = a[0] + a[1] < b[0] - b[1] ? "lower, intervals apart" : a[0] < b[0] ? "lower, intervals overlap" : "NOT lower";
        return String.format("FD_feat %-18s %.2f ± %.2f vs %-12s %.2f ± %.2f: %s%n", better, a[0], a[1], than, b[0], b[1], outcome);
    }

    static double[] meanStd(List<Double> v) {
        double mean = v.stream().mapToDouble(Double::doubleValue).average().orElse(Double.NaN), ss = 0;
        for (double x : v) ss += (x - mean) * (x - mean);
        return new double[] {mean, v.size() > 1 ? Math.sqrt(ss / (v.size() - 1)) : 0};
    }

    /** One line per method: the metric's mean over seeds against training images seen. */
    private static void plotCurves(List<EvaluationReport> reports, String name, Function<EvaluationReport, Double> metric, boolean logY, Path file)
            throws IOException {
        Map<String, TreeMap<Long, List<Double>>> curves = new LinkedHashMap<>();
        for (EvaluationReport r : reports) {
            Double v = metric.apply(r);
            if (v == null || r.trainingImages() == null) continue;
            curves.computeIfAbsent(r.label(), k -> new TreeMap<>()).computeIfAbsent(r.trainingImages(), k -> new ArrayList<>()).add(v);
        }
        if (curves.isEmpty()) return;
        List<Plots.Series> series = new ArrayList<>();
        curves.forEach((m, points) -> series.add(new Plots.Series(m, points.keySet().stream().mapToDouble(k -> k / 1e3).toArray(),
                points.values().stream().mapToDouble(v -> meanStd(v)[0]).toArray())));
        Plots.lineChart(file, name + " against training images (mean over seeds)", "training images (kimg)", name, series, logY,
                Plots.DEFAULT_WIDTH, Plots.DEFAULT_HEIGHT);
    }

    private static List<EvaluationReport> readReports(Path file) throws IOException {
        List<EvaluationReport> out = new ArrayList<>();
        if (!Files.isRegularFile(file)) return out;
        int line = 0;
        for (String text : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            line++;
            if (text.isBlank()) continue;
            try {
                out.add(EvaluationReport.fromJson(text));
            } catch (IOException | IllegalArgumentException e) {
                throw new IOException(file + " line " + line + ": not an evaluation report (" + e.getMessage() + ")");
            }
        }
        return out;
    }

    private static <T> T parse(T command, List<String> args) {
        new CommandLine(command).parseArgs(args.toArray(String[]::new));
        return command;
    }

    private static List<Integer> union(List<Integer> a, List<Integer> b) {
        List<Integer> u = new ArrayList<>(a);
        for (int x : b) if (!u.contains(x)) u.add(x);
        return u;
    }

    private static String join(List<Integer> v) {
        return String.join(",", v.stream().map(String::valueOf).toList());
    }
}
