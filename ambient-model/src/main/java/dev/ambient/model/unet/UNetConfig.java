package dev.ambient.model.unet;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The shape of EDM2's magnitude-preserving UNet with its Precond wrapper ("Analyzing and
 * Improving the Training Dynamics of Diffusion Models", Karras et al. 2024), and the names and
 * PyTorch shapes of its parameters and buffers, equal to the keys of EDM2's {@code state_dict},
 * so that checkpoints load on either side.
 *
 * <p>Derived sizes: block channels {@code modelChannels * channelMult[level]} at resolution
 * {@code imgResolution >> level}; noise features {@code modelChannels * channelMultNoise} (or
 * the first block's channels); embedding {@code modelChannels * channelMultEmb} (or the widest
 * block's); attention heads of {@code channelsPerHead} channels.
 */
public record UNetConfig(
        int imgResolution, int imgChannels, int labelDim,
        int modelChannels, int[] channelMult, Integer channelMultNoise, Integer channelMultEmb,
        int numBlocks, int[] attnResolutions, double dropout,
        double labelBalance, double concatBalance, double resBalance, double attnBalance,
        double clipAct, int channelsPerHead, int logvarChannels) {

    public UNetConfig {
        if (imgResolution <= 0 || imgChannels <= 0 || labelDim < 0 || modelChannels <= 0 || numBlocks < 1
                || channelMult.length == 0 || channelsPerHead <= 0 || logvarChannels <= 0) {
            throw new IllegalArgumentException("invalid UNet configuration");
        }
        if (imgResolution >> (channelMult.length - 1) < 1 || (imgResolution % (1 << (channelMult.length - 1))) != 0) {
            throw new IllegalArgumentException("resolution " + imgResolution + " cannot be halved " + (channelMult.length - 1) + " times");
        }
        if (!(dropout >= 0 && dropout < 1)) throw new IllegalArgumentException("dropout " + dropout + " must be in [0, 1)");
        channelMult = channelMult.clone();
        attnResolutions = attnResolutions.clone();
    }

    /** EDM2's defaults for a given image shape and network width. */
    public static UNetConfig edm2(int resolution, int channels, int labelDim, int modelChannels, int[] mult, int blocks,
                                  int[] attention, double dropout) {
        return new UNetConfig(resolution, channels, labelDim, modelChannels, mult, null, null, blocks, attention, dropout,
                0.5, 0.5, 0.3, 0.3, 256, 64, 128);
    }

    /** W1 of DESIGN.md: 16x16x3 images, 32 channels, multipliers 1,2,2, 2 blocks, attention at 8. */
    public static UNetConfig w1() {
        return edm2(16, 3, 0, 32, new int[] {1, 2, 2}, 2, new int[] {8}, 0);
    }

    /** W2: 32x32x3 images, 64 channels, multipliers 1,2,2,2, 2 blocks, attention at 16 and 8. */
    public static UNetConfig w2() {
        return edm2(32, 3, 0, 64, new int[] {1, 2, 2, 2}, 2, new int[] {16, 8}, 0);
    }

    /** W3: EDM2-XS's shape on 64x64x4 latents, unconditional (GPU-sized). */
    public static UNetConfig w3() {
        return edm2(64, 4, 0, 128, new int[] {1, 2, 3, 4}, 3, new int[] {16, 8}, 0);
    }

    /** EDM2-XS on ImageNet-512 latents, 1000 classes (the published img512-xs). */
    public static UNetConfig edm2Xs() {
        return edm2(64, 4, 1000, 128, new int[] {1, 2, 3, 4}, 3, new int[] {16, 8}, 0);
    }

    /** A preset by name: W1, W2, W3 or EDM2-XS (case-insensitive). */
    public static UNetConfig preset(String name) {
        return switch (name.toUpperCase()) {
            case "W1", "UNET-S16" -> w1();
            case "W2", "UNET-C32" -> w2();
            case "W3", "UNET-XS64" -> w3();
            case "EDM2-XS", "XS" -> edm2Xs();
            default -> throw new IllegalArgumentException("unknown preset '" + name + "': W1, W2, W3 or EDM2-XS");
        };
    }

    public int blockChannels(int level) {
        return modelChannels * channelMult[level];
    }

    public int noiseChannels() {
        return channelMultNoise != null ? modelChannels * channelMultNoise : blockChannels(0);
    }

    public int embChannels() {
        if (channelMultEmb != null) return modelChannels * channelMultEmb;
        int max = 0;
        for (int level = 0; level < channelMult.length; level++) max = Math.max(max, blockChannels(level));
        return max;
    }

    public boolean attentionAt(int resolution) {
        for (int r : attnResolutions) if (r == resolution) return true;
        return false;
    }

    /** One block of the UNet: its state_dict prefix and shape. */
    public record BlockSpec(String name, int in, int out, boolean encoder, String resample, boolean attention) {}

    /** The encoder's modules in order (the first is the input convolution, a plain MPConv). */
    public List<BlockSpec> encoder() {
        List<BlockSpec> blocks = new ArrayList<>();
        int cout = imgChannels + 1;
        for (int level = 0; level < channelMult.length; level++) {
            int res = imgResolution >> level;
            if (level == 0) {
                blocks.add(new BlockSpec("enc." + res + "x" + res + "_conv", cout, blockChannels(0), true, "conv", false));
                cout = blockChannels(0);
            } else {
                blocks.add(new BlockSpec("enc." + res + "x" + res + "_down", cout, cout, true, "down", false));
            }
            for (int idx = 0; idx < numBlocks; idx++) {
                blocks.add(new BlockSpec("enc." + res + "x" + res + "_block" + idx, cout, blockChannels(level), true, "keep",
                        attentionAt(res)));
                cout = blockChannels(level);
            }
        }
        return blocks;
    }

    /** The decoder's blocks in order; every "block" one starts with mp_cat of a skip. */
    public List<BlockSpec> decoder() {
        List<BlockSpec> enc = encoder();
        List<Integer> skips = new ArrayList<>();
        for (BlockSpec b : enc) skips.add(b.out());
        List<BlockSpec> blocks = new ArrayList<>();
        int cout = enc.getLast().out();
        for (int level = channelMult.length - 1; level >= 0; level--) {
            int res = imgResolution >> level;
            if (level == channelMult.length - 1) {
                blocks.add(new BlockSpec("dec." + res + "x" + res + "_in0", cout, cout, false, "keep", true));
                blocks.add(new BlockSpec("dec." + res + "x" + res + "_in1", cout, cout, false, "keep", false));
            } else {
                blocks.add(new BlockSpec("dec." + res + "x" + res + "_up", cout, cout, false, "up", false));
            }
            for (int idx = 0; idx <= numBlocks; idx++) {
                int cin = cout + skips.removeLast();
                cout = blockChannels(level);
                blocks.add(new BlockSpec("dec." + res + "x" + res + "_block" + idx, cin, cout, false, "keep", attentionAt(res)));
            }
        }
        return blocks;
    }

    /**
     * Every parameter and buffer of EDM2's Precond with its PyTorch shape (convolutions OIHW,
     * fully connected layers [out, in], scalars []), in state_dict order.
     */
    public Map<String, long[]> stateShapes() {
        Map<String, long[]> s = new LinkedHashMap<>();
        s.put("unet.out_gain", new long[] {});
        s.put("unet.emb_fourier.freqs", new long[] {noiseChannels()});
        s.put("unet.emb_fourier.phases", new long[] {noiseChannels()});
        s.put("unet.emb_noise.weight", new long[] {embChannels(), noiseChannels()});
        if (labelDim != 0) s.put("unet.emb_label.weight", new long[] {embChannels(), labelDim});
        for (BlockSpec b : encoder()) {
            if (b.resample().equals("conv")) s.put("unet." + b.name() + ".weight", new long[] {b.out(), b.in(), 3, 3});
            else putBlock(s, b);
        }
        for (BlockSpec b : decoder()) putBlock(s, b);
        s.put("unet.out_conv.weight", new long[] {imgChannels, blockChannels(0), 3, 3});
        s.put("logvar_fourier.freqs", new long[] {logvarChannels});
        s.put("logvar_fourier.phases", new long[] {logvarChannels});
        s.put("logvar_linear.weight", new long[] {1, logvarChannels});
        return s;
    }

    private void putBlock(Map<String, long[]> s, BlockSpec b) {
        String p = "unet." + b.name() + ".";
        s.put(p + "emb_gain", new long[] {});
        s.put(p + "conv_res0.weight", new long[] {b.out(), b.encoder() ? b.out() : b.in(), 3, 3});
        s.put(p + "emb_linear.weight", new long[] {b.out(), embChannels()});
        s.put(p + "conv_res1.weight", new long[] {b.out(), b.out(), 3, 3});
        if (b.in() != b.out()) s.put(p + "conv_skip.weight", new long[] {b.out(), b.in(), 1, 1});
        if (b.attention()) {
            s.put(p + "attn_qkv.weight", new long[] {b.out() * 3L, b.out(), 1, 1});
            s.put(p + "attn_proj.weight", new long[] {b.out(), b.out(), 1, 1});
        }
    }

    /** Learned parameters (the Fourier buffers excluded). */
    public long parameterCount() {
        long n = 0;
        for (var e : stateShapes().entrySet()) {
            if (e.getKey().contains("fourier")) continue;
            long c = 1;
            for (long d : e.getValue()) c *= d;
            n += c;
        }
        return n;
    }
}
