package dev.ambient.examples;

import dev.ambient.model.unet.UNetConfig;
import picocli.CommandLine.Option;

import java.util.List;

/** The network's shape: a preset, or EDM2's UNet sized for the data. */
final class NetworkOptions {

    @Option(names = "--preset", paramLabel = "NAME", description = "W1 (16x16), W2 (32x32), W3 or EDM2-XS (64x64x4); default: sized from the data.")
    String preset;

    @Option(names = "--channels", description = "model_channels (default: 32 below 32x32 images, else 64).")
    Integer channels;

    @Option(names = "--mult", split = ",", description = "channel_mult per level (default 1,2,2 for 16x16, 1,2,2,2 above).")
    List<Integer> mult;

    @Option(names = "--blocks", defaultValue = "2", description = "Blocks per level (default ${DEFAULT-VALUE}).")
    int blocks;

    @Option(names = "--attn", split = ",", description = "Attention resolutions (default: 8, and 16 for 32x32 and above).")
    List<Integer> attention;

    @Option(names = "--dropout", defaultValue = "0", description = "Dropout in the blocks (default ${DEFAULT-VALUE}).")
    double dropout;

    @Option(names = "--cond", description = "Class-conditional on the dataset's labels.")
    boolean conditional;

    @Option(names = "--channels-per-head", defaultValue = "64", description = "Attention head width (default ${DEFAULT-VALUE}, EDM2's).")
    int channelsPerHead;

    private static UNetConfig shaped(int resolution, int channelsIn, int labelDim, int mc, int[] mult, int blocks, int[] attn,
                                     double dropout, int perHead) {
        UNetConfig d = UNetConfig.edm2(resolution, channelsIn, labelDim, mc, mult, blocks, attn, dropout);
        return new UNetConfig(resolution, channelsIn, labelDim, mc, mult, null, null, blocks, attn, dropout, d.labelBalance(),
                d.concatBalance(), d.resBalance(), d.attnBalance(), d.clipAct(), perHead, d.logvarChannels());
    }

    UNetConfig config(int resolution, int channelsIn, int labels) {
        int labelDim = conditional ? labels : 0;
        if (conditional && labels == 0) throw new IllegalArgumentException("--cond needs a labelled dataset");
        if (preset != null) {
            UNetConfig p = UNetConfig.preset(preset);
            if (p.imgResolution() != resolution || p.imgChannels() != channelsIn) {
                throw new IllegalArgumentException("--preset " + preset + " takes " + p.imgResolution() + "x" + p.imgResolution() + "x"
                        + p.imgChannels() + " images, the data has " + resolution + "x" + resolution + "x" + channelsIn);
            }
            return shaped(resolution, channelsIn, labelDim, p.modelChannels(), p.channelMult(), p.numBlocks(),
                    p.attnResolutions(), dropout, channelsPerHead);
        }
        int mc = channels != null ? channels : resolution < 32 ? 32 : 64;
        int[] m = mult != null ? mult.stream().mapToInt(Integer::intValue).toArray() : resolution <= 16 ? new int[] {1, 2, 2} : new int[] {1, 2, 2, 2};
        int[] attn = attention != null ? attention.stream().mapToInt(Integer::intValue).toArray() : resolution >= 32 ? new int[] {16, 8} : new int[] {8};
        return shaped(resolution, channelsIn, labelDim, mc, m, blocks, attn, dropout, channelsPerHead);
    }
}
