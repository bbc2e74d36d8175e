package dev.ambient.model.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Loaders (folder, zip, CIFAR-10, procedural) on fresh random images, and every bad-input case. */
class DatasetsTest {

    @TempDir Path tmp;

    static SplittableRandom freshRandom() {
        long seed = System.nanoTime();
        System.out.println("random seed " + seed);
        return new SplittableRandom(seed);
    }

    static byte[] randomCodes(SplittableRandom random, int n) {
        byte[] b = new byte[n];
        for (int k = 0; k < n; k++) b[k] = (byte) random.nextInt(256);
        return b;
    }

    static byte[] png(byte[] codes, int h, int w, int c) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ImageIO.write(Images.toImage(codes, 0, h, w, c), "png", out);
        return out.toByteArray();
    }

    @Test
    void quantizeInvertsDecodeAndClips() {
        for (int u = 0; u < 256; u++) assertEquals(u, ImageDataset.quantize(ImageDataset.decode((byte) u)) & 0xff);
        assertEquals(0, ImageDataset.quantize(-3f));
        assertEquals(255, ImageDataset.quantize(7f) & 0xff);
        assertEquals(-1f, ImageDataset.decode((byte) 0));
        assertEquals(1f, ImageDataset.decode((byte) 255));
    }

    @Test
    void folderAndZipGiveTheSameSortedImagesAndLabels() throws IOException {
        SplittableRandom random = freshRandom();
        int n = 7, h = 5, w = 6, c = 3;
        List<String> names = List.of("00000/img00000003.png", "00000/img00000001.png", "00001/img00001000.png",
                "00000/img00000000.png", "a.png", "00000/img00000002.png", "b/c/d.png");
        byte[][] codes = new byte[n][];
        int[] labels = new int[n];
        Path folder = tmp.resolve("folder");
        Path zip = tmp.resolve("data.zip");
        StringBuilder json = new StringBuilder("{\"labels\": [");
        try (ZipOutputStream zout = new ZipOutputStream(Files.newOutputStream(zip))) {
            for (int i = 0; i < n; i++) {
                codes[i] = randomCodes(random, h * w * c);
                labels[i] = random.nextInt(10);
                byte[] file = png(codes[i], h, w, c);
                Path p = folder.resolve(names.get(i));
                Files.createDirectories(p.getParent());
                Files.write(p, file);
                zout.putNextEntry(new ZipEntry(names.get(i)));
                zout.write(file);
                json.append(i > 0 ? ", " : "").append("[\"").append(names.get(i)).append("\", ").append(labels[i]).append("]");
            }
            json.append("]}");
            Files.writeString(folder.resolve("dataset.json"), json);
            zout.putNextEntry(new ZipEntry("dataset.json"));
            zout.write(json.toString().getBytes(StandardCharsets.UTF_8));
            Files.writeString(folder.resolve("notes.txt"), "ignored");
        }
        for (Path source : List.of(folder, zip)) {
            ImageDataset d = ImageFolder.load(source);
            assertEquals(n, d.size());
            assertEquals(List.copyOf(new java.util.TreeSet<>(names)), d.names(), "sorted relative paths");
            for (int k = 0; k < n; k++) {
                int i = names.indexOf(d.name(k));
                assertArrayEquals(codes[i], d.codes(k), d.name(k));
                assertEquals(labels[i], d.label(k));
                float[] img = d.image(k);
                for (int v = 0; v < img.length; v++) assertEquals((codes[i][v] & 0xff) / 127.5 - 1, img[v], 1e-6);
            }
            assertEquals(h, d.height());
            assertEquals(w, d.width());
            assertEquals(c, d.channels());
        }
    }

    @Test
    void greyImagesHaveOneChannelAndNoLabelsWithoutJson() throws IOException {
        SplittableRandom random = freshRandom();
        byte[] codes = randomCodes(random, 4 * 3);
        Files.write(tmp.resolve("g.png"), png(codes, 4, 3, 1));
        ImageDataset d = ImageFolder.load(tmp);
        assertEquals(1, d.channels());
        assertArrayEquals(codes, d.codes(0));
        assertTrue(!d.hasLabels());
        Files.writeString(tmp.resolve("dataset.json"), "{\"labels\": null}");
        assertTrue(!ImageFolder.load(tmp).hasLabels());
    }

    @Test
    void badImagesAreNamedOrSkipped() throws IOException {
        SplittableRandom random = freshRandom();
        Files.write(tmp.resolve("good.png"), png(randomCodes(random, 48), 4, 4, 3));
        Files.write(tmp.resolve("zbad.png"), new byte[] {1, 2, 3, 4});
        var e = assertThrows(BadInputException.class, () -> ImageFolder.load(tmp));
        assertTrue(e.getMessage().contains("zbad.png"), e.getMessage());
        assertEquals("zbad.png", e.entry());
        List<String> skipped = new ArrayList<>();
        ImageDataset d = ImageFolder.load(tmp, skipped);
        assertEquals(1, d.size());
        assertEquals(1, skipped.size());
        assertTrue(skipped.get(0).startsWith("zbad.png"), skipped.get(0));

        Files.write(tmp.resolve("zbad.png"), png(randomCodes(random, 5 * 4 * 3), 5, 4, 3));
        var size = assertThrows(BadInputException.class, () -> ImageFolder.load(tmp));
        assertTrue(size.getMessage().contains("zbad.png") && size.getMessage().contains("5x4x3"), size.getMessage());
    }

    @Test
    void badLabelsFileIsNamed() throws IOException {
        SplittableRandom random = freshRandom();
        Files.write(tmp.resolve("a.png"), png(randomCodes(random, 12), 2, 2, 3));
        Files.write(tmp.resolve("b.png"), png(randomCodes(random, 12), 2, 2, 3));
        Path json = tmp.resolve("dataset.json");
        String[][] cases = {
                {"{\"labels\": [[\"a.png\", 1], [\"b.png\", 2]", "not valid JSON"},
                {"{\"labels\": [[\"a.png\", 1]]}", "no label for b.png"},
                {"{\"labels\": [[\"a.png\", 1], [\"b.png\", 0.5]]}", "labels[1]"},
                {"{\"labels\": [[\"a.png\", 1], [\"b.png\", -2]]}", "non-negative integer"},
                {"{\"labels\": [[\"a.png\", 1], [\"b.png\"]]}", "expected [filename, label]"},
                {"{\"labels\": 3}", "must be a list"},
        };
        for (String[] c : cases) {
            Files.writeString(json, c[0]);
            var e = assertThrows(BadInputException.class, () -> ImageFolder.load(tmp), c[0]);
            assertTrue(e.getMessage().contains("dataset.json") && e.getMessage().contains(c[1]), e.getMessage());
        }
    }

    @Test
    void missingOrEmptySourcesAreErrors() throws IOException {
        assertThrows(BadInputException.class, () -> ImageFolder.load(tmp.resolve("nothing")));
        var e = assertThrows(BadInputException.class, () -> ImageFolder.load(tmp));
        assertTrue(e.getMessage().contains("no PNG or JPEG"), e.getMessage());
        Path notZip = tmp.resolve("x.zip");
        Files.writeString(notZip, "not a zip");
        var z = assertThrows(BadInputException.class, () -> ImageFolder.load(notZip));
        assertTrue(z.getMessage().contains("x.zip"), z.getMessage());
    }

    @Test
    void cifarRecordsBecomeHwcImagesInOrder() throws IOException {
        SplittableRandom random = freshRandom();
        int records1 = 3, records2 = 2;
        byte[] f1 = randomCodes(random, records1 * Cifar10.RECORD), f2 = randomCodes(random, records2 * Cifar10.RECORD);
        for (byte[] f : List.of(f1, f2)) for (int r = 0; r < f.length / Cifar10.RECORD; r++) f[r * Cifar10.RECORD] = (byte) random.nextInt(10);
        Path p1 = tmp.resolve("data_batch_1.bin"), p2 = tmp.resolve("data_batch_2.bin");
        Files.write(p1, f1);
        Files.write(p2, f2);
        ImageDataset d = Cifar10.load(List.of(p1, p2));
        assertEquals(5, d.size());
        assertEquals("00000/img00000004.png", d.name(4));
        for (int k = 0; k < 5; k++) {
            byte[] f = k < records1 ? f1 : f2;
            int at = (k < records1 ? k : k - records1) * Cifar10.RECORD;
            assertEquals(f[at], d.label(k));
            for (int y = 0; y < 32; y += 7) {
                for (int x = 0; x < 32; x += 5) {
                    for (int c = 0; c < 3; c++) assertEquals(f[at + 1 + c * 1024 + y * 32 + x] & 0xff, d.code(k, y, x, c));
                }
            }
        }
        Files.write(p2, java.util.Arrays.copyOf(f2, f2.length - 1));
        var e = assertThrows(BadInputException.class, () -> Cifar10.load(List.of(p1, p2)));
        assertTrue(e.getMessage().contains("data_batch_2.bin") && e.getMessage().contains("3073"), e.getMessage());
        f2[Cifar10.RECORD] = 10;
        Files.write(p2, f2);
        var l = assertThrows(BadInputException.class, () -> Cifar10.load(List.of(p1, p2)));
        assertTrue(l.getMessage().contains("data_batch_2.bin") && l.getMessage().contains("record 1"), l.getMessage());
        var m = assertThrows(BadInputException.class, () -> Cifar10.train(tmp));
        assertTrue(m.getMessage().contains("data_batch_3.bin"), m.getMessage());
    }

    @Test
    void proceduralShapesAreDeterministicPrefixStableAndVaried() {
        long seed = freshRandom().nextLong();
        for (int size : new int[] {16, 32}) {
            ImageDataset a = ProceduralShapes.generate(300, size, seed);
            ImageDataset b = ProceduralShapes.generate(40, size, seed);
            ImageDataset other = ProceduralShapes.generate(40, size, seed + 1);
            assertEquals(size, a.height());
            assertEquals(3, a.channels());
            int differing = 0;
            for (int i = 0; i < 40; i++) {
                assertArrayEquals(a.codes(i), b.codes(i), "image " + i + " must not depend on n");
                assertEquals(a.label(i), b.label(i));
                if (!java.util.Arrays.equals(a.codes(i), other.codes(i))) differing++;
            }
            assertTrue(differing >= 38, "another seed gives other images");
            int[] perClass = new int[ProceduralShapes.CLASS_NAMES.size()];
            for (int i = 0; i < a.size(); i++) perClass[a.label(i)]++;
            for (int count : perClass) assertTrue(count > 15, "every shape appears: " + java.util.Arrays.toString(perClass));
            // sharp edges: most images have a jump of more than a third of the range between neighbours
            int sharp = 0;
            for (int i = 0; i < a.size(); i++) {
                int best = 0;
                for (int y = 0; y < size; y++) {
                    for (int x = 1; x < size; x++) {
                        for (int c = 0; c < 3; c++) best = Math.max(best, Math.abs(a.code(i, y, x, c) - a.code(i, y, x - 1, c)));
                    }
                }
                if (best > 85) sharp++;
            }
            assertTrue(sharp > 0.9 * a.size(), sharp + " of " + a.size() + " images have a sharp edge");
        }
        assertNotEquals(ProceduralShapes.generate(1, 16, seed).codes(0).length, ProceduralShapes.generate(1, 32, seed).codes(0).length);
        assertThrows(IllegalArgumentException.class, () -> ProceduralShapes.generate(0, 16, 1));
    }

    @Test
    void batchGathersImagesAndLabels() {
        ImageDataset d = ProceduralShapes.generate(10, 16, freshRandom().nextLong());
        Batch batch = Batch.of(d, new int[] {3, 7, 3});
        assertEquals(3, batch.size());
        float[] img = d.image(7);
        for (int k = 0; k < img.length; k++) assertEquals(img[k], batch.images()[img.length + k]);
        assertEquals(d.label(3), batch.labels()[2]);
    }

    @Test
    void pngWriteIsReadBack() throws IOException {
        SplittableRandom random = freshRandom();
        byte[] codes = randomCodes(random, 6 * 7 * 3);
        Path p = tmp.resolve("out/x.png");
        Images.writePng(Images.toImage(codes, 0, 6, 7, 3), p);
        BufferedImage back = ImageIO.read(p.toFile());
        assertArrayEquals(codes, Images.codesOf(back, 3));
    }
}
