package dev.ambient.examples;

import dev.ambient.kernels.Device;
import dev.ambient.model.train.EmaSchedule;
import dev.ambient.model.train.LearningRateSchedule;
import dev.ambient.model.train.SigmaFirstSampler;
import dev.ambient.model.train.Trainer;
import dev.ambient.model.train.TrainingRun;
import dev.ambient.model.unet.Edm2Model;
import dev.ambient.model.unet.UNetConfig;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The training options shared by train, demo and study. */
final class TrainingOptions {

    @Option(names = "--out", defaultValue = "runs/train", description = "Output folder (default ${DEFAULT-VALUE}).")
    Path out;

    @Option(names = "--resume", description = "Continue from the newest training state in --out.")
    boolean resume;

    @Option(names = "--kimg", defaultValue = "100", description = "Training length in thousands of images (default ${DEFAULT-VALUE}).")
    double kimg;

    @Option(names = "--batch", defaultValue = "32", description = "Batch size (default ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--lr", defaultValue = "0.01", description = "Adam's reference learning rate (default ${DEFAULT-VALUE}).")
    double lr;

    @Option(names = "--lr-decay-kimg", defaultValue = "0",
            description = "EDM2's inverse square-root decay after this many kimg (0: constant rate, the default).")
    double lrDecayKimg;

    @Option(names = "--rampup-kimg", defaultValue = "2", description = "Linear learning-rate warm-up (default ${DEFAULT-VALUE} kimg).")
    double rampupKimg;

    @Option(names = "--clip", defaultValue = "1", description = "Gradient clipping by global norm, 0 for none (default ${DEFAULT-VALUE}, the Ambient-o pixel recipe).")
    float clip;

    @Option(names = "--ema-std", split = ",", defaultValue = "0.05,0.10", description = "EDM2 power-function EMA widths (default ${DEFAULT-VALUE}).")
    List<Double> emaStd;

    @Option(names = "--p-mean", defaultValue = "-1.2", description = "Mean of ln(sigma) (default ${DEFAULT-VALUE}, EDM's pixel setting; EDM2 -0.4).")
    double pMean;

    @Option(names = "--p-std", defaultValue = "1.2", description = "Std of ln(sigma) (default ${DEFAULT-VALUE}; EDM2 1.0).")
    double pStd;

    @Option(names = "--s-max", defaultValue = "4", description = "Bound on the ambient loss factor; the buffer b = sqrt(1 + 1/(s_max - 1)) (default ${DEFAULT-VALUE}).")
    double sMax;

    @Option(names = "--released-pixel-trust", description = "The released pixel code's sigma_tn = min(sigma_min, sigma_max) instead of the paper's sigma_min.")
    boolean releasedPixelTrust;

    @Option(names = "--no-logvar", description = "Train without EDM2's learned loss uncertainty.")
    boolean noLogvar;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the weights, the sampler and the noise (default ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--checkpoint-kimg", defaultValue = "25", description = "Checkpoint and EMA snapshots every so many kimg (default ${DEFAULT-VALUE}).")
    double checkpointKimg;

    @Option(names = "--grid-kimg", defaultValue = "25", description = "A grid of samples every so many kimg, 0 for only at the end (default ${DEFAULT-VALUE}).")
    double gridKimg;

    @Option(names = "--grid-images", defaultValue = "64", description = "Images per grid (default ${DEFAULT-VALUE}).")
    int gridImages;

    @Option(names = "--sampler-steps", defaultValue = "18", description = "Heun steps for the grids (default ${DEFAULT-VALUE}).")
    int samplerSteps;

    @Option(names = "--status-seconds", defaultValue = "10", description = "Seconds between status lines (default ${DEFAULT-VALUE}).")
    double statusSeconds;

    @Option(names = "--device", defaultValue = "auto", description = "auto, cpu, cuda or cuda:N (default ${DEFAULT-VALUE}).")
    String device;

    TrainingRun.Summary run(DataOptions.Prepared p, UNetConfig config, PrintStream log) throws IOException {
        Device d = device.equals("auto") ? Device.auto() : Device.parse(device);
        List<EmaSchedule> emas = new ArrayList<>();
        for (double std : emaStd) emas.add(EmaSchedule.powerFunction(std));
        LearningRateSchedule schedule = new LearningRateSchedule(lr, lrDecayKimg * 1000 / batch, rampupKimg * 1000);
        Trainer.Options options = new Trainer.Options(schedule, 0.9f, 0.99f, 1e-8f, clip, emas, !noLogvar, seed);
        SigmaFirstSampler.Config samplerConfig = new SigmaFirstSampler.Config(pMean, pStd, sMax, 0.5, releasedPixelTrust, 10_000);
        try (Edm2Model model = new Edm2Model(config, d, seed); Trainer trainer = new Trainer(model, options)) {
            log.printf("network: %dx%dx%d, channels %d x %s, %d blocks/level, attention at %s, %s; %.2fM parameters on %s%n",
                    config.imgResolution(), config.imgResolution(), config.imgChannels(), config.modelChannels(),
                    java.util.Arrays.toString(config.channelMult()), config.numBlocks(), java.util.Arrays.toString(config.attnResolutions()),
                    config.labelDim() > 0 ? config.labelDim() + " classes" : "unconditional", model.parameters().trainedSize() / 1e6, d);
            SigmaFirstSampler sampler = new SigmaFirstSampler(p.annotations(), samplerConfig, seed);
            TrainingRun.Settings settings = new TrainingRun.Settings(batch, Math.round(kimg * 1000), Math.round(checkpointKimg * 1000),
                    Math.round(gridKimg * 1000), gridImages, samplerSteps, statusSeconds);
            TrainingRun run = new TrainingRun(p.dataset(), trainer, sampler, settings, out, log);
            if (resume) {
                Path state = TrainingRun.latestState(out);
                if (state == null) throw new IllegalArgumentException("--resume: no training-state-*.safetensors in " + out);
                run.resume(state);
            }
            return run.run();
        }
    }

    static String duration(double seconds) {
        long s = Math.round(seconds);
        return s >= 3600 ? String.format("%dh%02dm", s / 3600, s / 60 % 60) : String.format("%dm%02ds", s / 60, s % 60);
    }
}
