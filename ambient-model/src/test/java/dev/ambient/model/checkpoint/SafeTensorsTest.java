package dev.ambient.model.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** safetensors round trips, other dtypes, and damaged files rejected with clear messages. */
class SafeTensorsTest {

    @TempDir
    Path dir;

    private static Map<String, SafeTensors.Tensor> sample() {
        SplittableRandom random = new SplittableRandom(7);
        Map<String, SafeTensors.Tensor> tensors = new LinkedHashMap<>();
        for (var entry : Map.of("enc.conv.weight", new long[] {5, 3, 3, 3}, "out_gain", new long[] {},
                "emb.freqs", new long[] {17}).entrySet()) {
            long n = Arrays.stream(entry.getValue()).reduce(1, Math::multiplyExact);
            float[] v = new float[(int) n];
            for (int i = 0; i < v.length; i++) v[i] = (float) random.nextGaussian();
            tensors.put(entry.getKey(), new SafeTensors.Tensor(entry.getValue(), v));
        }
        return tensors;
    }

    @Test
    void roundTripKeepsNamesShapesValuesAndMetadata() throws IOException {
        Path file = dir.resolve("model.safetensors");
        var tensors = sample();
        SafeTensors.write(file, tensors, Map.of("format", "pt", "preset", "W1"));
        var read = SafeTensors.read(file);
        assertEquals(tensors.keySet().stream().toList(), read.tensors().keySet().stream().toList());
        for (var e : tensors.entrySet()) {
            assertArrayEquals(e.getValue().shape(), read.tensors().get(e.getKey()).shape(), e.getKey());
            assertArrayEquals(e.getValue().values(), read.tensors().get(e.getKey()).values(), e.getKey());
        }
        assertEquals("W1", read.metadata().get("preset"));
        assertEquals(0, (Files.size(file) - 8 - headerLength(file)) % 4);
        assertEquals(0, headerLength(file) % 8, "data starts 8-byte aligned");
    }

    @Test
    void overwritingLeavesNoTemporaryFiles() throws IOException {
        Path file = dir.resolve("ema.safetensors");
        SafeTensors.write(file, sample(), Map.of());
        SafeTensors.write(file, Map.of("x", new SafeTensors.Tensor(new long[] {2}, new float[] {1, 2})), Map.of());
        try (var files = Files.list(dir)) {
            assertEquals(1, files.count());
        }
        assertArrayEquals(new float[] {1, 2}, SafeTensors.read(file).tensors().get("x").values());
    }

    @Test
    void halfPrecisionFilesAreWidened() throws IOException {
        ByteBuffer data = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        data.putShort(Float.floatToFloat16(1.5f)).putShort(Float.floatToFloat16(-0.25f));
        data.putShort((short) (Float.floatToIntBits(3.0f) >>> 16)).putShort((short) (Float.floatToIntBits(-2.0f) >>> 16));
        Path file = handMade("""
                {"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]}}""",
                data.array());
        var read = SafeTensors.read(file).tensors();
        assertArrayEquals(new float[] {1.5f, -0.25f}, read.get("h").values());
        assertArrayEquals(new float[] {3.0f, -2.0f}, read.get("b").values());
    }

    @Test
    void aTruncatedFileIsRejectedNamingTheTensor() throws IOException {
        Path file = dir.resolve("cut.safetensors");
        SafeTensors.write(file, sample(), Map.of());
        byte[] all = Files.readAllBytes(file);
        Files.write(file, Arrays.copyOf(all, all.length - 10));
        var e = assertThrows(IOException.class, () -> SafeTensors.read(file));
        assertTrue(e.getMessage().contains("cut.safetensors") && e.getMessage().contains("truncated"), e.getMessage());

        Files.write(file, Arrays.copyOf(all, 20));
        var header = assertThrows(IOException.class, () -> SafeTensors.read(file));
        assertTrue(header.getMessage().contains("declares a header"), header.getMessage());
        Files.write(file, new byte[3]);
        assertThrows(IOException.class, () -> SafeTensors.read(file));
    }

    @Test
    void damagedHeadersAreRejected() throws IOException {
        byte[] eight = new byte[8];
        assertRejected("""
                {"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""",
                eight, "overlaps");
        assertRejected("""
                {"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", eight, "unused bytes");
        assertRejected("""
                {"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", eight, "after the last tensor");
        assertRejected("""
                {"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", eight, "needs 12 bytes");
        assertRejected("""
                {"a":{"dtype":"I8","shape":[8],"data_offsets":[0,8]}}""", eight, "dtype 'I8'");
        assertRejected("{not json", eight, "not valid JSON");
    }

    private void assertRejected(String header, byte[] data, String expected) throws IOException {
        Path file = handMade(header, data);
        var e = assertThrows(IOException.class, () -> SafeTensors.read(file));
        assertTrue(e.getMessage().contains(expected), e.getMessage());
    }

    private Path handMade(String header, byte[] data) throws IOException {
        byte[] json = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + json.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(json.length).put(json).put(data);
        Path file = Files.createTempFile(dir, "hand", ".safetensors");
        Files.write(file, b.array());
        return file;
    }

    private static long headerLength(Path file) throws IOException {
        byte[] first = Arrays.copyOf(Files.readAllBytes(file), 8);
        return ByteBuffer.wrap(first).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }
}
