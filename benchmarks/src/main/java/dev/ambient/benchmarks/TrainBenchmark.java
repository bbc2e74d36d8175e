package dev.ambient.benchmarks;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ambient.kernels.Device;
import dev.ambient.kernels.RandomNumbers;
import dev.ambient.kernels.Tensor;
import dev.ambient.model.checkpoint.ModelCheckpoint;
import dev.ambient.model.train.LearningRateSchedule;
import dev.ambient.model.train.Trainer;
import dev.ambient.model.train.TrainingBatch;
import dev.ambient.model.unet.Edm2Model;
import dev.ambient.model.unet.UNetConfig;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The full training step of a DESIGN.md workload, timed: noising, forward, Ambient loss (EDM's
 * case: sigma_tn = 0), backward, NaN guard, Adam, two power-function EMAs (EDM2's recipe).
 * Each workload runs in a JVM of its own ({@link #main}), so that its peak resident memory is
 * its own. The PyTorch side trains the same network from the same safetensors weights. On a
 * GPU each step is timed until the device has finished its work (the kernels are queued).
 */
public final class TrainBenchmark {

    /** The workloads of DESIGN.md: preset and batch (W3, EDM2-XS's shape on 64x64x4, is sized for a GPU). */
    static int batchOf(String workload) {
        return switch (workload.toUpperCase()) {
            case "W1" -> 32;
            case "W2" -> 64;
            case "W3" -> 128;
            default -> throw new IllegalArgumentException("unknown workload " + workload + " (W1, W2 or W3)");
        };
    }

    /**
     * Child-JVM entry: {@code TrainBenchmark WORKLOAD BATCH STEPS WARMUP DEVICE OUT.json [WEIGHTS]}
     * times STEPS steps after WARMUP untimed ones (which also let the JIT compiler finish: on two
     * cores its threads would otherwise take time from the kernels' OpenMP team) and writes images/s (median step), the losses and
     * the process's peak resident memory; with WEIGHTS it also saves the initial weights there
     * for the PyTorch side.
     */
    public static void main(String[] args) throws IOException {
        String workload = args[0];
        int batch = Integer.parseInt(args[1]), steps = Integer.parseInt(args[2]), warmup = Integer.parseInt(args[3]);
        Device device = BenchDevices.resolve(args[4]);
        Path out = Path.of(args[5]);
        UNetConfig config = UNetConfig.preset(workload);
        int r = config.imgResolution(), c = config.imgChannels();
        SplittableRandom random = new SplittableRandom(1);
        Map<String, Object> result = new LinkedHashMap<>();
        try (Edm2Model model = new Edm2Model(config, device, 1);
             Tensor images = RandomNumbers.normal(device, 2, 0, 0, batch, r, r, c)) {
            if (args.length > 6) ModelCheckpoint.save(model, Path.of(args[6]), Map.of("workload", workload));
            Trainer.Options options = Trainer.Options.edm2(new LearningRateSchedule(1e-3, 0, 0), 3);
            try (Trainer trainer = new Trainer(model, options)) {
                double[] seconds = new double[steps];
                double[] losses = new double[steps + warmup];
                for (int s = 0; s < steps + warmup; s++) {
                    double[] sigma = new double[batch];
                    for (int i = 0; i < batch; i++) sigma[i] = Math.exp(-0.4 + random.nextGaussian());
                    TrainingBatch b = TrainingBatch.clean(images, sigma);
                    long t0 = System.nanoTime();
                    Trainer.StepStats stats = trainer.step(List.of(b));
                    if (device.kind() == Device.Kind.CUDA) device.synchronize(); // Adam and the EMAs are still queued
                    double dt = (System.nanoTime() - t0) * 1e-9;
                    if (!Double.isFinite(stats.loss()) || stats.nonFinite() != 0) {
                        throw new IllegalStateException(workload + " step " + s + ": loss " + stats.loss() + ", "
                                + stats.nonFinite() + " non-finite gradient elements");
                    }
                    losses[s] = stats.loss();
                    if (s >= warmup) seconds[s - warmup] = dt;
                }
                double[] sorted = seconds.clone();
                Arrays.sort(sorted);
                result.put("workload", workload);
                result.put("batch", batch);
                result.put("steps", steps);
                result.put("warmup_steps", warmup);
                result.put("backend", device.kind().name().toLowerCase());
                result.put("device", device.name());
                result.put("threads", device.threads());
                result.put("parameters", model.parameters().trainedSize());
                result.put("images_per_s", batch / sorted[steps / 2]);
                result.put("step_ms_median", 1e3 * sorted[steps / 2]);
                result.put("step_ms_min", 1e3 * sorted[0]);
                result.put("activation_pool_mb", model.pool().bytesOwned() / 1048576.0);
                if (device.kind() == Device.Kind.CUDA) {
                    // cudaMemGetInfo's view: the whole card, this process's CUDA context and the parent JVM's included
                    long[] memory = device.memory();
                    result.put("device_memory_in_use_mb", (memory[1] - memory[0]) / 1048576.0);
                    result.put("device_memory_total_mb", memory[1] / 1048576.0);
                }
                result.put("losses", losses);
            }
        }
        result.put("peak_rss_mb", peakRssMb());
        new ObjectMapper().writeValue(out.toFile(), result);
    }

    /** VmHWM of this process, in MiB (Linux), or -1. */
    static double peakRssMb() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024.0;
            }
        } catch (IOException | NumberFormatException e) {
            // not Linux
        }
        return -1;
    }
}
