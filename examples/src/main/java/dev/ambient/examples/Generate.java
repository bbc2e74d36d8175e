package dev.ambient.examples;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ambient.kernels.Device;
import dev.ambient.model.checkpoint.ModelCheckpoint;
import dev.ambient.model.checkpoint.SafeTensors;
import dev.ambient.model.sample.Generator;
import dev.ambient.model.sample.HeunSampler;
import dev.ambient.model.sample.ImageGrid;
import dev.ambient.model.unet.Edm2Model;
import dev.ambient.model.unet.UNetConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code ./ambient generate}: images from a network snapshot or training state, with the EDM Heun sampler. */
@Command(name = "generate", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Sample images from a trained network (a network-snapshot-*.safetensors or training-state-*.safetensors of ./ambient train).",
                "Example: ./ambient generate --network runs/demo/ambient-o/network-snapshot-000040-ema0.safetensors --count 64"})
final class Generate implements Callable<Integer> {

    @Option(names = "--network", required = true, paramLabel = "FILE", description = "Weights written by ./ambient train (they carry the network's shape).")
    Path network;

    @Option(names = "--count", defaultValue = "64", description = "Images (default ${DEFAULT-VALUE}).")
    int count;

    @Option(names = "--first-seed", defaultValue = "0", description = "Image i uses seed first-seed + i (default ${DEFAULT-VALUE}).")
    long firstSeed;

    @Option(names = "--class", paramLabel = "LABEL", description = "Class of every image for a conditional network (default: cycle through the classes).")
    Integer label;

    @Option(names = "--steps", defaultValue = "18", description = "Heun steps (default ${DEFAULT-VALUE}, EDM's; 2 * steps - 1 network calls).")
    int steps;

    @Option(names = "--sigma-min", defaultValue = "0.002", description = "Smallest noise level (default ${DEFAULT-VALUE}).")
    double sigmaMin;

    @Option(names = "--sigma-max", defaultValue = "80", description = "Largest noise level (default ${DEFAULT-VALUE}).")
    double sigmaMax;

    @Option(names = "--rho", defaultValue = "7", description = "Schedule exponent (default ${DEFAULT-VALUE}).")
    double rho;

    @Option(names = "--batch", defaultValue = "64", description = "Images per network call (default ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--out", defaultValue = "samples.png", description = "The PNG grid to write (default ${DEFAULT-VALUE}).")
    Path out;

    @Option(names = "--device", defaultValue = "auto", description = "auto, cpu, cuda or cuda:N (default ${DEFAULT-VALUE}).")
    String device;

    @Override
    public Integer call() throws IOException {
        if (count <= 0) throw new IllegalArgumentException("--count must be positive");
        UNetConfig config = networkOf(network);
        Device d = device.equals("auto") ? Device.auto() : Device.parse(device);
        try (Edm2Model model = Edm2Model.uninitialized(config, d)) {
            ModelCheckpoint.load(model, network);
            long[] seeds = new long[count];
            for (int i = 0; i < count; i++) seeds[i] = firstSeed + i;
            int[] labels = null;
            if (config.labelDim() > 0) {
                labels = new int[count];
                for (int i = 0; i < count; i++) labels[i] = label != null ? label : i % config.labelDim();
                if (label != null && (label < 0 || label >= config.labelDim())) {
                    throw new IllegalArgumentException("--class " + label + " is not in [0, " + config.labelDim() + ")");
                }
            } else if (label != null) {
                throw new IllegalArgumentException("--class given, but the network is unconditional");
            }
            long t0 = System.nanoTime();
            float[] images = Generator.generate(model, new HeunSampler(steps, sigmaMin, sigmaMax, rho), seeds, labels, batch);
            ImageGrid.writePng(out, images, count, config.imgResolution(), config.imgChannels(), (int) Math.ceil(Math.sqrt(count)));
            System.out.printf("wrote %d images (%d steps) to %s in %.1f s%n", count, steps, out.toAbsolutePath(), (System.nanoTime() - t0) * 1e-9);
        }
        return 0;
    }

    /** The network shape a training run stored with its weights. */
    static UNetConfig networkOf(Path file) throws IOException {
        if (!Files.isRegularFile(file)) throw new IOException(file + " does not exist");
        String json = SafeTensors.read(file).metadata().get("network");
        if (json == null) throw new IOException(file + " does not say which network it holds (no 'network' metadata; written by ./ambient train?)");
        return new ObjectMapper().readValue(json, UNetConfig.class);
    }
}
