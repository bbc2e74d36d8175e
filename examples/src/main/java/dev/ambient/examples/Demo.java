package dev.ambient.examples;

import dev.ambient.model.annotate.FixedAnnotation;
import dev.ambient.model.eval.EvaluationReport;
import dev.ambient.model.eval.Evaluator;
import dev.ambient.model.eval.FeatureNetwork;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code ./ambient demo}, the main job on the built-in default: the paper's setting in small. The
 * built-in coloured-shapes dataset (16x16) with 10% of its images clean and 90% blurred, every
 * blurred image annotated with a fixed sigma_min, and EDM2's UNet trained on all of it with
 * Ambient-o; then a grid of samples. With {@code --compare} the two baselines get the same
 * budget: the clean 10% alone (filtering) and everything treated as clean.
 */
@Command(name = "demo", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Ambient-o on the built-in data: 10% clean, 90% blurred (blur0-8), fixed annotation sigma_min = 1.89;",
                "trains, samples a grid and says where everything went. --compare adds the two baselines and a table of the evaluation metrics."})
final class Demo implements Callable<Integer> {

    @Option(names = "--kimg", defaultValue = "40", description = "Training length per run in thousands of images (default ${DEFAULT-VALUE}: about 3 minutes on 2 cores).")
    double kimg;

    @Option(names = "--compare", description = "Also train the baselines (clean data only; all data as clean) with the same budget, and evaluate all three.")
    boolean compare;

    @Option(names = "--out", defaultValue = "runs/demo", description = "Output folder (default ${DEFAULT-VALUE}).")
    Path out;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the data, the weights and the noise (default ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--device", defaultValue = "auto", description = "auto, cpu, cuda or cuda:N (default ${DEFAULT-VALUE}).")
    String device;

    @Override
    public Integer call() throws Exception {
        Map<String, String[]> runs = new LinkedHashMap<>();
        runs.put("ambient-o", new String[] {"--use", "ambient", "--sigma-min", Double.toString(FixedAnnotation.SIGMA_MIN_BLUR_0_8)});
        if (compare) {
            runs.put("clean-only", new String[] {"--use", "clean-only"});
            runs.put("all-clean", new String[] {"--use", "all-clean"});
        }
        System.out.printf("Ambient demo: %d run(s) of %.0f kimg on the built-in dataset (10%% clean, 90%% blur0-8)%n%n", runs.size(), kimg);
        Map<String, Path> results = new LinkedHashMap<>();
        for (var run : runs.entrySet()) {
            Path dir = out.resolve(run.getKey());
            System.out.println("== " + run.getKey() + " -> " + dir);
            List<String> args = new ArrayList<>(List.of("--data", "builtin", "--resolution", "16", "--builtin-images", "4096",
                    "--data-seed", Long.toString(seed), "--corrupt", "blur0-8", "--clean-fraction", "0.1",
                    "--kimg", Double.toString(kimg), "--out", dir.toString(), "--seed", Long.toString(seed),
                    "--checkpoint-kimg", Double.toString(kimg), "--grid-kimg", "0", "--status-seconds", "20", "--device", device));
            args.addAll(List.of(run.getValue()));
            CommandLine cli = new CommandLine(new Train());
            cli.parseArgs(args.toArray(String[]::new));
            Train train = cli.getCommand();
            int rc = train.call();
            if (rc != 0) return rc;
            results.put(run.getKey(), dir);
            System.out.println();
        }
        if (compare) evaluate(results);
        System.out.println("Written:");
        for (var r : results.entrySet()) {
            System.out.printf("  %-10s samples %s%n  %-10s EMA weights %s, statistics %s%n", r.getKey(),
                    newest(r.getValue(), "samples-"), "", newest(r.getValue(), "network-snapshot-"), r.getValue().resolve("stats.jsonl"));
        }
        return 0;
    }

    /**
     * The metrics of ./ambient evaluate for each run's final EMA weights: 500 images (12 Heun
     * steps) against 2,000 fresh built-in images; the feature network is trained on first use.
     */
    private void evaluate(Map<String, Path> results) throws IOException {
        System.out.println("Evaluating each run's final EMA weights (500 images, 12 Heun steps, against 2000 fresh built-in images):");
        Evaluate.Reference reference = new Evaluate.Reference();
        new CommandLine(reference).parseArgs("--reference", "builtin", "--resolution", "16", "--device", device);
        Evaluate.FeatureOptions featureOptions = new Evaluate.FeatureOptions();
        new CommandLine(featureOptions).parseArgs();
        List<EvaluationReport> reports = new ArrayList<>();
        try (FeatureNetwork features = reference.featureNetwork(featureOptions)) {
            Evaluator evaluator = new Evaluator(features, reference.load());
            for (var r : results.entrySet()) {
                Path snapshot = newest(r.getValue(), "network-snapshot-");
                float[] images = Evaluate.sample(snapshot, 500, 12, 1_000_000, reference.device());
                reports.add(evaluator.evaluate(r.getKey(), images, 500));
            }
        }
        System.out.println();
        System.out.print(EvaluationReport.table(reports));
        System.out.println("(lower FD is better; one seed each: ./ambient study gives several seeds and the curves)");
        System.out.println();
    }

    /** The last file in dir whose name starts with prefix (names carry zero-padded kimg). */
    static Path newest(Path dir, String prefix) throws IOException {
        try (var files = Files.list(dir)) {
            return files.filter(f -> f.getFileName().toString().startsWith(prefix)).sorted().reduce((a, b) -> b).orElse(null);
        }
    }
}
