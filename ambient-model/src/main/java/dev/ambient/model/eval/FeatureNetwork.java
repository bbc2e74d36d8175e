package dev.ambient.model.eval;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ambient.kernels.Device;
import dev.ambient.model.checkpoint.ModelCheckpoint;
import dev.ambient.model.checkpoint.SafeTensors;
import dev.ambient.model.data.ImageDataset;
import dev.ambient.model.train.ClassifierTrainer;
import dev.ambient.model.unet.EncoderClassifier;
import dev.ambient.model.unet.UNetConfig;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * The feature space of FD_feat and of precision and recall: a small classifier (EDM2's encoder
 * with a pooled head, {@link EncoderClassifier}) trained on the labels of clean reference data,
 * whose pooled last-encoder activations are the features. An Inception network would be the
 * usual choice at 299×299; at 16×16 a classifier of the data's own classes is the meaningful
 * one, and training it here keeps the project self-contained.
 *
 * <p>Training adds a little Gaussian noise (sigma log-uniform in [{@value #SIGMA}, 0.1], told to
 * the network) and random horizontal flips, so the features vary smoothly with small defects;
 * features are read at sigma = {@value #SIGMA} without noise. Deterministic given the seed.
 */
public final class FeatureNetwork implements AutoCloseable {

    /** The noise level the network is told when it reads features: clean images. */
    public static final double SIGMA = 0.002;
    private static final double TRAIN_SIGMA_MAX = 0.1;
    private static final String FORMAT = "ambient-feature-network-1";
    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * @param channels model_channels of the encoder
     * @param mult     channel_mult per level
     * @param blocks   blocks per level
     */
    public record Options(int channels, int[] mult, int blocks, int steps, int batch, double learningRate, long seed) {
        public Options {
            if (channels < 1 || blocks < 1 || mult.length == 0) throw new IllegalArgumentException("a feature network needs channels, levels and blocks");
            if (steps < 1 || batch < 2) throw new IllegalArgumentException("feature network: steps must be >= 1 and batch >= 2, got " + steps + ", " + batch);
            if (!(learningRate > 0)) throw new IllegalArgumentException("feature network: learning rate must be positive, got " + learningRate);
        }

        /** 32 channels, mult 1,2,2, one block per level, 1,500 steps of 64 images at rate 0.01. */
        public static Options defaults(long seed) {
            return new Options(32, new int[] {1, 2, 2}, 1, 1500, 64, 0.01, seed);
        }
    }

    private final EncoderClassifier model;
    private final double accuracy;
    private final Map<String, String> provenance;

    private FeatureNetwork(EncoderClassifier model, double accuracy, Map<String, String> provenance) {
        this.model = model;
        this.accuracy = accuracy;
        this.provenance = provenance;
        model.prepare(false);
    }

    /**
     * Trains on the labelled {@code train} set and measures the accuracy on {@code heldOut}.
     *
     * @param source a line saying what the data was, kept with the weights
     */
    public static FeatureNetwork train(ImageDataset train, ImageDataset heldOut, Options o, Device device, String source, Consumer<String> log) {
        if (!train.hasLabels() || train.labelCount() < 2) {
            throw new IllegalArgumentException("the feature network learns the reference data's classes: it needs a labelled dataset with at least 2 classes");
        }
        if (heldOut.labelCount() > train.labelCount() || heldOut.height() != train.height() || heldOut.channels() != train.channels()) {
            throw new IllegalArgumentException("held-out data must have the training data's shape and classes");
        }
        UNetConfig config = config(train.height(), train.channels(), o);
        EncoderClassifier model = new EncoderClassifier(config, train.labelCount(), device, o.seed());
        int size = train.imageSize(), h = train.height(), w = train.width(), c = train.channels();
        SplittableRandom random = new SplittableRandom(o.seed());
        float[] images = new float[o.batch() * size], image = new float[size];
        double[] sigma = new double[o.batch()];
        int[] targets = new int[o.batch()];
        double loss = 0, right = 0;
        try (ClassifierTrainer trainer = new ClassifierTrainer(model, ClassifierTrainer.Options.reference(o.learningRate(), 0, o.seed()))) {
            for (int step = 1; step <= o.steps(); step++) {
                for (int b = 0; b < o.batch(); b++) {
                    int i = random.nextInt(train.size());
                    train.copyTo(i, image, 0);
                    boolean flip = random.nextBoolean();
                    sigma[b] = SIGMA * Math.exp(random.nextDouble() * Math.log(TRAIN_SIGMA_MAX / SIGMA));
                    targets[b] = train.label(i);
                    for (int y = 0; y < h; y++) {
                        for (int x = 0; x < w; x++) {
                            int from = (y * w + (flip ? w - 1 - x : x)) * c, to = b * size + (y * w + x) * c;
                            for (int k = 0; k < c; k++) images[to + k] = (float) (image[from + k] + sigma[b] * gaussian(random));
                        }
                    }
                }
                ClassifierTrainer.StepStats s = trainer.step(images, sigma, null, targets);
                loss += s.loss();
                right += s.accuracy();
                if (step % 250 == 0 || step == o.steps()) {
                    int since = step % 250 == 0 ? 250 : step % 250;
                    log.accept(String.format("feature network step %d/%d: loss %.4f, batch accuracy %.3f", step, o.steps(), loss / since, right / since));
                    loss = right = 0;
                }
            }
        } catch (RuntimeException e) {
            model.close();
            throw e;
        }
        model.prepare(false);
        double accuracy = accuracy(model, heldOut);
        Map<String, String> provenance = new LinkedHashMap<>();
        provenance.put("format", FORMAT);
        provenance.put("source", source);
        provenance.put("accuracy", Double.toString(accuracy));
        provenance.put("held_out", Integer.toString(heldOut.size()));
        provenance.put("options", String.format("channels %d, mult %s, blocks %d, %d steps of %d, lr %s, seed %d", o.channels(),
                Arrays.toString(o.mult()), o.blocks(), o.steps(), o.batch(), o.learningRate(), o.seed()));
        try {
            provenance.put("network", JSON.writeValueAsString(config));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
        return new FeatureNetwork(model, accuracy, provenance);
    }

    static UNetConfig config(int resolution, int channelsIn, Options o) {
        UNetConfig d = UNetConfig.edm2(resolution, channelsIn, 0, o.channels(), o.mult(), o.blocks(), new int[0], 0);
        return new UNetConfig(resolution, channelsIn, 0, o.channels(), o.mult(), null, null, o.blocks(), new int[0], 0, d.labelBalance(),
                d.concatBalance(), d.resBalance(), d.attnBalance(), d.clipAct(), Math.min(d.channelsPerHead(), o.channels()), d.logvarChannels());
    }

    /** Writes the weights with what they were trained on and their accuracy (atomically). */
    public void save(Path file) throws IOException {
        ModelCheckpoint.save(model.parameters(), null, file, provenance);
    }

    /** Loads a network written by {@link #save}; anything else is refused with the file's name. */
    public static FeatureNetwork load(Path file, Device device) throws IOException {
        if (!Files.isRegularFile(file)) throw new IOException(file + " does not exist (train one with ./ambient evaluate train-features)");
        SafeTensors.Contents contents = SafeTensors.read(file);
        Map<String, String> meta = contents.metadata();
        if (!FORMAT.equals(meta.get("format")) || !contents.tensors().containsKey("head.bias")) {
            throw new IOException(file + " is not a feature network written by ./ambient evaluate train-features");
        }
        UNetConfig config = JSON.readValue(meta.get("network"), UNetConfig.class);
        int classes = (int) contents.tensors().get("head.bias").shape()[0];
        EncoderClassifier model = new EncoderClassifier(config, classes, device, 0);
        try {
            ModelCheckpoint.load(model.parameters(), "(feature network, " + classes + " classes)", file);
            return new FeatureNetwork(model, Double.parseDouble(meta.get("accuracy")), meta);
        } catch (IOException | RuntimeException e) {
            model.close();
            throw e;
        }
    }

    /** The fraction of {@code data} whose label the network predicts at {@link #SIGMA}. */
    static double accuracy(EncoderClassifier model, ImageDataset data) {
        int classes = model.classes(), right = 0;
        for (int start = 0; start < data.size(); start += 256) {
            int n = Math.min(256, data.size() - start);
            float[] images = new float[n * data.imageSize()];
            int[] which = new int[n];
            for (int i = 0; i < n; i++) which[i] = start + i;
            data.gather(which, images);
            double[] sigma = new double[n];
            Arrays.fill(sigma, SIGMA);
            float[] logits = model.logits(images, sigma, null);
            for (int i = 0; i < n; i++) {
                int arg = 0;
                for (int k = 1; k < classes; k++) if (logits[i * classes + k] > logits[i * classes + arg]) arg = k;
                if (arg == data.label(start + i)) right++;
            }
        }
        return (double) right / data.size();
    }

    /** Features of {@code n} NHWC images, {@code n * dim()} floats. */
    public float[] features(float[] images, int n) {
        int size = model.config().imgResolution() * model.config().imgResolution() * model.config().imgChannels();
        if (images.length != (long) n * size) throw new IllegalArgumentException(images.length + " floats are not " + n + " images of " + size);
        float[] out = new float[n * dim()];
        for (int start = 0; start < n; start += 256) {
            int m = Math.min(256, n - start);
            double[] sigma = new double[m];
            Arrays.fill(sigma, SIGMA);
            float[] f = model.features(Arrays.copyOfRange(images, start * size, (start + m) * size), sigma, null);
            System.arraycopy(f, 0, out, start * dim(), f.length);
        }
        return out;
    }

    /** Features of every image of a dataset. */
    public float[] features(ImageDataset data) {
        checkShape(data.height(), data.width(), data.channels());
        int[] all = new int[data.size()];
        for (int i = 0; i < all.length; i++) all[i] = i;
        float[] images = new float[data.size() * data.imageSize()];
        data.gather(all, images);
        return features(images, data.size());
    }

    /** Refuses images of another shape than the network was trained on. */
    public void checkShape(int height, int width, int channels) {
        UNetConfig c = model.config();
        if (height != c.imgResolution() || width != c.imgResolution() || channels != c.imgChannels()) {
            throw new IllegalArgumentException("the feature network reads " + c.imgResolution() + "x" + c.imgResolution() + "x" + c.imgChannels()
                    + " images, got " + height + "x" + width + "x" + channels);
        }
    }

    public int dim() {
        return model.featureDim();
    }

    /** Accuracy on held-out clean data, measured when it was trained. */
    public double accuracy() {
        return accuracy;
    }

    public Map<String, String> provenance() {
        return provenance;
    }

    private static double gaussian(SplittableRandom r) {
        double u = 1 - r.nextDouble(), v = r.nextDouble();
        return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    }

    @Override
    public void close() {
        model.close();
    }
}
