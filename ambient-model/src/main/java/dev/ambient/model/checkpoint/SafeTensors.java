package dev.ambient.model.checkpoint;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads and writes the safetensors format (the checkpoint format of EDM2's and Ambient-o's
 * published models): an 8-byte little-endian header length, a JSON header naming each tensor's
 * dtype, shape and byte range, then the little-endian data, every byte of it covered once.
 *
 * <p>Writing is atomic: a temporary file beside the target, flushed to disk, then renamed over
 * it, so a crash leaves the old checkpoint or the new one, never half of one. Reading verifies
 * the header against the file (sizes, offsets, dtypes, shapes, holes and overlaps) and names the
 * file and the tensor in every error. Tensors are float32 in memory; F16 and BF16 files are
 * widened on read.
 */
public final class SafeTensors {

    /** One tensor: its shape and float32 values, row-major. */
    public record Tensor(long[] shape, float[] values) {
        public Tensor {
            long count = 1;
            for (long d : shape) {
                if (d < 0) throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
                count = Math.multiplyExact(count, d);
            }
            if (count != values.length) {
                throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " holds " + count + " values, got "
                        + values.length);
            }
        }
    }

    /** A file's tensors in header order, and its string metadata. */
    public record Contents(Map<String, Tensor> tensors, Map<String, String> metadata) {}

    private static final long MAX_HEADER_BYTES = 100L << 20;
    private static final ObjectMapper JSON = new ObjectMapper();

    private SafeTensors() {}

    // ---- Writing --------------------------------------------------------------------------

    /** Writes the tensors (float32) and metadata to {@code file}, atomically. */
    public static void write(Path file, Map<String, Tensor> tensors, Map<String, String> metadata) throws IOException {
        ObjectNode header = JSON.createObjectNode();
        if (metadata != null && !metadata.isEmpty()) {
            ObjectNode meta = header.putObject("__metadata__");
            metadata.forEach(meta::put);
        }
        long offset = 0;
        for (var entry : tensors.entrySet()) {
            if (entry.getKey().equals("__metadata__") || entry.getKey().isEmpty()) {
                throw new IllegalArgumentException("'" + entry.getKey() + "' cannot name a tensor");
            }
            long bytes = 4L * entry.getValue().values().length;
            ObjectNode t = header.putObject(entry.getKey());
            t.put("dtype", "F32");
            var shape = t.putArray("shape");
            for (long d : entry.getValue().shape()) shape.add(d);
            t.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
        }
        byte[] json = JSON.writeValueAsBytes(header);
        int padded = (json.length + 7) / 8 * 8; // data starts 8-byte aligned
        ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded).put(json);
        while (head.hasRemaining()) head.put((byte) ' ');
        head.flip();

        Path target = file.toAbsolutePath();
        Path dir = target.getParent();
        Files.createDirectories(dir);
        Path temporary = Files.createTempFile(dir, "." + target.getFileName(), ".partial");
        try {
            try (FileChannel out = FileChannel.open(temporary, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                writeFully(out, head);
                ByteBuffer chunk = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
                for (Tensor t : tensors.values()) {
                    for (float v : t.values()) {
                        if (chunk.remaining() < 4) {
                            chunk.flip();
                            writeFully(out, chunk);
                            chunk.clear();
                        }
                        chunk.putFloat(v);
                    }
                }
                chunk.flip();
                writeFully(out, chunk);
                out.force(true);
            }
            try {
                Files.move(temporary, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } catch (AtomicMoveNotSupportedException e) {
                throw new IOException("cannot replace " + target + " atomically on this file system", e);
            }
            syncDirectory(dir);
        } finally {
            Files.deleteIfExists(temporary);
        }
    }

    private static void writeFully(FileChannel out, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) out.write(buffer);
    }

    /** Makes the rename itself durable (a no-op where directories cannot be opened). */
    private static void syncDirectory(Path dir) {
        try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
            d.force(true);
        } catch (IOException | UnsupportedOperationException e) {
            // some file systems refuse to open a directory; the data itself is already on disk
        }
    }

    // ---- Reading --------------------------------------------------------------------------

    /** Reads and verifies a whole file. */
    public static Contents read(Path file) throws IOException {
        try (FileChannel in = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = in.size();
            if (size < 8) throw corrupt(file, "is " + size + " bytes long, shorter than the 8-byte header length");
            ByteBuffer lengthBytes = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(in, lengthBytes, 0, file);
            long headerBytes = lengthBytes.flip().getLong();
            if (headerBytes <= 0 || headerBytes > MAX_HEADER_BYTES || headerBytes > size - 8) {
                throw corrupt(file, "declares a header of " + headerBytes + " bytes but the file has " + size
                        + " (truncated, or not a safetensors file)");
            }
            ByteBuffer headerBuffer = ByteBuffer.allocate((int) headerBytes);
            readFully(in, headerBuffer, 8, file);
            JsonNode header;
            try {
                header = JSON.readTree(new String(headerBuffer.array(), StandardCharsets.UTF_8).strip());
            } catch (JsonProcessingException e) {
                throw corrupt(file, "has a header that is not valid JSON: " + e.getOriginalMessage());
            }
            if (header == null || !header.isObject()) throw corrupt(file, "has a header that is not a JSON object");

            long dataStart = 8 + headerBytes, dataBytes = size - dataStart;
            Map<String, String> metadata = new LinkedHashMap<>();
            List<Object[]> entries = new ArrayList<>(); // name, dtype, shape, begin, end
            for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
                var field = it.next();
                if (field.getKey().equals("__metadata__")) {
                    field.getValue().fields().forEachRemaining(m -> metadata.put(m.getKey(), m.getValue().asText()));
                    continue;
                }
                entries.add(describe(file, field.getKey(), field.getValue(), dataBytes));
            }
            checkCoverage(file, entries, dataBytes);
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (Object[] e : entries) {
                long begin = (long) e[3], end = (long) e[4];
                if (end - begin > Integer.MAX_VALUE - 8) throw corrupt(file, "tensor '" + e[0] + "' is too large for one Java array");
                ByteBuffer data = ByteBuffer.allocate((int) (end - begin)).order(ByteOrder.LITTLE_ENDIAN);
                readFully(in, data, dataStart + begin, file);
                data.flip();
                tensors.put((String) e[0], new Tensor((long[]) e[2], decode((String) e[1], data)));
            }
            return new Contents(Collections.unmodifiableMap(tensors), Collections.unmodifiableMap(metadata));
        }
    }

    private static Object[] describe(Path file, String name, JsonNode node, long dataBytes) throws IOException {
        String where = "tensor '" + name + "'";
        String dtype = node.path("dtype").asText("");
        int width = switch (dtype) {
            case "F32" -> 4;
            case "F16", "BF16" -> 2;
            default -> throw corrupt(file, where + " has dtype '" + dtype + "'; Ambient reads F32, F16 and BF16");
        };
        JsonNode shapeNode = node.path("shape"), offsets = node.path("data_offsets");
        if (!shapeNode.isArray() || !offsets.isArray() || offsets.size() != 2) {
            throw corrupt(file, where + " needs a 'shape' array and two 'data_offsets'");
        }
        long[] shape = new long[shapeNode.size()];
        long count = 1;
        for (int i = 0; i < shape.length; i++) {
            shape[i] = shapeNode.get(i).asLong(-1);
            if (shape[i] < 0 || !shapeNode.get(i).canConvertToLong()) throw corrupt(file, where + " has a bad shape " + shapeNode);
            count = Math.multiplyExact(count, shape[i]);
        }
        long begin = offsets.get(0).asLong(-1), end = offsets.get(1).asLong(-1);
        if (begin < 0 || end < begin || end > dataBytes) {
            throw corrupt(file, where + " has data_offsets [" + begin + ", " + end + "] outside the " + dataBytes
                    + " data bytes (truncated file?)");
        }
        if (end - begin != count * width) {
            throw corrupt(file, where + " of shape " + Arrays.toString(shape) + " and dtype " + dtype + " needs "
                    + count * width + " bytes but its offsets span " + (end - begin));
        }
        return new Object[] {name, dtype, shape, begin, end};
    }

    /** The data must be covered exactly once: no overlaps, no holes, nothing after the end. */
    private static void checkCoverage(Path file, List<Object[]> entries, long dataBytes) throws IOException {
        List<Object[]> sorted = new ArrayList<>(entries);
        sorted.sort((a, b) -> Long.compare((long) a[3], (long) b[3]));
        long expected = 0;
        for (Object[] e : sorted) {
            long begin = (long) e[3];
            if (begin != expected) {
                throw corrupt(file, (begin < expected ? "tensor '" + e[0] + "' overlaps the previous one"
                        : "has " + (begin - expected) + " unused bytes before tensor '" + e[0] + "'"));
            }
            expected = (long) e[4];
        }
        if (expected != dataBytes) {
            throw corrupt(file, "has " + (dataBytes - expected) + " bytes after the last tensor (a different or damaged file)");
        }
    }

    private static float[] decode(String dtype, ByteBuffer data) {
        int count = data.remaining() / (dtype.equals("F32") ? 4 : 2);
        float[] out = new float[count];
        for (int i = 0; i < count; i++) {
            out[i] = switch (dtype) {
                case "F32" -> data.getFloat();
                case "F16" -> Float.float16ToFloat(data.getShort());
                default -> Float.intBitsToFloat((data.getShort() & 0xffff) << 16); // BF16: the high half of a float
            };
        }
        return out;
    }

    private static void readFully(FileChannel in, ByteBuffer buffer, long position, Path file) throws IOException {
        long at = position;
        while (buffer.hasRemaining()) {
            int n = in.read(buffer, at);
            if (n < 0) throw corrupt(file, "ends early at byte " + at + " (truncated)");
            at += n;
        }
    }

    private static IOException corrupt(Path file, String what) {
        return new IOException("checkpoint " + file + " " + what);
    }
}
