package dev.ambient.model.unet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The UNet's layout and parameter names against EDM2's published structure. */
class UNetConfigTest {

    @Test
    void edm2XsHasAbout125MillionParameters() {
        // EDM2 paper, Table 2: XS has 125M parameters
        long n = UNetConfig.edm2Xs().parameterCount();
        assertTrue(n > 123_000_000 && n < 126_000_000, "EDM2-XS parameters: " + n);
    }

    @Test
    void parameterCountsMatchThePyTorchNetworkOfTheBenchmarks() {
        // counted by benchmarks/.../edm2_torch.py (`count`), the independent PyTorch version
        assertEquals(1_688_694, UNetConfig.w1().parameterCount());
        assertEquals(124_713_253, UNetConfig.edm2Xs().parameterCount());
    }

    @Test
    void w1LayoutAndNames() {
        UNetConfig c = UNetConfig.w1();
        assertEquals(32, c.noiseChannels());
        assertEquals(64, c.embChannels());
        List<String> enc = c.encoder().stream().map(UNetConfig.BlockSpec::name).toList();
        assertEquals(List.of("enc.16x16_conv", "enc.16x16_block0", "enc.16x16_block1", "enc.8x8_down", "enc.8x8_block0",
                "enc.8x8_block1", "enc.4x4_down", "enc.4x4_block0", "enc.4x4_block1"), enc);
        List<String> dec = c.decoder().stream().map(UNetConfig.BlockSpec::name).toList();
        assertEquals("dec.4x4_in0", dec.getFirst());
        assertEquals("dec.16x16_block2", dec.getLast());
        assertEquals(2 + 3 + (1 + 3) * 2, dec.size());
        var shapes = c.stateShapes();
        assertArrayEquals(new long[] {32, 4, 3, 3}, shapes.get("unet.enc.16x16_conv.weight"));
        assertArrayEquals(new long[] {3, 32, 3, 3}, shapes.get("unet.out_conv.weight"));
        // attention at 8x8 only; decoder blocks at 8x8 concatenate 64-channel skips
        assertTrue(shapes.containsKey("unet.enc.8x8_block0.attn_qkv.weight"));
        assertFalse(shapes.containsKey("unet.enc.16x16_block0.attn_qkv.weight"));
        assertTrue(shapes.containsKey("unet.dec.4x4_in0.attn_qkv.weight"), "in0 always has attention");
        assertArrayEquals(new long[] {64, 128, 1, 1}, shapes.get("unet.dec.8x8_block0.conv_skip.weight"));
        assertArrayEquals(new long[] {1, 128}, shapes.get("logvar_linear.weight"));
        assertArrayEquals(new long[] {}, shapes.get("unet.out_gain"));
    }

    @Test
    void presetsByName() {
        assertEquals(UNetConfig.w2().parameterCount(), UNetConfig.preset("unet-c32").parameterCount());
        assertThrows(IllegalArgumentException.class, () -> UNetConfig.preset("W9"));
        assertThrows(IllegalArgumentException.class,
                () -> UNetConfig.edm2(12, 3, 0, 32, new int[] {1, 2, 2, 2}, 2, new int[] {}, 0));
    }
}
