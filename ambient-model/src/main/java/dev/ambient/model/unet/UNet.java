package dev.ambient.model.unet;

import dev.ambient.kernels.Embedding;
import dev.ambient.kernels.MagnitudePreserving;
import dev.ambient.kernels.Tensor;
import dev.ambient.model.nn.MPConv;
import dev.ambient.model.nn.Parameters;
import dev.ambient.model.nn.StepContext;
import dev.ambient.model.nn.TensorPool;

import java.util.ArrayList;
import java.util.List;

/**
 * EDM2's magnitude-preserving UNet F (without the preconditioning), forward and backward:
 * <pre>
 *   emb = mp_silu(mp_sum(emb_noise(mp_fourier(c_noise)), emb_label(labels * sqrt(label_dim)), label_balance))
 *   encoder: a 3x3 MPConv, then per level a 'down' block (not at the first level) and num_blocks
 *            'enc' blocks; every module's output is kept as a skip
 *   decoder: per level from the lowest resolution, in0 + in1 (lowest) or an 'up' block, then
 *            num_blocks + 1 'dec' blocks, each after mp_cat(x, skip, concat_balance)
 *   F = out_conv(x, gain = out_gain)
 * </pre>
 * The input already carries EDM2's constant channel of ones ({@code [N, R, R, img_channels + 1]});
 * labels, when the configuration has them, are one-hot rows already multiplied by
 * {@code sqrt(label_dim)}.
 */
public final class UNet {

    private final UNetConfig config;
    private final Parameters.Entry freqs, phases;
    private final MPConv embNoise, embLabel, inConv, outConv;
    private final List<Block> encoder = new ArrayList<>(); // index 0 stands for inConv (null)
    private final List<Block> decoder = new ArrayList<>();
    private final List<MPConv> convs = new ArrayList<>();

    // kept from the forward pass
    private Tensor xIn, labels, fourier, embPre, emb;
    private final List<Tensor> encOut = new ArrayList<>();
    private final List<Tensor> decIn = new ArrayList<>();  // mp_cat's output, or null for in0/in1/up
    private final List<Tensor> decOut = new ArrayList<>();

    UNet(Parameters params, UNetConfig config) {
        this.config = config;
        int cemb = config.embChannels(), cnoise = config.noiseChannels();
        Parameters.Entry outGain = params.parameter("unet.out_gain", Parameters.Layout.SCALAR);
        freqs = params.buffer("unet.emb_fourier.freqs", cnoise);
        phases = params.buffer("unet.emb_fourier.phases", cnoise);
        embNoise = add(new MPConv(params, "unet.emb_noise.weight", cnoise, cemb, 0));
        embLabel = config.labelDim() > 0 ? add(new MPConv(params, "unet.emb_label.weight", config.labelDim(), cemb, 0)) : null;
        MPConv first = null;
        long stream = 0;
        for (UNetConfig.BlockSpec b : config.encoder()) {
            if (b.resample().equals("conv")) {
                first = add(new MPConv(params, "unet." + b.name() + ".weight", b.in(), b.out(), 3));
                encoder.add(null);
            } else {
                encoder.add(new Block(params, config, b, cemb, stream++, convs));
            }
        }
        inConv = first;
        for (UNetConfig.BlockSpec b : config.decoder()) decoder.add(new Block(params, config, b, cemb, stream++, convs));
        outConv = add(new MPConv(params, "unet.out_conv.weight", config.blockChannels(0), config.imgChannels(), 3).withGain(outGain));
    }

    private MPConv add(MPConv conv) {
        convs.add(conv);
        return conv;
    }

    /** Every MPConv, for {@link MPConv#prepare} and {@link MPConv#finishBackward}. */
    List<MPConv> convs() {
        return convs;
    }

    Parameters.Entry fourierFrequencies() {
        return freqs;
    }

    Parameters.Entry fourierPhases() {
        return phases;
    }

    /**
     * F(x; c_noise, labels) for {@code x [N, R, R, C + 1]}, {@code cNoise [N]} and labels
     * {@code [N, label_dim]} (or null); returns a pool tensor {@code [N, R, R, C]} the caller
     * gives back. In training, x, cNoise and labels must stay alive until {@link #backward}.
     */
    Tensor forward(Tensor x, Tensor cNoise, Tensor labels, StepContext ctx) {
        TensorPool pool = ctx.pool();
        long n = x.dim(0);
        xIn = x;
        this.labels = labels;
        fourier = Embedding.mpFourier(cNoise, freqs.value(), phases.value(), pool.take(n, config.noiseChannels()));
        embPre = embNoise.forward(fourier, pool.take(n, config.embChannels()));
        if (embLabel != null) {
            if (labels == null) throw new IllegalArgumentException("the network is conditional (label_dim " + config.labelDim() + "): labels are required");
            Tensor l = embLabel.forward(labels, pool.take(n, config.embChannels()));
            MagnitudePreserving.sum(embPre, l, (float) config.labelBalance(), embPre);
            pool.give(l);
        }
        emb = MagnitudePreserving.silu(embPre, pool.take(n, config.embChannels()));
        Tensor h = x;
        for (Block block : encoder) {
            h = block == null ? inConv.forward(h, pool.take(n, h.dim(1), h.dim(2), inConv.out())) : block.forward(h, emb, ctx);
            encOut.add(h);
        }
        int skip = encOut.size();
        for (Block block : decoder) {
            Tensor cat = null;
            if (block.name().contains("_block")) {
                Tensor s = encOut.get(--skip);
                cat = MagnitudePreserving.cat(h, s, (float) config.concatBalance(),
                        pool.take(n, h.dim(1), h.dim(2), h.dim(3) + s.dim(3)));
                h = cat;
            }
            decIn.add(cat);
            h = block.forward(h, emb, ctx);
            decOut.add(h);
        }
        Tensor out = outConv.forward(h, pool.take(n, h.dim(1), h.dim(2), config.imgChannels()));
        if (!ctx.training()) release(pool);
        return out;
    }

    /**
     * Given dF (consumed), accumulates every parameter's W_hat gradient (the caller then runs
     * {@link MPConv#finishBackward} on {@link #convs()}). The input's gradient is not computed.
     */
    void backward(Tensor dOut, StepContext ctx) {
        TensorPool pool = ctx.pool();
        boolean acc = ctx.accumulate();
        Tensor dEmb = pool.takeZeros(emb.shape());
        Tensor last = decOut.getLast();
        Tensor d = pool.take(last.shape());
        outConv.backward(last, dOut, acc, d, 0f);
        pool.give(dOut);
        List<Tensor> dSkips = new ArrayList<>();
        for (int j = decoder.size() - 1; j >= 0; j--) {
            Tensor dIn = decoder.get(j).backward(d, emb, dEmb, ctx);
            pool.give(decOut.get(j));
            Tensor cat = decIn.get(j);
            if (cat == null) {
                d = dIn;
                continue;
            }
            long cx = cat.dim(3) - encOut.get(dSkips.size()).dim(3);
            d = pool.take(cat.dim(0), cat.dim(1), cat.dim(2), cx);
            Tensor dSkip = pool.take(encOut.get(dSkips.size()).shape());
            MagnitudePreserving.catBackward(dIn, (float) config.concatBalance(), d, dSkip);
            pool.give(dIn);
            pool.give(cat);
            dSkips.add(dSkip); // skips are consumed last-first, so dSkips.get(k) belongs to encOut.get(k)
        }
        for (int k = encoder.size() - 1; k >= 0; k--) {
            Block.add(ctx, dSkips.get(k), d);
            pool.give(dSkips.get(k));
            Block block = encoder.get(k);
            if (block == null) {
                inConv.backward(xIn, d, acc, null, 0f);
                pool.give(d);
            } else {
                Tensor dIn = block.backward(d, emb, dEmb, ctx);
                d = dIn;
            }
            pool.give(encOut.get(k));
        }
        MagnitudePreserving.siluBackward(embPre, dEmb, dEmb);
        if (embLabel != null) {
            Tensor dLabel = pool.take(dEmb.shape());
            MagnitudePreserving.sumBackward(dEmb, (float) config.labelBalance(), dEmb, dLabel);
            embLabel.backward(labels, dLabel, acc, null, 0f);
            pool.give(dLabel);
        }
        embNoise.backward(fourier, dEmb, acc, null, 0f);
        pool.give(dEmb);
        pool.give(fourier);
        pool.give(embPre);
        pool.give(emb);
        fourier = embPre = emb = xIn = labels = null;
        encOut.clear();
        decIn.clear();
        decOut.clear();
    }

    private void release(TensorPool pool) {
        for (Tensor t : encOut) pool.give(t);
        for (Tensor t : decIn) pool.give(t);
        for (Tensor t : decOut) pool.give(t);
        pool.give(fourier);
        pool.give(embPre);
        pool.give(emb);
        fourier = embPre = emb = xIn = labels = null;
        encOut.clear();
        decIn.clear();
        decOut.clear();
    }
}
