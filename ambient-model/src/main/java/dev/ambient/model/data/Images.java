package dev.ambient.model.data;

import java.awt.image.BufferedImage;
import java.awt.image.DataBufferByte;
import java.awt.image.IndexColorModel;
import java.awt.image.Raster;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import javax.imageio.ImageIO;

/** Conversions between HWC uint8 codes and {@link BufferedImage}s, and PNG files. */
public final class Images {

    private Images() {}

    /** 1 for a grey image, 3 for everything else (colour, palette; alpha is not counted). */
    public static int channelsOf(BufferedImage img) {
        var cm = img.getColorModel();
        boolean grey = cm.getNumColorComponents() == 1 && !(cm instanceof IndexColorModel);
        return grey ? 1 : 3;
    }

    /** HWC uint8 codes of {@code img} with {@code channels} = {@link #channelsOf}: grey values, or sRGB. */
    public static byte[] codesOf(BufferedImage img, int channels) {
        int h = img.getHeight(), w = img.getWidth();
        if (channels == 1) {
            Raster r = img.getRaster();
            int bits = img.getColorModel().getComponentSize(0);
            byte[] out = new byte[h * w];
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) {
                    int s = r.getSample(x, y, 0);
                    // 16-bit grey keeps its top byte; 1/2/4-bit grey is stretched to 0..255
                    out[y * w + x] = (byte) (bits > 8 ? s >> (bits - 8) : bits < 8 ? s * 255 / ((1 << bits) - 1) : s);
                }
            }
            return out;
        }
        if (channels != 3) throw new IllegalArgumentException("channels must be 1 or 3, got " + channels);
        byte[] out = new byte[h * w * 3];
        int[] row = new int[w];
        for (int y = 0; y < h; y++) {
            img.getRGB(0, y, w, 1, row, 0, w);
            for (int x = 0; x < w; x++) {
                int p = row[x], o = (y * w + x) * 3;
                out[o] = (byte) (p >> 16);
                out[o + 1] = (byte) (p >> 8);
                out[o + 2] = (byte) p;
            }
        }
        return out;
    }

    /** An 8-bit grey (C = 1) or RGB (C = 3) image over a copy of HWC codes. */
    public static BufferedImage toImage(byte[] codes, int offset, int height, int width, int channels) {
        if (channels != 1 && channels != 3) throw new IllegalArgumentException("channels must be 1 or 3, got " + channels);
        int n = height * width * channels;
        java.util.Objects.checkFromIndexSize(offset, n, codes.length);
        BufferedImage img = new BufferedImage(width, height, channels == 1 ? BufferedImage.TYPE_BYTE_GRAY : BufferedImage.TYPE_3BYTE_BGR);
        byte[] dst = ((DataBufferByte) img.getRaster().getDataBuffer()).getData();
        if (channels == 1) {
            System.arraycopy(codes, offset, dst, 0, n);
        } else {
            for (int p = 0; p < height * width; p++) { // RGB -> the buffer's BGR order
                dst[3 * p] = codes[offset + 3 * p + 2];
                dst[3 * p + 1] = codes[offset + 3 * p + 1];
                dst[3 * p + 2] = codes[offset + 3 * p];
            }
        }
        return img;
    }

    /** Image {@code i} of a dataset as a {@link BufferedImage}. */
    public static BufferedImage toImage(ImageDataset dataset, int i) {
        return toImage(dataset.codes(i), 0, dataset.height(), dataset.width(), dataset.channels());
    }

    /** Writes {@code img} as PNG, through a temporary file and a rename so no half-written file is left behind. */
    public static void writePng(BufferedImage img, Path file) throws IOException {
        Path dir = file.toAbsolutePath().getParent();
        Files.createDirectories(dir);
        Path tmp = Files.createTempFile(dir, file.getFileName().toString(), ".tmp");
        try {
            if (!ImageIO.write(img, "png", tmp.toFile())) throw new IOException("no PNG writer for " + file);
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }
}
