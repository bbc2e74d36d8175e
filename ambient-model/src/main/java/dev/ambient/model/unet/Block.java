package dev.ambient.model.unet;

import dev.ambient.kernels.Activations;
import dev.ambient.kernels.Attention;
import dev.ambient.kernels.Embedding;
import dev.ambient.kernels.MagnitudePreserving;
import dev.ambient.kernels.PerSample;
import dev.ambient.kernels.PixelNorm;
import dev.ambient.kernels.Resample;
import dev.ambient.kernels.Tensor;
import dev.ambient.model.nn.MPConv;
import dev.ambient.model.nn.Parameters;
import dev.ambient.model.nn.StepContext;
import dev.ambient.model.nn.TensorPool;

import java.util.List;

/**
 * EDM2's residual block, 'enc' or 'dec' flavour, with its forward and backward passes:
 * <pre>
 *   x  = resample(x)                                    (2x2 average down, nearest up, or keep)
 *   enc: x = pixel_norm(conv_skip(x))                   (conv_skip only when the width changes)
 *   y  = conv_res0(mp_silu(x))
 *   y  = mp_silu(y * (1 + emb_linear(emb, gain = emb_gain)))
 *   y  = conv_res1(dropout(y))
 *   dec: x = conv_skip(x)                               (when the width changes)
 *   x  = mp_sum(x, y, res_balance)
 *   attention: qkv = pixel_norm per head and part of attn_qkv(x);
 *              x = mp_sum(x, attn_proj(softmax(q k^T / sqrt(d)) v), attn_balance)
 *   x  = clip(x, -clip_act, clip_act)
 * </pre>
 * The forward pass keeps, in pool buffers, what its backward pass needs; the backward pass
 * gives them back as it goes. The block's input and output belong to the caller (the UNet),
 * which must keep both alive until this block's backward pass has run.
 */
final class Block {

    private static final float PIXEL_NORM_EPS = PixelNorm.DEFAULT_EPS;

    private final UNetConfig.BlockSpec spec;
    private final UNetConfig config;
    private final int heads, headDim;
    private final long dropoutStream;
    private final MPConv convRes0, embLinear, convRes1, convSkip, attnQkv, attnProj;

    // kept from the forward pass for the backward pass; null when not alive
    private Tensor input, output;
    private Tensor x1;      // the resampled input (input itself when keep)
    private Tensor xs;      // enc: conv_skip's output before the pixel norm (x1 itself without conv_skip)
    private Tensor x3;      // enc: the pixel-normalised main path
    private Tensor a;       // mp_silu of the main path, conv_res0's input
    private Tensor y0, c, y3; // conv_res0's output, the embedding's scale, conv_res1's input
    private Tensor x4;      // the residual sum (attention blocks: attn_qkv's input)
    private Tensor qkvRaw, qkvN, att, lse;

    Block(Parameters params, UNetConfig config, UNetConfig.BlockSpec spec, int embChannels, long dropoutStream, List<MPConv> convs) {
        this.spec = spec;
        this.config = config;
        this.dropoutStream = dropoutStream;
        String p = "unet." + spec.name() + ".";
        Parameters.Entry embGain = params.parameter(p + "emb_gain", Parameters.Layout.SCALAR);
        convRes0 = new MPConv(params, p + "conv_res0.weight", spec.encoder() ? spec.out() : spec.in(), spec.out(), 3);
        embLinear = new MPConv(params, p + "emb_linear.weight", embChannels, spec.out(), 0).withGain(embGain);
        convRes1 = new MPConv(params, p + "conv_res1.weight", spec.out(), spec.out(), 3);
        convSkip = spec.in() != spec.out() ? new MPConv(params, p + "conv_skip.weight", spec.in(), spec.out(), 1) : null;
        if (spec.attention()) {
            headDim = config.channelsPerHead();
            if (spec.out() % headDim != 0) {
                throw new IllegalArgumentException(spec.name() + ": " + spec.out() + " channels do not split into heads of " + headDim);
            }
            heads = spec.out() / headDim;
            attnQkv = new MPConv(params, p + "attn_qkv.weight", spec.out(), 3 * spec.out(), 1, headDim);
            attnProj = new MPConv(params, p + "attn_proj.weight", spec.out(), spec.out(), 1);
        } else {
            heads = headDim = 0;
            attnQkv = attnProj = null;
        }
        for (MPConv conv : new MPConv[] {convRes0, embLinear, convRes1, convSkip, attnQkv, attnProj}) {
            if (conv != null) convs.add(conv);
        }
    }

    String name() {
        return spec.name();
    }

    /** Runs the block on {@code in [N, H, W, Cin]}; returns a pool tensor the caller gives back. */
    Tensor forward(Tensor in, Tensor emb, StepContext ctx) {
        TensorPool pool = ctx.pool();
        input = in;
        long n = in.dim(0), h = in.dim(1), w = in.dim(2);
        switch (spec.resample()) {
            case "down" -> {
                h /= 2;
                w /= 2;
                x1 = Resample.avgPool2x2(in, pool.take(n, h, w, spec.in()));
            }
            case "up" -> {
                h *= 2;
                w *= 2;
                x1 = Resample.upsample2x(in, pool.take(n, h, w, spec.in()));
            }
            default -> x1 = in;
        }
        int cout = spec.out();
        Tensor main;
        if (spec.encoder()) {
            xs = convSkip == null ? x1 : convSkip.forward(x1, pool.take(n, h, w, cout));
            x3 = PixelNorm.forward(xs, PIXEL_NORM_EPS, pool.take(n, h, w, cout));
            a = MagnitudePreserving.silu(x3, pool.take(n, h, w, cout));
            main = x3;
        } else {
            a = MagnitudePreserving.silu(x1, pool.take(n, h, w, spec.in()));
            main = x1;
        }
        y0 = convRes0.forward(a, pool.take(n, h, w, cout));
        c = embLinear.forward(emb, pool.take(n, cout));
        // mp_silu(y0 * c) in one pass; the backward pass recomputes the product from y0 and c
        y3 = Embedding.channelScaleSilu(y0, c, pool.take(n, h, w, cout));
        if (ctx.training() && config.dropout() > 0) {
            Activations.dropout(y3, (float) config.dropout(), ctx.dropoutSeed(), dropoutStream, 0, y3);
        }
        Tensor sum = convRes1.forward(y3, pool.take(n, h, w, cout));
        Tensor skipped = null;
        if (!spec.encoder() && convSkip != null) main = skipped = convSkip.forward(x1, pool.take(n, h, w, cout));
        MagnitudePreserving.sum(main, sum, (float) config.resBalance(), sum);
        pool.give(skipped); // mp_sum's backward needs neither input
        if (attnQkv != null) {
            x4 = sum;
            qkvRaw = attnQkv.forward(x4, pool.take(n, h, w, 3L * cout));
            qkvN = pool.take(n, h, w, 3L * cout);
            PixelNorm.forward(headRows(qkvRaw), PIXEL_NORM_EPS, headRows(qkvN));
            att = pool.take(n, h, w, cout);
            lse = ctx.training() ? pool.take(n, heads, h * w) : null;
            Attention.forward(qkvN, heads, att, lse);
            Tensor projected = attnProj.forward(att, pool.take(n, h, w, cout));
            output = MagnitudePreserving.sum(x4, projected, (float) config.attnBalance(), projected);
        } else {
            output = sum;
        }
        Tensor result = Activations.clip(output, (float) config.clipAct(), output);
        if (!ctx.training()) releaseSaved(pool);
        return result;
    }

    /**
     * Given the gradient of the output (consumed: given back to the pool), accumulates the
     * parameters' W_hat gradients and adds the embedding's gradient into dEmb; returns the
     * gradient of the input as a pool tensor the caller gives back.
     */
    Tensor backward(Tensor dOut, Tensor emb, Tensor dEmb, StepContext ctx) {
        TensorPool pool = ctx.pool();
        boolean acc = ctx.accumulate();
        float clip = (float) config.clipAct();
        // the clipped output is +-clip exactly where the input was clipped, so it serves as the mask
        Tensor d = Activations.clipBackward(output, dOut, clip, dOut);
        if (attnQkv != null) {
            Tensor dx4 = pool.take(x4.shape());
            MagnitudePreserving.sumBackward(d, (float) config.attnBalance(), dx4, d);
            Tensor dAtt = pool.take(att.shape());
            attnProj.backward(att, d, acc, dAtt, 0f);
            pool.give(d);
            Tensor dqkvN = pool.take(qkvN.shape());
            Attention.backward(qkvN, att, lse, dAtt, heads, dqkvN);
            pool.give(dAtt);
            att = give(pool, att);
            lse = give(pool, lse);
            Tensor dqkvRaw = pool.take(qkvRaw.shape());
            PixelNorm.backward(headRows(qkvRaw), headRows(dqkvN), PIXEL_NORM_EPS, headRows(dqkvRaw));
            pool.give(dqkvN);
            qkvN = give(pool, qkvN);
            attnQkv.backward(x4, dqkvRaw, acc, dx4, 1f);
            pool.give(dqkvRaw);
            qkvRaw = give(pool, qkvRaw);
            x4 = give(pool, x4);
            d = dx4;
        }
        Tensor dMain = pool.take(d.shape());
        MagnitudePreserving.sumBackward(d, (float) config.resBalance(), dMain, d);
        Tensor dy3 = pool.take(y3.shape());
        convRes1.backward(y3, d, acc, dy3, 0f);
        pool.give(d);
        y3 = give(pool, y3);
        if (ctx.training() && config.dropout() > 0) {
            Activations.dropoutBackward(dy3, (float) config.dropout(), ctx.dropoutSeed(), dropoutStream, 0, dy3);
        }
        Tensor dc = pool.take(c.shape());
        Embedding.channelScaleSiluBackward(y0, c, dy3, dy3, dc);
        y0 = give(pool, y0);
        c = give(pool, c);
        embLinear.backward(emb, dc, acc, dEmb, 1f);
        pool.give(dc);
        Tensor da = pool.take(a.shape());
        convRes0.backward(a, dy3, acc, da, 0f);
        pool.give(dy3);
        a = give(pool, a);
        Tensor dx1;
        if (spec.encoder()) {
            MagnitudePreserving.siluBackward(x3, da, da);
            add(ctx, dMain, da);
            pool.give(dMain);
            x3 = give(pool, x3);
            Tensor dxs = PixelNorm.backward(xs, da, PIXEL_NORM_EPS, pool.take(xs.shape()));
            pool.give(da);
            if (convSkip != null) {
                dx1 = pool.take(x1.shape());
                convSkip.backward(x1, dxs, acc, dx1, 0f);
                pool.give(dxs);
                xs = give(pool, xs);
            } else {
                dx1 = dxs;
                xs = null; // x1 itself
            }
        } else {
            MagnitudePreserving.siluBackward(x1, da, da);
            if (convSkip != null) convSkip.backward(x1, dMain, acc, da, 1f);
            else add(ctx, dMain, da);
            pool.give(dMain);
            dx1 = da;
        }
        Tensor dIn = switch (spec.resample()) {
            case "down" -> Resample.avgPool2x2Backward(dx1, pool.take(input.shape()));
            case "up" -> Resample.upsample2xBackward(dx1, pool.take(input.shape()));
            default -> dx1;
        };
        if (dIn != dx1) {
            pool.give(dx1);
            x1 = give(pool, x1);
        } else {
            x1 = null;
        }
        input = output = null;
        return dIn;
    }

    /** Frees what an inference pass kept (nothing is kept for a backward pass). */
    private void releaseSaved(TensorPool pool) {
        if (x1 != input) pool.give(x1);
        if (xs != x1) pool.give(xs);
        for (Tensor t : new Tensor[] {x3, a, y0, c, y3, x4, qkvRaw, qkvN, att, lse}) pool.give(t);
        x1 = xs = x3 = a = y0 = c = y3 = x4 = qkvRaw = qkvN = att = lse = null;
        input = output = null;
    }

    /** {@code y += x} through the per-sample kernel (N ones on both sides). */
    static void add(StepContext ctx, Tensor x, Tensor y) {
        PerSample.axpby(ctx.ones(), x, ctx.ones(), y, y);
    }

    /** qkv {@code [N, H, W, heads * 3 * d]} as rows of d: one row per pixel, head and part (q, k, v). */
    private Tensor headRows(Tensor qkv) {
        return qkv.reshape(qkv.size() / headDim, headDim);
    }

    private static Tensor give(TensorPool pool, Tensor t) {
        pool.give(t);
        return null;
    }
}
