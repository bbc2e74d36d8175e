package dev.ambient.model.data;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * CIFAR-10's binary batches ({@code cifar-10-batches-bin}): each record is one label byte (0–9)
 * followed by 3072 bytes of a 32×32 image, channel-major (1024 red, then green, then blue, each
 * row by row). Records become HWC images named as EDM's dataset tool names them when it
 * converts CIFAR-10 ({@code 00000/img00000000.png}, numbered in record order across the files),
 * so annotation files written for such a converted zip refer to the same images.
 */
public final class Cifar10 {

    public static final int SIDE = 32, CHANNELS = 3, CLASSES = 10;
    /** Bytes of one record: the label and the CHW image. */
    public static final int RECORD = 1 + SIDE * SIDE * CHANNELS;
    /** The class names, in label order. */
    public static final List<String> CLASS_NAMES = List.of(
            "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck");

    private Cifar10() {}

    /** The 50 000 training images: {@code data_batch_1.bin} … {@code data_batch_5.bin} in {@code dir}. */
    public static ImageDataset train(Path dir) throws IOException {
        List<Path> files = new ArrayList<>();
        for (int b = 1; b <= 5; b++) files.add(dir.resolve("data_batch_" + b + ".bin"));
        return load(files);
    }

    /** The 10 000 test images: {@code test_batch.bin} in {@code dir}. */
    public static ImageDataset test(Path dir) throws IOException {
        return load(List.of(dir.resolve("test_batch.bin")));
    }

    /** The records of the given batch files, in order. */
    public static ImageDataset load(List<Path> files) throws IOException {
        if (files.isEmpty()) throw new IllegalArgumentException("no CIFAR-10 batch files given");
        List<byte[]> contents = new ArrayList<>(files.size());
        long records = 0;
        for (Path f : files) {
            if (!Files.isRegularFile(f)) throw BadInputException.of(f, "no such CIFAR-10 batch file");
            byte[] data = Files.readAllBytes(f);
            if (data.length == 0 || data.length % RECORD != 0) {
                throw BadInputException.of(f, "size " + data.length + " is not a whole number of " + RECORD
                        + "-byte CIFAR-10 records (1 label byte + 3072 image bytes); truncated or not a binary batch?");
            }
            records += data.length / RECORD;
            contents.add(data);
        }
        if (records * (RECORD - 1) > Integer.MAX_VALUE - 8) throw new IllegalArgumentException("too many records: " + records);
        int n = (int) records, plane = SIDE * SIDE, per = plane * CHANNELS;
        byte[] pixels = new byte[n * per];
        int[] labels = new int[n];
        String[] names = new String[n];
        int k = 0;
        for (int f = 0; f < files.size(); f++) {
            byte[] data = contents.get(f);
            for (int r = 0; r < data.length / RECORD; r++, k++) {
                int at = r * RECORD;
                int label = data[at] & 0xff;
                if (label >= CLASSES) {
                    throw BadInputException.atEntry(files.get(f), "record " + r + " (byte offset " + at + ")",
                            "label " + label + " is not a CIFAR-10 class (0-9)", null);
                }
                labels[k] = label;
                names[k] = String.format("%05d/img%08d.png", k / 1000, k);
                int out = k * per;
                for (int p = 0; p < plane; p++) {
                    for (int c = 0; c < CHANNELS; c++) pixels[out + p * CHANNELS + c] = data[at + 1 + c * plane + p];
                }
            }
        }
        return ImageDataset.of(SIDE, SIDE, CHANNELS, pixels, labels, names);
    }
}
