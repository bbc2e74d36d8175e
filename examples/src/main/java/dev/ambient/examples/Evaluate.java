package dev.ambient.examples;

import dev.ambient.kernels.Device;
import dev.ambient.model.checkpoint.ModelCheckpoint;
import dev.ambient.model.data.Cifar10;
import dev.ambient.model.data.ImageDataset;
import dev.ambient.model.data.ImageFolder;
import dev.ambient.model.data.ProceduralShapes;
import dev.ambient.model.eval.EvaluationReport;
import dev.ambient.model.eval.Evaluator;
import dev.ambient.model.eval.FeatureNetwork;
import dev.ambient.model.sample.Generator;
import dev.ambient.model.sample.HeunSampler;
import dev.ambient.model.unet.Edm2Model;
import dev.ambient.model.unet.UNetConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;

/**
 * {@code ./ambient evaluate}: generated images (a folder, or a network sampled here) against a
 * reference dataset: FD in a feature classifier's features, FD on pooled pixels, precision and
 * recall, sharpness. {@code ./ambient evaluate train-features} trains that classifier.
 */
@Command(name = "evaluate", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Compare generated images with a reference dataset: FD_feat (a classifier trained here on the reference's classes),",
                "FD_pix (8x8 pooled pixels), precision/recall (k = 3) and sharpness (Laplacian energy, generated / reference).",
                "Example: ./ambient evaluate --network runs/demo/ambient-o/network-snapshot-000040-ema0.050.safetensors --count 1000"},
        subcommands = {Evaluate.TrainFeatures.class})
final class Evaluate implements Callable<Integer> {

    /** The reference data and the feature network that goes with it. */
    static final class Reference {
        @Option(names = "--reference", defaultValue = "builtin", paramLabel = "SOURCE",
                description = "builtin (drawn fresh from the generator, never the training images), an image folder or .zip with dataset.json labels, or cifar10:DIR (its test batch). Default ${DEFAULT-VALUE}.")
        String source;

        @Option(names = "--resolution", defaultValue = "16", description = "Side of the built-in images (default ${DEFAULT-VALUE}).")
        int resolution;

        @Option(names = "--reference-images", defaultValue = "2000", description = "Built-in reference images (default ${DEFAULT-VALUE}).")
        int images;

        @Option(names = "--reference-seed", defaultValue = "1000", description = "Seed of the built-in reference (default ${DEFAULT-VALUE}; training data uses --data-seed 0).")
        long seed;

        @Option(names = "--classes", split = ",", paramLabel = "LABEL", description = "Keep only these labels in the reference (e.g. the target class of a study).")
        int[] classes;

        @Option(names = "--features", paramLabel = "FILE",
                description = "Feature network (default runs/features/<source>-<resolution>.safetensors; trained and cached there when missing).")
        Path features;

        @Option(names = "--device", defaultValue = "auto", description = "auto, cpu, cuda or cuda:N (default ${DEFAULT-VALUE}).")
        String device;

        Device device() {
            return device.equals("auto") ? Device.auto() : Device.parse(device);
        }

        ImageDataset load() throws IOException {
            ImageDataset d;
            if (source.equals("builtin")) d = ProceduralShapes.generate(images, resolution, seed);
            else if (source.startsWith("cifar10:")) d = Cifar10.test(Path.of(source.substring("cifar10:".length())));
            else d = ImageFolder.load(Path.of(source));
            return classes == null ? d : onlyClasses(d, classes);
        }

        Path featuresFile() {
            if (features != null) return features;
            String name = source.equals("builtin") ? "builtin-" + resolution : source.startsWith("cifar10:") ? "cifar10" : Path.of(source).getFileName().toString();
            return Path.of("runs", "features", name + ".safetensors");
        }

        /** The cached feature network, trained first if it is not there yet. */
        FeatureNetwork featureNetwork(FeatureOptions training) throws IOException {
            Path file = featuresFile();
            if (file.toFile().isFile()) {
                FeatureNetwork f = FeatureNetwork.load(file, device());
                System.out.printf("feature network %s (held-out accuracy %.3f)%n", file, f.accuracy());
                return f;
            }
            System.out.println("no feature network at " + file + ": training one (cached for next time)");
            return training.train(this, file);
        }
    }

    /** How the feature network is trained. */
    static final class FeatureOptions {
        @Option(names = "--feature-steps", defaultValue = "1500", description = "Feature network training steps (default ${DEFAULT-VALUE}).")
        int steps;

        @Option(names = "--feature-images", defaultValue = "20000", description = "Built-in training images for it, drawn fresh (default ${DEFAULT-VALUE}).")
        int images;

        @Option(names = "--feature-seed", defaultValue = "0", description = "Seed of its weights and batches (default ${DEFAULT-VALUE}).")
        long seed;

        FeatureNetwork train(Reference ref, Path file) throws IOException {
            long t0 = System.nanoTime();
            ImageDataset train, heldOut;
            String what;
            if (ref.source.equals("builtin")) {
                // fresh draws, disjoint from the reference and from the training data by their seeds
                train = ProceduralShapes.generate(images, ref.resolution, 2_000_000 + seed);
                heldOut = ProceduralShapes.generate(2000, ref.resolution, 3_000_000 + seed);
                what = String.format("builtin %dx%d, %d fresh images", ref.resolution, ref.resolution, images);
            } else {
                ImageDataset all = ref.source.startsWith("cifar10:") ? Cifar10.train(Path.of(ref.source.substring("cifar10:".length())))
                        : ImageFolder.load(Path.of(ref.source));
                int held = Math.max(1, all.size() / 10);
                train = all.subset(range(held, all.size()));
                heldOut = all.subset(range(0, held));
                what = ref.source + ", " + train.size() + " images (" + held + " held out)";
            }
            FeatureNetwork.Options o = FeatureNetwork.Options.defaults(seed);
            o = new FeatureNetwork.Options(o.channels(), o.mult(), o.blocks(), steps, o.batch(), o.learningRate(), seed);
            FeatureNetwork f = FeatureNetwork.train(train, heldOut, o, ref.device(), what, System.out::println);
            f.save(file);
            System.out.printf("feature network: %d classes, held-out accuracy %.3f on %d images, %d features; %.0f s; wrote %s%n",
                    train.labelCount(), f.accuracy(), heldOut.size(), f.dim(), (System.nanoTime() - t0) / 1e9, file.toAbsolutePath());
            return f;
        }
    }

    @Mixin Reference reference;
    @Mixin FeatureOptions featureOptions;

    @Option(names = "--images", paramLabel = "DIR", description = "Generated images: a folder or .zip of PNG/JPEG.")
    Path images;

    @Option(names = "--network", paramLabel = "FILE", description = "Or a network (snapshot or training state of ./ambient train) to sample --count images from.")
    Path network;

    @Option(names = "--count", defaultValue = "1000", description = "Images to sample from --network (default ${DEFAULT-VALUE}).")
    int count;

    @Option(names = "--steps", defaultValue = "18", description = "Heun steps for --network (default ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--first-seed", defaultValue = "0", description = "Image i uses seed first-seed + i (default ${DEFAULT-VALUE}).")
    long firstSeed;

    @Option(names = "--label", description = "Name of the evaluated set in the table (default: the file or folder name).")
    String label;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write the report as JSON.")
    Path json;

    @Override
    public Integer call() throws IOException {
        if ((images == null) == (network == null)) throw new IllegalArgumentException("give the generated images: --images DIR or --network FILE");
        if (count <= 3) throw new IllegalArgumentException("--count must be more than 3 (precision and recall use k = 3)");
        ImageDataset ref = reference.load();
        System.out.printf("reference: %s, %d images %dx%dx%d%n", reference.source, ref.size(), ref.height(), ref.width(), ref.channels());
        try (FeatureNetwork features = reference.featureNetwork(featureOptions)) {
            Evaluator evaluator = new Evaluator(features, ref);
            float[] generated;
            int n;
            String name;
            if (images != null) {
                ImageDataset g = ImageFolder.load(images);
                features.checkShape(g.height(), g.width(), g.channels());
                n = g.size();
                generated = new float[n * g.imageSize()];
                g.gather(range(0, n), generated);
                name = images.getFileName().toString();
            } else {
                long t0 = System.nanoTime();
                generated = sample(network, count, steps, firstSeed, reference.device());
                n = count;
                name = network.getFileName().toString();
                System.out.printf("sampled %d images with %d Heun steps in %.0f s%n", n, steps, (System.nanoTime() - t0) / 1e9);
            }
            EvaluationReport r = evaluator.evaluate(label != null ? label : name, generated, n);
            System.out.println();
            System.out.print(r.toTable());
            if (json != null) {
                r.write(json);
                System.out.println("wrote " + json.toAbsolutePath());
            }
        }
        return 0;
    }

    /** {@code count} images from a network file, classes cycled for a conditional one. */
    static float[] sample(Path file, int count, int steps, long firstSeed, Device device) throws IOException {
        UNetConfig config = Generate.networkOf(file);
        try (Edm2Model model = Edm2Model.uninitialized(config, device)) {
            ModelCheckpoint.load(model, file);
            long[] seeds = new long[count];
            for (int i = 0; i < count; i++) seeds[i] = firstSeed + i;
            int[] labels = null;
            if (config.labelDim() > 0) {
                labels = new int[count];
                for (int i = 0; i < count; i++) labels[i] = i % config.labelDim();
            }
            return Generator.generate(model, new HeunSampler(steps, 0.002, 80, 7), seeds, labels, 128);
        }
    }

    static int[] range(int from, int to) {
        int[] r = new int[to - from];
        for (int i = 0; i < r.length; i++) r[i] = from + i;
        return r;
    }

    static ImageDataset onlyClasses(ImageDataset d, int[] classes) {
        if (!d.hasLabels()) throw new IllegalArgumentException("--classes needs a labelled reference dataset");
        int[] keep = java.util.stream.IntStream.range(0, d.size()).filter(i -> Arrays.stream(classes).anyMatch(c -> c == d.label(i))).toArray();
        if (keep.length == 0) throw new IllegalArgumentException("no reference image has a label in " + Arrays.toString(classes));
        return d.subset(keep);
    }

    @Command(name = "train-features", mixinStandardHelpOptions = true, sortOptions = false,
            description = {"Train the feature network of FD_feat and precision/recall on the reference data's classes and cache it.",
                    "Example: ./ambient evaluate train-features --reference builtin --resolution 16"})
    static final class TrainFeatures implements Callable<Integer> {
        @Mixin Reference reference;
        @Mixin FeatureOptions featureOptions;

        @Override
        public Integer call() throws IOException {
            try (FeatureNetwork f = featureOptions.train(reference, reference.featuresFile())) {
                return 0;
            }
        }
    }
}
