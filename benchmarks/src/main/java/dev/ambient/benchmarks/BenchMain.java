package dev.ambient.benchmarks;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.ambient.kernels.Device;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;
import org.openjdk.jmh.runner.options.VerboseMode;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code ./ambient bench}: the machine's ceilings and the kernel benchmarks, as a table and JSON. */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Measure the machine's ceilings and the kernels' speed.",
        subcommands = {BenchMain.Peak.class, BenchMain.Kernels.class, BenchMain.Train.class})
public final class BenchMain implements Runnable {

    static final String NATIVE_ACCESS = "--enable-native-access=ALL-UNNAMED";

    public static void main(String[] args) {
        System.exit(new CommandLine(new BenchMain()).execute(args));
    }

    @Override
    public void run() {
        new CommandLine(this).usage(System.out);
    }

    /** The FMA peak and memory bandwidth of a device, the denominators of peak_fraction. */
    record Ceilings(Device device, double gflops, double gbPerS) {
        static Ceilings measure(Device device, double seconds) {
            double gflops = device.measureFmaPeak(seconds);
            double gbs = device.measureMemoryBandwidth(1L << 30, seconds);
            return new Ceilings(device, gflops, gbs);
        }

        Map<String, Object> toJson() {
            Map<String, Object> json = new LinkedHashMap<>();
            json.put("backend", device.kind().name().toLowerCase());
            json.put("device", device.name());
            json.put("threads", device.threads());
            json.put("fma_peak_gflops", round(gflops));
            json.put("memory_bandwidth_gbs", round(gbPerS));
            return json;
        }
    }

    @Command(name = "train", mixinStandardHelpOptions = true,
            description = "Time the full train step (noising, forward, loss, backward, Adam, EMA) of DESIGN.md's workloads.")
    static final class Train implements Callable<Integer> {
        @Option(names = "--workload", defaultValue = "W1", split = ",", description = "W1, W2 (CPU-sized) or W3 (GPU-sized; on a CPU only as a smoke run, e.g. --batch 1 --steps 1 --warmup 0); "
                + "a comma list runs several (default ${DEFAULT-VALUE}).")
        List<String> workloads;

        @Option(names = "--steps", description = "Timed steps (default: 30 for W1, 5 otherwise).")
        Integer steps;

        @Option(names = "--warmup", description = "Untimed steps first (default: 30 for W1, 3 otherwise; PyTorch gets the same). "
                + "W1's steps are short enough that the JIT compilers were still at work after 10, in the timed steps.")
        Integer warmup;

        @Option(names = "--batch", description = "Override the workload's batch size.")
        Integer batch;

        @Option(names = "--vs-torch", description = "Also train the same network from the same weights in PyTorch "
                + "(/usr/bin/python3 or $AMBIENT_PYTHON), on the same device: float32 on the CPU, bf16 autocast on a GPU.")
        boolean vsTorch;

        @Option(names = "--rounds", description = "Measure each side this many times, alternating, and report medians "
                + "(default: 3 with --vs-torch, else 1).")
        Integer rounds;

        @Option(names = "--json", paramLabel = "FILE", description = "Write the results as JSON.")
        Path json;

        @Option(names = "--device", defaultValue = "auto", description = "auto, cpu, cuda or cuda:N.")
        String device;

        @Override
        public Integer call() throws Exception {
            if (rounds != null && rounds < 1) {
                System.err.println("bench train: --rounds must be at least 1, not " + rounds);
                return 2;
            }
            Device d = BenchDevices.resolve(device);
            if (vsTorch) {
                String why = TorchEdm2.unavailable(d);
                if (why != null) {
                    System.err.println("bench train --vs-torch: " + why);
                    return 2;
                }
            }
            List<Map<String, Object>> results = new ArrayList<>();
            Path dir = Files.createTempDirectory("ambient-train-bench");
            try {
                for (String w : workloads) {
                    String workload = w.toUpperCase();
                    int b = batch != null ? batch : TrainBenchmark.batchOf(workload);
                    int n = steps != null ? steps : workload.equals("W1") ? 30 : 5;
                    int w0 = warmup != null ? warmup : workload.equals("W1") ? 30 : 3;
                    Path out = dir.resolve(workload + ".json"), weights = dir.resolve(workload + ".safetensors");
                    int rounds = this.rounds != null ? this.rounds : vsTorch ? 3 : 1;
                    System.out.printf("%s: batch %d, %d timed steps on %s (backend %s), %d round%s%s ...%n", workload, b, n, d,
                            backend(d), rounds, rounds == 1 ? "" : "s",
                            !vsTorch ? "" : " alternating with PyTorch" + (d.kind() == Device.Kind.CUDA ? " (same GPU, bf16 autocast)" : ""));
                    Map<String, Object> r = null;
                    List<Double> ours = new ArrayList<>(), theirs = new ArrayList<>(), ratios = new ArrayList<>();
                    double rss = 0, torchRss = 0, stepMin = Double.MAX_VALUE;
                    Map<String, Object> t = null;
                    for (int round = 0; round < rounds; round++) {
                        runChild(List.of(workload, Integer.toString(b), Integer.toString(n), Integer.toString(w0), device, out.toString(),
                                weights.toString()));
                        r = readJson(out);
                        ours.add(((Number) r.get("images_per_s")).doubleValue());
                        rss = Math.max(rss, ((Number) r.get("peak_rss_mb")).doubleValue());
                        stepMin = Math.min(stepMin, ((Number) r.get("step_ms_min")).doubleValue());
                        if (vsTorch) {
                            Path torchOut = dir.resolve(workload + "-torch.json");
                            List<String> torchArgs = new ArrayList<>(List.of(Integer.toString(b), Integer.toString(n), weights.toString(),
                                    torchOut.toString(), Integer.toString(w0)));
                            torchArgs.addAll(TorchEdm2.stepDevice(d.kind(), d.index()));
                            TorchEdm2.run(dir, dev.ambient.model.unet.UNetConfig.preset(workload), d.threads(), "step",
                                    torchArgs.toArray(String[]::new));
                            t = readJson(torchOut);
                            theirs.add(((Number) t.get("images_per_s")).doubleValue());
                            ratios.add(ours.getLast() / theirs.getLast());
                            torchRss = Math.max(torchRss, ((Number) t.get("peak_rss_mb")).doubleValue());
                        }
                        if (rounds > 1) {
                            System.out.printf("  round %d: %.1f images/s%s%n", round + 1, ours.getLast(),
                                    vsTorch ? String.format(", PyTorch %.1f, speedup %.2fx", theirs.getLast(), ratios.getLast()) : "");
                        }
                    }
                    // medians over the rounds: the machine's speed drifts between them, and both
                    // sides ran in every round
                    r.put("rounds", rounds);
                    r.put("images_per_s", round(median(ours)));
                    r.put("step_ms_median", 1e3 * b / median(ours));
                    r.put("step_ms_min", stepMin);
                    r.put("peak_rss_mb", rss);
                    if (rounds > 1) r.put("images_per_s_rounds", ours.stream().map(BenchMain::round).toList());
                    if (vsTorch) {
                        r.put("torch_images_per_s", round(median(theirs)));
                        r.put("speedup_vs_torch", round(median(ratios)));
                        if (rounds > 1) {
                            r.put("torch_images_per_s_rounds", theirs.stream().map(BenchMain::round).toList());
                            r.put("speedup_vs_torch_rounds", ratios.stream().map(BenchMain::round).toList());
                        }
                        r.put("torch_peak_rss_mb", round(torchRss));
                        r.put("torch", t.get("torch"));
                        r.put("torch_threads", t.get("threads"));
                        r.put("openblas_coretype", t.get("openblas_coretype"));
                        copyTorchDevice(t, r);
                    }
                    r.remove("losses");
                    results.add(r);
                    System.out.printf("%s on %s%s: %.1f images/s (median step %.0f ms), peak RSS %.0f MB%s%n", workload, d,
                            rounds > 1 ? " (medians of " + rounds + " rounds)" : "",
                            ((Number) r.get("images_per_s")).doubleValue(), ((Number) r.get("step_ms_median")).doubleValue(),
                            ((Number) r.get("peak_rss_mb")).doubleValue(),
                            vsTorch ? String.format("; PyTorch%s %.1f images/s, peak RSS %.0f MB; speedup %.2fx",
                                    r.get("torch_autocast_dtype") == null ? "" : " (" + r.get("torch_device_name") + ", "
                                            + r.get("torch_autocast_dtype") + " autocast)",
                                    ((Number) r.get("torch_images_per_s")).doubleValue(),
                                    ((Number) r.get("torch_peak_rss_mb")).doubleValue(),
                                    ((Number) r.get("speedup_vs_torch")).doubleValue()) : "");
                }
            } finally {
                try (var files = Files.list(dir)) {
                    for (Path f : files.toList()) Files.deleteIfExists(f);
                }
                Files.deleteIfExists(dir);
            }
            if (json != null) writeJson(json, Map.of("machine", machine(d), "workloads", results));
            return 0;
        }

        /** Runs TrainBenchmark.main in a fresh JVM with this one's class path and Ambient settings. */
        private static void runChild(List<String> args) throws IOException, InterruptedException {
            List<String> cmd = new ArrayList<>();
            cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
            cmd.add(NATIVE_ACCESS);
            System.getProperties().forEach((k, v) -> {
                if (k.toString().startsWith("ambient.")) cmd.add("-D" + k + "=" + v);
            });
            cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), TrainBenchmark.class.getName()));
            cmd.addAll(args);
            int rc = new ProcessBuilder(cmd).inheritIO().start().waitFor();
            if (rc != 0) throw new IOException("the train benchmark of " + args.getFirst() + " failed (exit " + rc + ")");
        }

        private static Map<String, Object> machine(Device d) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("device", d.name());
            m.put("backend", backend(d));
            m.put("threads", d.threads());
            m.put("cpus", Runtime.getRuntime().availableProcessors());
            if (d.kind() == Device.Kind.CUDA) m.put("host_cpu", Device.cpu().name());
            return m;
        }

        /**
         * Copies where PyTorch ran (from edm2_torch.py's JSON) into a workload's result, as
         * torch_device, torch_device_name (the card), torch_autocast_dtype (null: float32) and,
         * on a GPU, the cuDNN setting and PyTorch's peak GPU memory.
         */
        static void copyTorchDevice(Map<String, Object> torch, Map<String, Object> result) {
            result.put("torch_device", torch.getOrDefault("device", "cpu"));
            result.put("torch_autocast_dtype", torch.get("autocast_dtype"));
            for (String key : List.of("device_name", "cudnn_benchmark", "cuda_runtime", "gpu_peak_allocated_mb", "gpu_peak_reserved_mb")) {
                if (torch.containsKey(key)) result.put("torch_" + key, torch.get(key));
            }
        }
    }

    @Command(name = "peak", mixinStandardHelpOptions = true,
            description = "Measure the float32 FMA peak (GFLOP/s, all cores) and the memory bandwidth (GB/s).")
    static final class Peak implements Callable<Integer> {
        @Option(names = "--json", paramLabel = "FILE", description = "Also write the result as JSON.")
        Path json;

        @Option(names = "--seconds", defaultValue = "2", description = "Time per measurement (default ${DEFAULT-VALUE}).")
        double seconds;

        @Option(names = "--device", defaultValue = "auto", description = "auto, cpu, cuda or cuda:N.")
        String device;

        @Override
        public Integer call() throws IOException {
            Ceilings c = Ceilings.measure(BenchDevices.resolve(device), seconds);
            System.out.printf("device      %s%n", c.device());
            System.out.printf("FMA peak    %.1f GFLOP/s (float32, %d threads)%n", c.gflops(), c.device().threads());
            System.out.printf("bandwidth   %.1f GB/s (copy, read + write)%n", c.gbPerS());
            if (json != null) writeJson(json, c.toJson());
            return 0;
        }
    }

    @Command(name = "kernels", mixinStandardHelpOptions = true,
            description = "Run the JMH kernel benchmarks and report each case's time and fraction of the machine's peak.")
    static final class Kernels implements Callable<Integer> {
        @Option(names = "--json", paramLabel = "FILE", description = "Write the cases as a JSON array.")
        Path json;

        @Option(names = "--device", defaultValue = "auto", description = "auto, cpu, cuda or cuda:N.")
        String device;

        @Option(names = "--quick", description = "One short measurement per case (a smoke run, noisier).")
        boolean quick;

        @Option(names = "--only", paramLabel = "REGEX", description = "Run only the JMH benchmarks whose name matches.")
        String only;

        @Option(names = "--vs-torch", description = "Also run every case in PyTorch (/usr/bin/python3) and add torch_ms and speedup_vs_torch.")
        boolean vsTorch;

        @Option(names = "--check", paramLabel = "BASELINE", arity = "0..1", fallbackValue = "",
                description = "Compare each case's peak_fraction with the baseline (default benchmarks/baseline-<backend>.json); exit 1 naming any case that fell.")
        Path check;

        @Option(names = "--update-baseline", description = "Rewrite the baseline with this run (after a deliberate change).")
        boolean updateBaseline;

        @Option(names = "--tolerance", defaultValue = "0.25", description = "Allowed relative fall of peak_fraction for --check (default ${DEFAULT-VALUE}).")
        double tolerance;

        @Override
        public Integer call() throws IOException, RunnerException, InterruptedException {
            if (updateBaseline && only != null) {
                System.err.println("--update-baseline needs a complete run: drop --only");
                return 2;
            }
            Device d = BenchDevices.resolve(device);
            // torch_kernels.py times PyTorch on the CPU: against a GPU that would compare two machines
            String torchProblem = !vsTorch ? null : d.kind() == Device.Kind.CUDA
                    ? "PyTorch's kernel cases run on the CPU only; on a GPU, benchmarks/gpu/check.sh compares the whole train step"
                    : TorchComparison.unavailable();
            if (torchProblem != null) System.out.println("--vs-torch skipped: " + torchProblem);
            System.out.println("Measuring the ceilings of " + d + " (backend " + backend(d) + ") ...");
            Ceilings ceilings = Ceilings.measure(d, quick ? 0.5 : 2);
            System.out.printf("FMA peak %.1f GFLOP/s, bandwidth %.1f GB/s%n", ceilings.gflops(), ceilings.gbPerS());
            List<Class<?>> selected = KERNEL_BENCHMARKS.stream()
                    .filter(benchmark -> only == null || benchmark.getSimpleName().matches(".*(" + only + ").*"))
                    .toList();
            if (selected.isEmpty()) { // JMH without an include would run every benchmark on the class path
                System.err.println("--only " + only + " matches none of " + KERNEL_BENCHMARKS.stream().map(Class::getSimpleName).toList());
                return 2;
            }
            // PyTorch runs right before and right after each benchmark class, so that a slow
            // spell of the shared machine (they last minutes) does not land on one side only;
            // its time is the mean of the two medians.
            List<Map<String, Object>> cases = new ArrayList<>();
            for (Class<?> benchmark : selected) {
                TorchComparison.Result torchBefore = vsTorch && torchProblem == null
                        ? TorchComparison.run(plannedCases(benchmark, null), d.threads()) : null;
                var options = new OptionsBuilder()
                        .include(benchmark.getName() + "\\.")
                        .param("device", device)
                        .forks(1)
                        .jvmArgsAppend(NATIVE_ACCESS)
                        .warmupIterations(quick ? 1 : 2)
                        .warmupTime(TimeValue.seconds(1))
                        .measurementIterations(quick ? 2 : 5)
                        .measurementTime(TimeValue.seconds(1))
                        .verbosity(VerboseMode.SILENT)
                        .build();
                List<Map<String, Object>> classCases = new ArrayList<>();
                for (RunResult r : new Runner(options).run()) classCases.add(describe(r, ceilings));
                if (torchBefore != null) addTorch(classCases, torchBefore, TorchComparison.run(classCases, d.threads()));
                cases.addAll(classCases);
            }
            printTable(d, ceilings, cases);
            if (json != null) writeJson(json, cases);
            String backend = d.kind().name().toLowerCase();
            if (updateBaseline) Baseline.write(Baseline.defaultPath(backend), cases);
            if (check != null) {
                Path file = check.toString().isEmpty() ? Baseline.defaultPath(backend) : check;
                List<String> failures = Baseline.check(file, cases, tolerance, only == null);
                if (!failures.isEmpty()) {
                    System.out.println("Throughput check against " + file + " FAILED:");
                    failures.forEach(f -> System.out.println("  " + f));
                    return 1;
                }
                System.out.println("Throughput check against " + file + ": every case within " + Math.round(100 * tolerance) + "%.");
            }
            return 0;
        }
    }

    /** Adds torch_ms (the mean of the runs before and after ours) and speedup_vs_torch to each case. */
    private static void addTorch(List<Map<String, Object>> cases, TorchComparison.Result before, TorchComparison.Result after) {
        for (Map<String, Object> c : cases) {
            String key = c.get("op") + " " + c.get("shape");
            Double b = before.millis().get(key), a = after.millis().get(key);
            if (b != null && a != null) {
                double torchMs = (b + a) / 2;
                c.put("torch_ms", round(torchMs));
                c.put("speedup_vs_torch", round(torchMs / ((Number) c.get("ms")).doubleValue()));
                c.put("torch_ms_runs", List.of(b, a));
            } else {
                c.put("torch_skipped", after.skipped().getOrDefault(key, "no result"));
            }
            c.put("torch", after.settings());
        }
    }

    /** The cases a benchmark class will run: its kernelCase for each combination of its @Param values. */
    static List<Map<String, Object>> plannedCases(Class<?> benchmark, String only) {
        if (only != null && !benchmark.getSimpleName().matches(".*(" + only + ").*")) return List.of();
        List<Map<String, String>> combos = new ArrayList<>();
        combos.add(new LinkedHashMap<>());
        for (var field : benchmark.getFields()) {
            var param = field.getAnnotation(org.openjdk.jmh.annotations.Param.class);
            if (param == null) continue;
            List<Map<String, String>> next = new ArrayList<>();
            for (Map<String, String> combo : combos) {
                for (String value : param.value()) {
                    Map<String, String> m = new LinkedHashMap<>(combo);
                    m.put(field.getName(), value);
                    next.add(m);
                }
            }
            combos = next;
        }
        List<Map<String, Object>> cases = new ArrayList<>();
        for (Map<String, String> combo : combos) {
            try {
                KernelCase k = (KernelCase) benchmark.getMethod("kernelCase", Map.class).invoke(null, combo);
                cases.add(Map.of("op", k.op(), "shape", k.shape()));
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException(benchmark + " needs a public static kernelCase(Map)", e);
            }
        }
        return cases;
    }

    /** The JMH classes that {@code bench kernels} runs; each has a static kernelCase(Map). */
    static final List<Class<?>> KERNEL_BENCHMARKS = List.of(GemmBenchmark.class, ConvBenchmark.class,
            AttentionBenchmark.class, ElementwiseBenchmark.class, LayerBenchmark.class, TrainingKernelsBenchmark.class);

    /** The case a JMH result measured, from its class's kernelCase(params). */
    static KernelCase kernelCase(RunResult r) {
        String benchmark = r.getParams().getBenchmark();
        String className = benchmark.substring(0, benchmark.lastIndexOf('.'));
        Map<String, String> params = new LinkedHashMap<>();
        for (String key : r.getParams().getParamsKeys()) params.put(key, r.getParams().getParam(key));
        try {
            return (KernelCase) Class.forName(className).getMethod("kernelCase", Map.class).invoke(null, params);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(className + " needs a public static KernelCase kernelCase(Map<String, String>)", e);
        }
    }

    /** One JSON object per case: op, shape, backend, ms, gflops or gbs, and peak_fraction. */
    static Map<String, Object> describe(RunResult r, Ceilings ceilings) {
        KernelCase k = kernelCase(r);
        double ms = r.getPrimaryResult().getScore();
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("op", k.op());
        c.put("shape", k.shape());
        c.put("backend", ceilings.device().kind().name().toLowerCase());
        c.put("ms", round(ms));
        if (k.computeBound()) {
            double gflops = k.flops() / (ms * 1e6);
            c.put("gflops", round(gflops));
            c.put("peak_fraction", round(gflops / ceilings.gflops()));
        } else {
            double gbs = k.bytes() / (ms * 1e6);
            c.put("gbs", round(gbs));
            c.put("peak_fraction", round(gbs / ceilings.gbPerS()));
        }
        c.put("ms_error", round(r.getPrimaryResult().getScoreError()));
        c.put("device", ceilings.device().name());
        return c;
    }

    static void printTable(Device d, Ceilings ceilings, List<Map<String, Object>> cases) {
        System.out.printf("%nKernels on %s, backend %s (FMA peak %.1f GFLOP/s, bandwidth %.1f GB/s)%n", d, backend(d),
                ceilings.gflops(), ceilings.gbPerS());
        System.out.printf("%-24s %-18s %10s %17s %8s %10s %8s%n", "op", "shape", "ms", "rate", "of peak", "torch ms", "speedup");
        for (Map<String, Object> c : cases) {
            String rate = c.containsKey("gflops") ? String.format("%.1f GFLOP/s", (Double) c.get("gflops"))
                    : String.format("%.1f GB/s", (Double) c.get("gbs"));
            System.out.printf("%-24s %-18s %10.3f %17s %7.0f%% %10s %8s%n", c.get("op"), c.get("shape"), (Double) c.get("ms"), rate,
                    100 * ((Number) c.get("peak_fraction")).doubleValue(),
                    c.containsKey("torch_ms") ? String.format("%.3f", (Double) c.get("torch_ms")) : "-",
                    c.containsKey("speedup_vs_torch") ? String.format("%.2fx", (Double) c.get("speedup_vs_torch")) : "-");
        }
    }

    /** Writes JSON through a temporary file and a rename, so a reader never sees half a file. */
    static void writeJson(Path file, Object value) throws IOException {
        Path parent = file.toAbsolutePath().getParent();
        Files.createDirectories(parent);
        Path tmp = Files.createTempFile(parent, file.getFileName().toString(), ".tmp");
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(tmp.toFile(), value);
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        System.out.println("wrote " + file);
    }

    /** The median of a non-empty list (the mean of the middle two when its size is even). */
    static double median(List<Double> values) {
        List<Double> sorted = values.stream().sorted().toList();
        int m = sorted.size() / 2;
        return sorted.size() % 2 == 1 ? sorted.get(m) : (sorted.get(m - 1) + sorted.get(m)) / 2;
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> readJson(Path file) throws IOException {
        return new ObjectMapper().readValue(file.toFile(), LinkedHashMap.class);
    }

    /** The backend's name in tables and JSON: cpu or cuda. */
    static String backend(Device d) {
        return d.kind().name().toLowerCase(java.util.Locale.ROOT);
    }

    static double round(double v) {
        return Math.round(v * 1e4) / 1e4;
    }
}
