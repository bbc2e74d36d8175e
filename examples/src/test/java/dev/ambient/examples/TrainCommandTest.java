package dev.ambient.examples;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TrainCommandTest {

    static final String[] TINY = {"--resolution", "8", "--builtin-images", "64", "--batch", "16", "--channels", "8",
            "--mult", "1,2", "--blocks", "1", "--attn", "4", "--channels-per-head", "4", "--grid-images", "4", "--sampler-steps", "2",
            "--status-seconds", "0", "--checkpoint-kimg", "0.032", "--grid-kimg", "0"};

    static int run(StringWriter err, String... args) {
        CommandLine cli = AmbientCli.commandLine();
        cli.setErr(new PrintWriter(err, true));
        return cli.execute(args);
    }

    static String[] args(Path out, double kimg, String... extra) {
        List<String> a = new ArrayList<>(List.of("train", "--out", out.toString(), "--kimg", Double.toString(kimg)));
        a.addAll(List.of(TINY));
        a.addAll(List.of(extra));
        return a.toArray(String[]::new);
    }

    @Test
    void trainsOnTheBuiltInDataWithAFixedAnnotationAndResumes(@TempDir Path dir) throws Exception {
        Path out = dir.resolve("run");
        StringWriter err = new StringWriter();
        assertEquals(0, run(err, args(out, 0.032, "--corrupt", "blur0-8", "--sigma-min", "1.89")), err.toString());
        assertEquals(0, run(err, args(out, 0.064, "--corrupt", "blur0-8", "--sigma-min", "1.89", "--resume")), err.toString());
        assertEquals(4, Files.readAllLines(out.resolve("stats.jsonl")).size(), "2 steps, then 2 more after resuming");
        assertTrue(Files.exists(out.resolve("samples-000000.064.png")));

        Path png = dir.resolve("generated.png");
        assertEquals(0, run(err, "generate", "--network", out.resolve("network-snapshot-000000.064-ema1.safetensors").toString(),
                "--count", "5", "--steps", "3", "--out", png.toString()), err.toString());
        assertEquals(24, javax.imageio.ImageIO.read(png.toFile()).getWidth(), "3 columns of 8 pixels");
        assertEquals(2, run(err, "generate", "--network", dir.resolve("nothing.safetensors").toString()));
        assertTrue(err.toString().contains("nothing.safetensors does not exist"), err.toString());
    }

    @Test
    void badInputIsOneClearLine(@TempDir Path dir) {
        StringWriter err = new StringWriter();
        assertEquals(2, run(err, args(dir.resolve("a"), 0.032, "--corrupt", "blur0-8")));
        assertTrue(err.toString().startsWith("error: corrupted data needs annotations"), err.toString());
        err = new StringWriter();
        assertEquals(2, run(err, args(dir.resolve("b"), 0.032, "--corrupt", "blurry")));
        assertTrue(err.toString().contains("unknown corruption 'blurry'"), err.toString());
        err = new StringWriter();
        assertEquals(2, run(err, args(dir.resolve("c"), 0.032, "--resume")));
        assertTrue(err.toString().contains("no training-state"), err.toString());
        err = new StringWriter();
        assertEquals(2, run(err, args(dir.resolve("d"), 0.032, "--data", dir.resolve("missing").toString())));
        assertTrue(err.toString().contains("missing"), err.toString());
    }
}
