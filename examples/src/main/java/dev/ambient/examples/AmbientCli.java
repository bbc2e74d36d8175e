package dev.ambient.examples;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The programs behind {@code ./ambient}. */
@Command(name = "ambient", mixinStandardHelpOptions = true, version = "Ambient 0.1.0",
        description = "Train diffusion models on data of mixed quality.",
        subcommands = {Demo.class})
public final class AmbientCli implements Runnable {

    public static void main(String[] args) {
        System.exit(new CommandLine(new AmbientCli()).execute(args));
    }

    @Override
    public void run() {
        new CommandLine(this).usage(System.out);
    }
}
