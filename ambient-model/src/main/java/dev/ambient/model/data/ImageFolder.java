package dev.ambient.model.data;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;
import javax.imageio.ImageIO;

/**
 * Loads a folder or a zip of PNG/JPEG images, laid out as EDM's {@code dataset_tool.py} writes
 * them: any depth of sub-folders, images ordered by their relative path (plain string order,
 * as Python's {@code sorted}), and an optional {@code dataset.json} at the root,
 * <pre>  {"labels": [["00000/img00000000.png", 6], ["00000/img00000001.png", 9], ...]}</pre>
 * whose integer labels become the dataset's class labels ({@code "labels": null} means none).
 *
 * <p>All images must have the same size; grey images give one channel, everything else three
 * (sRGB; an alpha channel is dropped, as the dataset tool's conversion to RGB does). Images are
 * decoded once, in parallel, into the dataset's uint8 cache.
 *
 * <p>A bad input is a {@link BadInputException} naming the folder or zip and the entry: an image
 * that does not decode, an image of another size, malformed {@code dataset.json}, a label that is
 * not an integer, an image with no label when labels are given. With a list for skipped images,
 * images that do not decode are left out instead and described in the list.
 */
public final class ImageFolder {

    /** The name of the optional labels file at the root. */
    public static final String LABELS_FILE = "dataset.json";

    private ImageFolder() {}

    /** Loads every image under {@code source} (a folder or a .zip); any bad image is an error. */
    public static ImageDataset load(Path source) throws IOException {
        return load(source, null);
    }

    /**
     * Loads every image under {@code source} (a folder or a .zip). When {@code skipped} is not
     * null, images that do not decode are left out and one line per such image ("name: reason")
     * is appended to it; without it they are an error.
     */
    public static ImageDataset load(Path source, List<String> skipped) throws IOException {
        if (Files.isDirectory(source)) {
            return fromFolder(source, skipped);
        }
        if (!Files.isRegularFile(source)) {
            throw BadInputException.of(source, "no such folder or zip file");
        }
        return fromZip(source, skipped);
    }

    /** True for the file names this loader reads as images. */
    public static boolean isImageName(String name) {
        String lower = name.toLowerCase(Locale.ROOT);
        return lower.endsWith(".png") || lower.endsWith(".jpg") || lower.endsWith(".jpeg");
    }

    private static ImageDataset fromFolder(Path root, List<String> skipped) throws IOException {
        TreeMap<String, Path> files = new TreeMap<>();
        try (Stream<Path> walk = Files.walk(root)) {
            for (Path p : (Iterable<Path>) walk::iterator) {
                if (!Files.isRegularFile(p)) continue;
                String rel = relative(root, p);
                if (isImageName(rel)) files.put(rel, p);
            }
        }
        Path labelsPath = root.resolve(LABELS_FILE);
        byte[] labelsJson = Files.isRegularFile(labelsPath) ? Files.readAllBytes(labelsPath) : null;
        List<String> names = new ArrayList<>(files.keySet());
        List<byte[]> bytes = new ArrayList<>(names.size());
        for (String name : names) {
            try {
                bytes.add(Files.readAllBytes(files.get(name)));
            } catch (IOException e) {
                throw BadInputException.atEntry(root, name, "cannot read: " + e.getMessage(), e);
            }
        }
        return build(root, names, bytes, labelsJson, labelsPath.toString(), null, skipped);
    }

    private static ImageDataset fromZip(Path zip, List<String> skipped) throws IOException {
        TreeMap<String, byte[]> files = new TreeMap<>();
        byte[] labelsJson = null;
        try (ZipFile zf = new ZipFile(zip.toFile())) {
            Enumeration<? extends ZipEntry> entries = zf.entries();
            while (entries.hasMoreElements()) {
                ZipEntry e = entries.nextElement();
                if (e.isDirectory()) continue;
                String name = e.getName();
                boolean labels = name.equals(LABELS_FILE);
                if (!labels && !isImageName(name)) continue;
                byte[] data;
                try (InputStream in = zf.getInputStream(e)) {
                    data = in.readAllBytes();
                } catch (IOException ex) {
                    throw BadInputException.atEntry(zip, name, "cannot read from the zip: " + ex.getMessage(), ex);
                }
                if (labels) labelsJson = data; else files.put(name, data);
            }
        } catch (ZipException e) {
            throw BadInputException.of(zip, "not a readable zip file: " + e.getMessage());
        }
        return build(zip, new ArrayList<>(files.keySet()), new ArrayList<>(files.values()), labelsJson,
                zip.toString(), LABELS_FILE, skipped);
    }

    private static String relative(Path root, Path p) {
        StringBuilder sb = new StringBuilder();
        for (Path part : root.relativize(p)) {
            if (!sb.isEmpty()) sb.append('/');
            sb.append(part);
        }
        return sb.toString();
    }

    /** A decoded image: HWC uint8 codes, or the reason it did not decode. */
    private record Decoded(int h, int w, int c, byte[] codes, String error) {}

    private static ImageDataset build(Path source, List<String> names, List<byte[]> bytes, byte[] labelsJson,
                                      String labelsFile, String labelsEntry, List<String> skipped) throws IOException {
        Map<String, Integer> labelOf = labelsJson == null ? null : parseLabels(labelsJson, labelsFile, labelsEntry);
        Decoded[] decoded = new Decoded[names.size()];
        IntStream.range(0, decoded.length).parallel().forEach(i -> decoded[i] = decode(bytes.get(i)));

        List<Integer> kept = new ArrayList<>(decoded.length);
        Decoded first = null;
        String firstName = null;
        for (int i = 0; i < decoded.length; i++) {
            Decoded d = decoded[i];
            if (d.error != null) {
                if (skipped == null) throw BadInputException.atEntry(source, names.get(i), d.error, null);
                skipped.add(names.get(i) + ": " + d.error);
                continue;
            }
            if (first == null) {
                first = d;
                firstName = names.get(i);
            } else if (d.h != first.h || d.w != first.w || d.c != first.c) {
                throw BadInputException.atEntry(source, names.get(i), "is " + shape(d) + " but " + firstName
                        + " is " + shape(first) + "; all images of a dataset must have one size", null);
            }
            kept.add(i);
        }
        if (first == null) {
            throw BadInputException.of(source, skipped != null && !skipped.isEmpty()
                    ? "none of its " + names.size() + " images could be decoded" : "contains no PNG or JPEG images");
        }
        int n = kept.size(), per = first.h * first.w * first.c;
        if ((long) n * per > Integer.MAX_VALUE - 8) {
            throw BadInputException.of(source, n + " images of " + shape(first) + " do not fit one in-memory cache");
        }
        byte[] pixels = new byte[n * per];
        String[] outNames = new String[n];
        int[] labels = labelOf == null ? null : new int[n];
        for (int k = 0; k < n; k++) {
            int i = kept.get(k);
            System.arraycopy(decoded[i].codes, 0, pixels, k * per, per);
            outNames[k] = names.get(i);
            if (labels != null) {
                Integer label = labelOf.get(outNames[k]);
                if (label == null) {
                    throw BadInputException.atEntry(labelsFile, labelsEntry == null ? outNames[k] : labelsEntry,
                            "has no label for " + outNames[k] + " (every image needs one when labels are given)", null);
                }
                labels[k] = label;
            }
        }
        return ImageDataset.of(first.h, first.w, first.c, pixels, labels, outNames);
    }

    private static String shape(Decoded d) {
        return d.h + "x" + d.w + "x" + d.c;
    }

    private static Decoded decode(byte[] data) {
        BufferedImage img;
        try {
            img = ImageIO.read(new ByteArrayInputStream(data));
        } catch (IOException | RuntimeException e) {
            return new Decoded(0, 0, 0, null, "cannot decode image: " + e.getMessage());
        }
        if (img == null) return new Decoded(0, 0, 0, null, "cannot decode image: not a PNG or JPEG that ImageIO reads");
        int c = Images.channelsOf(img);
        return new Decoded(img.getHeight(), img.getWidth(), c, Images.codesOf(img, c), null);
    }

    private static Map<String, Integer> parseLabels(byte[] json, String file, String entry) throws BadInputException {
        String where = entry == null ? "" : entry + ": ";
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(json);
        } catch (JacksonException e) {
            throw BadInputException.atEntry(file, entry, "not valid JSON: " + e.getOriginalMessage()
                    + " (line " + e.getLocation().getLineNr() + ")", e);
        } catch (IOException e) {
            throw BadInputException.atEntry(file, entry, "cannot read: " + e.getMessage(), e);
        }
        if (root == null || !root.isObject()) {
            throw BadInputException.atEntry(file, entry, "expected a JSON object with \"labels\"", null);
        }
        JsonNode labels = root.get("labels");
        if (labels == null || labels.isNull()) return null;
        if (!labels.isArray()) {
            throw BadInputException.atEntry(file, entry, "\"labels\" must be a list of [filename, label] pairs or null", null);
        }
        Map<String, Integer> out = new HashMap<>(labels.size() * 2);
        for (int k = 0; k < labels.size(); k++) {
            JsonNode pair = labels.get(k);
            String at = where + "labels[" + k + "]";
            if (!pair.isArray() || pair.size() != 2 || !pair.get(0).isTextual()) {
                throw BadInputException.atEntry(file, at, "expected [filename, label], got " + pair, null);
            }
            JsonNode label = pair.get(1);
            if (!label.isIntegralNumber() || !label.canConvertToInt() || label.intValue() < 0) {
                throw BadInputException.atEntry(file, at, "label of " + pair.get(0).asText()
                        + " must be a non-negative integer class, got " + label, null);
            }
            if (out.put(pair.get(0).asText(), label.intValue()) != null) {
                throw BadInputException.atEntry(file, at, "second label for " + pair.get(0).asText(), null);
            }
        }
        return out;
    }
}
