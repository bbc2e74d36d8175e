package dev.ambient.model.train;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ambient.kernels.Tensor;
import dev.ambient.model.checkpoint.ModelCheckpoint;
import dev.ambient.model.checkpoint.TrainingCheckpoint;
import dev.ambient.model.data.BatchPrefetcher;
import dev.ambient.model.data.ImageDataset;
import dev.ambient.model.sample.Generator;
import dev.ambient.model.sample.HeunSampler;
import dev.ambient.model.sample.ImageGrid;
import dev.ambient.model.unet.Edm2Model;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Ambient-o's training loop over a dataset with per-sample annotations: the sigma-first sampler
 * picks (sample, sigma_t, sigma_tn) for each slot of a batch, a background thread gathers the
 * images, and the {@link Trainer} takes the step. Around it: status lines (progress bar, ETA,
 * images/s, the loss per noise-level bucket), statistics as JSON Lines, PNG grids sampled from
 * the first EMA, EMA snapshots and full-state checkpoints at intervals, at the end, and on
 * SIGINT/SIGTERM. A run resumed from its latest checkpoint continues bit for bit.
 *
 * <p>Files in the output folder: {@code stats.jsonl}, {@code training-state-<kimg>.safetensors}
 * (the two newest kept), {@code network-snapshot-<kimg>-ema<k>.safetensors},
 * {@code samples-<kimg>.png}.
 */
public final class TrainingRun {

    /** When to do what, in images seen; 0 turns a periodic action off (it still happens at the end). */
    public record Settings(int batch, long totalImages, long checkpointEvery, long gridEvery, int gridImages,
                           int samplerSteps, double statusSeconds) {
        public Settings {
            if (batch <= 0 || totalImages <= 0) throw new IllegalArgumentException("batch and totalImages must be positive");
            if (checkpointEvery < 0 || gridEvery < 0 || gridImages < 0 || samplerSteps <= 0) {
                throw new IllegalArgumentException("intervals must be non-negative and samplerSteps positive");
            }
        }
    }

    /** Upper edges of the noise-level buckets of the statistics (the last bucket is open). */
    static final double[] BUCKET_EDGES = {0.1, 0.5, 2, 10};
    static final String[] BUCKET_NAMES = {"<0.1", "0.1-0.5", "0.5-2", "2-10", ">=10"};

    private static final Pattern STATE_FILE = Pattern.compile("training-state-(\\d+)(?:\\.(\\d{3}))?\\.safetensors");
    private static final ObjectMapper JSON = new ObjectMapper();

    private final ImageDataset data;
    private final Trainer trainer;
    private final SigmaFirstSampler sampler;
    private final Settings settings;
    private final Path outDir;
    private final PrintStream log;

    public TrainingRun(ImageDataset data, Trainer trainer, SigmaFirstSampler sampler, Settings settings, Path outDir,
                       PrintStream log) {
        var c = trainer.model().config();
        if (data.height() != c.imgResolution() || data.width() != c.imgResolution() || data.channels() != c.imgChannels()) {
            throw new IllegalArgumentException("the dataset's images are " + data.height() + "x" + data.width() + "x" + data.channels()
                    + " but the network takes " + c.imgResolution() + "x" + c.imgResolution() + "x" + c.imgChannels());
        }
        if (sampler.size() != data.size()) {
            throw new IllegalArgumentException("the sampler has " + sampler.size() + " annotations for " + data.size() + " images");
        }
        if (c.labelDim() > 0 && !data.hasLabels()) throw new IllegalArgumentException("the network is conditional but the dataset has no labels");
        this.data = data;
        this.trainer = trainer;
        this.sampler = sampler;
        this.settings = settings;
        this.outDir = outDir;
        this.log = log;
    }

    /** The newest training state in {@code dir}, or null. */
    public static Path latestState(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) return null;
        try (Stream<Path> files = Files.list(dir)) {
            return files.filter(f -> STATE_FILE.matcher(f.getFileName().toString()).matches())
                    .max((a, b) -> Long.compare(imagesOf(a), imagesOf(b))).orElse(null);
        }
    }

    private static long imagesOf(Path f) {
        Matcher m = STATE_FILE.matcher(f.getFileName().toString());
        return m.matches() ? Long.parseLong(m.group(1)) * 1000 + (m.group(2) == null ? 0 : Long.parseLong(m.group(2))) : -1;
    }

    /** The file-name tag of a point in training: kimg zero-padded, with the odd images after a dot when it is not a whole kimg. */
    static String tag(long images) {
        return images % 1000 == 0 ? String.format("%06d", images / 1000) : String.format("%06d.%03d", images / 1000, images % 1000);
    }

    /** Restores the trainer, the model and the sampler from a training state written by a run. */
    public void resume(Path state) throws IOException {
        Map<String, String> meta = TrainingCheckpoint.load(trainer, state);
        String s = meta.get("sampler");
        if (s == null) throw new IOException(state + " has no sampler position (not written by a training run)");
        sampler.restore(JSON.readValue(s, SigmaFirstSampler.State.class));
        log.printf("resumed from %s at %.1f kimg (step %d)%n", state, trainer.imagesSeen() / 1e3, trainer.step());
    }

    /** One batch as prepared on the background thread, with the sampler's position after it. */
    private record Prepared(SigmaFirstSampler.Draw[] draws, float[] images, int[] labels, SigmaFirstSampler.State after) {}

    /** What a run did. */
    public record Summary(long steps, long imagesSeen, long skippedSteps, double seconds, boolean interrupted) {}

    /** Trains until {@code totalImages} have been seen or a stop signal arrives; returns what it did. */
    public Summary run() throws IOException {
        Files.createDirectories(outDir);
        Edm2Model model = trainer.model();
        var c = model.config();
        int batch = settings.batch();
        Tensor images = Tensor.allocate(model.device(), batch, c.imgResolution(), c.imgResolution(), c.imgChannels());
        StopSignal stop = StopSignal.install();
        long skipped = 0, startImages = trainer.imagesSeen();
        long nextCheckpoint = next(trainer.imagesSeen(), settings.checkpointEvery());
        long nextGrid = next(trainer.imagesSeen(), settings.gridEvery());
        long t0 = System.nanoTime(), lastStatus = t0;
        SigmaFirstSampler.State samplerState = sampler.state();
        boolean labelled = c.labelDim() > 0;
        try (BatchPrefetcher<Prepared> prefetch = new BatchPrefetcher<>(() -> prepare(batch, labelled), 2);
             BufferedWriter stats = Files.newBufferedWriter(outDir.resolve("stats.jsonl"), StandardCharsets.UTF_8,
                     StandardOpenOption.CREATE, StandardOpenOption.APPEND)) {
            while (trainer.imagesSeen() < settings.totalImages() && !stop.requested()) {
                Prepared p = prefetch.next();
                images.copyFrom(p.images());
                double[] sigma = new double[batch], sigmaTn = new double[batch];
                long[] ids = new long[batch];
                int high = 0;
                for (int i = 0; i < batch; i++) {
                    sigma[i] = p.draws()[i].sigma();
                    sigmaTn[i] = p.draws()[i].sigmaTn();
                    ids[i] = p.draws()[i].index();
                    if (sigmaTn[i] > 0) high++;
                }
                long stepStart = System.nanoTime();
                Trainer.StepStats s = trainer.step(List.of(new TrainingBatch(images, sigma, sigmaTn, ids, p.labels(), null)));
                double stepSeconds = (System.nanoTime() - stepStart) * 1e-9;
                samplerState = p.after();
                if (s.skipped()) skipped++;
                writeStats(stats, s, sigma, high, batch / stepSeconds, skipped);
                long now = System.nanoTime();
                if ((now - lastStatus) * 1e-9 >= settings.statusSeconds() || trainer.imagesSeen() >= settings.totalImages()) {
                    status(s, sigma, (now - t0) * 1e-9, trainer.imagesSeen() - startImages);
                    lastStatus = now;
                }
                if (settings.checkpointEvery() > 0 && trainer.imagesSeen() >= nextCheckpoint
                        && trainer.imagesSeen() < settings.totalImages()) { // the last one is written below
                    checkpoint(samplerState);
                    nextCheckpoint = next(trainer.imagesSeen(), settings.checkpointEvery());
                }
                if (settings.gridEvery() > 0 && trainer.imagesSeen() >= nextGrid && trainer.imagesSeen() < settings.totalImages()) {
                    grid();
                    nextGrid = next(trainer.imagesSeen(), settings.gridEvery());
                }
            }
            checkpoint(samplerState);
            if (stop.requested()) {
                log.printf("stopped by a signal at %.2f kimg after saving; --resume continues from here%n", trainer.imagesSeen() / 1e3);
            } else if (settings.gridImages() > 0) {
                grid();
            }
            return new Summary(trainer.step(), trainer.imagesSeen(), skipped, (System.nanoTime() - t0) * 1e-9, stop.requested());
        } finally {
            images.close();
            stop.finished();
        }
    }

    private static long next(long seen, long every) {
        return every <= 0 ? Long.MAX_VALUE : (seen / every + 1) * every;
    }

    private Prepared prepare(int batch, boolean labelled) {
        SigmaFirstSampler.Draw[] draws = sampler.next(batch);
        int[] indices = new int[batch];
        for (int i = 0; i < batch; i++) indices[i] = draws[i].index();
        float[] pixels = new float[batch * data.imageSize()];
        data.gather(indices, pixels);
        int[] labels = null;
        if (labelled) {
            labels = new int[batch];
            for (int i = 0; i < batch; i++) labels[i] = data.label(indices[i]);
        }
        return new Prepared(draws, pixels, labels, sampler.state());
    }

    private void writeStats(BufferedWriter out, Trainer.StepStats s, double[] sigma, int highNoise, double imagesPerSecond,
                            long skipped) throws IOException {
        Map<String, Object> line = new LinkedHashMap<>();
        line.put("step", s.step());
        line.put("kimg", trainer.imagesSeen() / 1e3);
        line.put("loss", finiteOrNull(s.loss()));
        line.put("loss_by_sigma", bucketMeans(s.sampleLosses(), sigma));
        line.put("grad_norm", finiteOrNull(s.gradNorm()));
        line.put("lr", s.learningRate());
        line.put("high_noise_fraction", (double) highNoise / sigma.length);
        line.put("nonfinite_grad_elements", s.nonFinite());
        line.put("skipped", s.skipped());
        line.put("skipped_total", skipped);
        line.put("images_per_s", imagesPerSecond);
        out.write(JSON.writeValueAsString(line));
        out.newLine();
        out.flush();
    }

    private static Object finiteOrNull(double v) {
        return Double.isFinite(v) ? v : null;
    }

    static Map<String, Double> bucketMeans(double[] losses, double[] sigma) {
        double[] sum = new double[BUCKET_NAMES.length];
        int[] count = new int[BUCKET_NAMES.length];
        for (int i = 0; i < losses.length; i++) {
            int b = 0;
            while (b < BUCKET_EDGES.length && sigma[i] >= BUCKET_EDGES[b]) b++;
            sum[b] += losses[i];
            count[b]++;
        }
        Map<String, Double> out = new LinkedHashMap<>();
        for (int b = 0; b < sum.length; b++) if (count[b] > 0) out.put(BUCKET_NAMES[b], sum[b] / count[b]);
        return out;
    }

    private void status(Trainer.StepStats s, double[] sigma, double elapsed, long imagesThisRun) {
        double done = Math.min(1, (double) trainer.imagesSeen() / settings.totalImages());
        int width = 24, filled = (int) Math.min(width, Math.round(done * width));
        double rate = imagesThisRun / Math.max(elapsed, 1e-9);
        double eta = Math.max(0, settings.totalImages() - trainer.imagesSeen()) / Math.max(rate, 1e-9);
        StringBuilder buckets = new StringBuilder();
        bucketMeans(s.sampleLosses(), sigma).forEach((k, v) -> buckets.append(String.format(Locale.ROOT, " %s:%.3g", k, v)));
        log.printf(Locale.ROOT, "[%s%s] %5.1f%% %8.2f kimg  loss %.4g  %.0f img/s  ETA %s |%s%n", "#".repeat(filled),
                "-".repeat(width - filled), 100 * done, trainer.imagesSeen() / 1e3, s.loss(), rate, duration(eta), buckets);
    }

    static String duration(double seconds) {
        long s = Math.round(seconds);
        return s >= 3600 ? String.format("%dh%02dm", s / 3600, s / 60 % 60) : String.format("%dm%02ds", s / 60, s % 60);
    }

    private void checkpoint(SigmaFirstSampler.State samplerState) throws IOException {
        String tag = tag(trainer.imagesSeen());
        Path state = outDir.resolve("training-state-" + tag + ".safetensors");
        String network = JSON.writeValueAsString(trainer.model().config());
        TrainingCheckpoint.save(trainer, state, Map.of("sampler", JSON.writeValueAsString(samplerState), "network", network));
        for (int k = 0; k < trainer.emaCount(); k++) {
            ModelCheckpoint.save(trainer.model().parameters(), trainer.ema(k),
                    outDir.resolve("network-snapshot-" + tag + "-ema" + k + ".safetensors"),
                    Map.of("kimg", tag, "images", Long.toString(trainer.imagesSeen()), "network", network, "ema", Integer.toString(k)));
        }
        List<Path> states = new ArrayList<>();
        try (Stream<Path> files = Files.list(outDir)) {
            files.filter(f -> STATE_FILE.matcher(f.getFileName().toString()).matches()).forEach(states::add);
        }
        states.sort((a, b) -> Long.compare(imagesOf(b), imagesOf(a)));
        for (int i = 2; i < states.size(); i++) Files.deleteIfExists(states.get(i)); // keep the two newest
        log.printf("saved %s%n", state);
    }

    private void grid() throws IOException {
        Edm2Model model = trainer.model();
        var c = model.config();
        if (c.imgChannels() != 1 && c.imgChannels() != 3) return;
        int n = settings.gridImages();
        long[] seeds = new long[n];
        for (int i = 0; i < n; i++) seeds[i] = i;
        int[] labels = null;
        if (c.labelDim() > 0) {
            labels = new int[n];
            for (int i = 0; i < n; i++) labels[i] = i % c.labelDim();
        }
        float[] samples;
        try (Edm2Model ema = Edm2Model.uninitialized(c, model.device())) {
            ema.parameters().copyFrom(model.parameters(), trainer.emaCount() > 0 ? trainer.ema(0) : model.parameters().values());
            samples = Generator.generate(ema, new HeunSampler(settings.samplerSteps(), 0.002, 80, 7), seeds, labels, Math.min(n, 64));
        }
        Path png = outDir.resolve("samples-" + tag(trainer.imagesSeen()) + ".png");
        ImageGrid.writePng(png, samples, n, c.imgResolution(), c.imgChannels(), (int) Math.ceil(Math.sqrt(n)));
        log.printf("wrote %s%n", png);
    }

    /** SIGINT/SIGTERM ask the loop to stop after its step and checkpoint; the JVM waits for that. */
    static final class StopSignal {
        private volatile boolean requested;
        private final CountDownLatch done = new CountDownLatch(1);
        private Thread hook;

        static StopSignal install() {
            StopSignal s = new StopSignal();
            s.hook = new Thread(() -> {
                s.requested = true;
                try {
                    s.done.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }, "ambient-stop");
            Runtime.getRuntime().addShutdownHook(s.hook);
            return s;
        }

        boolean requested() {
            return requested;
        }

        void finished() {
            done.countDown();
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException e) {
                // shutting down already: the hook is running and now returns
            }
        }
    }
}
