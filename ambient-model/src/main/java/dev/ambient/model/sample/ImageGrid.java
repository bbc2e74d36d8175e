package dev.ambient.model.sample;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/** Writes a batch of NHWC images in [-1, 1] as one PNG grid, as EDM does: {@code uint8 = clip(x * 127.5 + 128)}. */
public final class ImageGrid {

    private ImageGrid() {}

    /**
     * Writes {@code count} images of {@code size x size x channels} (1 grey or 3 RGB channels),
     * {@code columns} per row, to {@code file} (written beside it first, then renamed).
     */
    public static void writePng(Path file, float[] images, int count, int size, int channels, int columns) throws IOException {
        if (channels != 1 && channels != 3) {
            throw new IllegalArgumentException("a PNG grid needs 1 or 3 channels, got " + channels + " (latents must be decoded first)");
        }
        if (count <= 0 || columns <= 0 || (long) count * size * size * channels != images.length) {
            throw new IllegalArgumentException(images.length + " values are not " + count + " images of " + size + "x" + size + "x" + channels);
        }
        int cols = Math.min(columns, count), rows = (count + cols - 1) / cols;
        BufferedImage grid = new BufferedImage(cols * size, rows * size, BufferedImage.TYPE_INT_RGB);
        for (int i = 0; i < count; i++) {
            int ox = (i % cols) * size, oy = (i / cols) * size;
            for (int y = 0; y < size; y++) {
                for (int x = 0; x < size; x++) {
                    int base = ((i * size + y) * size + x) * channels;
                    int r = toByte(images[base]);
                    int g = channels == 3 ? toByte(images[base + 1]) : r;
                    int b = channels == 3 ? toByte(images[base + 2]) : r;
                    grid.setRGB(ox + x, oy + y, (r << 16) | (g << 8) | b);
                }
            }
        }
        Path dir = file.toAbsolutePath().getParent();
        if (dir != null) Files.createDirectories(dir);
        Path tmp = Files.createTempFile(dir, file.getFileName().toString(), ".tmp");
        try {
            if (!ImageIO.write(grid, "png", tmp.toFile())) throw new IOException("no PNG writer available");
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    static int toByte(float v) {
        return (int) Math.max(0, Math.min(255, Math.floor(v * 127.5 + 128)));
    }
}
