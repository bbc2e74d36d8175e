package dev.ambient.examples;

import dev.ambient.kernels.Device;
import dev.ambient.model.train.ClassifierTrainer;
import dev.ambient.model.unet.EncoderClassifier;
import dev.ambient.model.unet.UNetConfig;
import picocli.CommandLine.Option;

import java.util.List;

/**
 * The annotators' classifier: EDM2's UNet encoder with a pooled head, small by default so that
 * annotation of the built-in data takes minutes on a laptop's CPU.
 */
final class ClassifierOptions {

    @Option(names = "--cls-channels", defaultValue = "16", description = "Classifier model_channels (default ${DEFAULT-VALUE}).")
    int channels;

    @Option(names = "--cls-mult", split = ",", defaultValue = "1,2", description = "Classifier channel_mult per level (default ${DEFAULT-VALUE}).")
    List<Integer> mult;

    @Option(names = "--cls-blocks", defaultValue = "1", description = "Classifier blocks per level (default ${DEFAULT-VALUE}).")
    int blocks;

    @Option(names = "--cls-attn", split = ",", description = "Classifier attention resolutions (default: none).")
    List<Integer> attention;

    @Option(names = "--cls-dropout", defaultValue = "0", description = "Classifier dropout (default ${DEFAULT-VALUE}; the reference's DDPM++ classifier used 0.13).")
    double dropout;

    @Option(names = "--cls-steps", defaultValue = "600", description = "Classifier training steps (default ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--cls-batch", defaultValue = "32", description = "Classifier batch, half of each class (default ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--cls-lr", defaultValue = "0.01", description = "Classifier Adam learning rate (default ${DEFAULT-VALUE}; Adam 0.9/0.999, clipping at 1 as the reference).")
    double lr;

    @Option(names = "--eval-batch", defaultValue = "256", description = "Classifier inputs per inference pass (default ${DEFAULT-VALUE}).")
    int evalBatch;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the classifier's weights, batches and noise (default ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--device", defaultValue = "auto", description = "cpu, cuda, cuda:N or auto (default ${DEFAULT-VALUE}).")
    String device;

    UNetConfig config(int resolution, int channelsIn) {
        int[] m = mult.stream().mapToInt(Integer::intValue).toArray();
        int[] attn = attention == null ? new int[0] : attention.stream().mapToInt(Integer::intValue).toArray();
        UNetConfig d = UNetConfig.edm2(resolution, channelsIn, 0, channels, m, blocks, attn, dropout);
        // heads of at most the narrowest attention width, so small classifiers can have attention
        int perHead = Math.min(d.channelsPerHead(), channels);
        return new UNetConfig(resolution, channelsIn, 0, channels, m, null, null, blocks, attn, dropout, d.labelBalance(),
                d.concatBalance(), d.resBalance(), d.attnBalance(), d.clipAct(), perHead, d.logvarChannels());
    }

    Device device() {
        return device.equals("auto") ? Device.auto() : Device.parse(device);
    }

    EncoderClassifier network(UNetConfig config, Device d) {
        return new EncoderClassifier(config, 1, d, seed);
    }

    ClassifierTrainer.Options optimizer() {
        if (steps < 0 || batch < 2) throw new IllegalArgumentException("--cls-steps must be >= 0 and --cls-batch >= 2");
        return ClassifierTrainer.Options.reference(lr, 0, seed);
    }

    String describe(EncoderClassifier model) {
        UNetConfig c = model.config();
        return String.format("classifier: EDM2 encoder, %d channels, mult %s, %d block(s) per level, %,d parameters; %d steps of %d images",
                c.modelChannels(), mult, c.numBlocks(), model.parameters().trainedSize(), steps, batch);
    }
}
