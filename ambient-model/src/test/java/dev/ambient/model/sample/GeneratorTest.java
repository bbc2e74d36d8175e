package dev.ambient.model.sample;

import dev.ambient.kernels.Device;
import dev.ambient.model.unet.Edm2Model;
import dev.ambient.model.unet.UNetConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GeneratorTest {

    static final UNetConfig TINY = new UNetConfig(8, 3, 4, 8, new int[] {1, 2}, null, null, 1, new int[] {4}, 0,
            0.5, 0.5, 0.3, 0.3, 256, 4, 8);

    @Test
    void eachImageDependsOnItsSeedAndLabelOnly(@TempDir Path dir) throws Exception {
        long seed = System.nanoTime();
        System.out.println("GeneratorTest seed " + seed);
        try (Edm2Model model = new Edm2Model(TINY, Device.cpu(), seed)) {
            for (var e : model.parameters().entries()) { // gains away from 0, so that labels matter
                if (e.layout() == dev.ambient.model.nn.Parameters.Layout.SCALAR) e.value().copyFrom(new float[] {0.7f});
            }
            HeunSampler sampler = new HeunSampler(6, 0.002, 80, 7);
            long[] seeds = {11, 12, 13, 14, 15};
            int[] labels = {0, 1, 2, 3, 0};
            float[] all = Generator.generate(model, sampler, seeds, labels, 5);
            float[] inTwos = Generator.generate(model, sampler, seeds, labels, 2);
            assertArrayEquals(all, inTwos, "the same images whatever the batch");
            float[] relabelled = Generator.generate(model, sampler, seeds, new int[] {1, 1, 2, 3, 0}, 5);
            int size = 8 * 8 * 3;
            assertFalse(Arrays.equals(Arrays.copyOf(all, size), Arrays.copyOf(relabelled, size)), "the label changes the first image");
            assertArrayEquals(Arrays.copyOfRange(all, size, all.length), Arrays.copyOfRange(relabelled, size, all.length));
            for (float v : all) assertTrue(Float.isFinite(v));

            Path png = dir.resolve("grid.png");
            ImageGrid.writePng(png, all, 5, 8, 3, 3);
            BufferedImage grid = ImageIO.read(png.toFile());
            assertEquals(24, grid.getWidth());
            assertEquals(16, grid.getHeight());
            int rgb = grid.getRGB(9, 0); // image 1, pixel (0, 1)
            assertEquals(ImageGrid.toByte(all[size + 3]), (rgb >> 16) & 255);
            assertThrows(IllegalArgumentException.class, () -> ImageGrid.writePng(png, new float[10], 1, 8, 3, 1));
        }
    }
}
