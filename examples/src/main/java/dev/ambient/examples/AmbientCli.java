package dev.ambient.examples;

import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.IOException;
import java.io.UncheckedIOException;

/** The programs behind {@code ./ambient}. */
@Command(name = "ambient", mixinStandardHelpOptions = true, version = "Ambient 0.1.0",
        description = "Train diffusion models on data of mixed quality.",
        subcommands = {Demo.class, Train.class, Annotate.class, Generate.class, Evaluate.class, Study.class, SelfCheck.class})
public final class AmbientCli implements Runnable {

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }

    /**
     * The command line with Ambient's error handling: bad input (an unreadable file, a malformed
     * annotation, an inconsistent option) is one line naming what was wrong, exit status 2;
     * anything else is a bug and keeps its stack trace.
     */
    static CommandLine commandLine() {
        CommandLine cli = new CommandLine(new AmbientCli());
        cli.setExecutionExceptionHandler((e, line, parsed) -> {
            if (e instanceof IllegalArgumentException || e instanceof IOException || e instanceof UncheckedIOException) {
                line.getErr().println("error: " + e.getMessage());
                return 2;
            }
            throw e;
        });
        return cli;
    }

    @Override
    public void run() {
        new CommandLine(this).usage(System.out);
    }
}
