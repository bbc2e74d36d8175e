package dev.ambient.examples;

import dev.ambient.model.train.TrainingRun;
import dev.ambient.model.unet.UNetConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

import java.util.concurrent.Callable;

/** {@code ./ambient train}: Ambient-o training of EDM2's UNet on annotated data of mixed quality. */
@Command(name = "train", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Train EDM2's UNet with Ambient-o: every sample is used at the noise levels its annotation allows.",
                "Example: ./ambient train --corrupt blur0-8 --clean-fraction 0.1 --sigma-min 1.89 --kimg 200 --out runs/ambient"})
final class Train implements Callable<Integer> {

    @Mixin
    DataOptions data;

    @Mixin
    NetworkOptions network;

    @Mixin
    TrainingOptions training;

    @Override
    public Integer call() throws Exception {
        DataOptions.Prepared p = data.prepare();
        System.out.println("data: " + p.description());
        UNetConfig config = network.config(p.dataset().height(), p.dataset().channels(), p.dataset().hasLabels() ? p.dataset().labelCount() : 0);
        TrainingRun.Summary s = training.run(p, config, System.out);
        System.out.printf("trained %.1f kimg in %s%s; outputs in %s%n", s.imagesSeen() / 1e3, TrainingOptions.duration(s.seconds()),
                s.interrupted() ? " (stopped by a signal; continue with --resume)" : "", training.out.toAbsolutePath());
        return 0;
    }
}
