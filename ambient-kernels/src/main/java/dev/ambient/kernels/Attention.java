package dev.ambient.kernels;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * EDM2's multi-head cosine attention (the q, k and v rows of every head are expected to be
 * pixel-normalised already, as EDM2's blocks do before calling it), for each sample and head:
 * <pre>
 *   S   = q k^T / sqrt(headDim)          (length x length)
 *   out = softmax(S) v                    (softmax along each row: over the keys)
 *   lse = log(sum over keys of exp(S))    (one value per query, kept for the backward pass)
 * </pre>
 * computed flash-style in tiles of keys with an online softmax (no length x length buffer).
 *
 * <p>Shapes accepted, with C = heads * 3 * headDim channels per token:
 * <ul>
 *   <li>tokens: {@code qkv [N, L, C]}, {@code out [N, L, heads * headDim]};</li>
 *   <li>NHWC images: {@code qkv [N, H, W, C]}, {@code out [N, H, W, heads * headDim]}, whose
 *       L = H * W pixels are the tokens (row-major);</li>
 * </ul>
 * and in both cases {@code lse [N, heads, L]}. The channels of a token are laid out head by
 * head, and within a head q, then k, then v, headDim each: channel
 * {@code (h * 3 + part) * headDim + i}. Out holds head h's result at channels
 * {@code h * headDim + i}.
 */
public final class Attention {

    private static final String FORWARD = "ambient_attention_forward";
    private static final String BACKWARD = "ambient_attention_backward";

    private Attention() {}

    /** The sizes a call works on, derived from qkv and heads. */
    private record Dims(long n, long length, long heads, long headDim, long[] outShape, long[] lseShape) {}

    private static Dims dims(String f, Tensor qkv, int heads) {
        if (heads <= 0) throw new IllegalArgumentException(f + ": heads = " + heads + " must be positive");
        long[] s = qkv.shape();
        if (s.length != 3 && s.length != 4) {
            throw new IllegalArgumentException(f + ": qkv " + Arrays.toString(s)
                    + " must be [N, L, C] (tokens) or [N, H, W, C] (NHWC image) with C = heads * 3 * headDim");
        }
        long channels = s[s.length - 1];
        if (channels <= 0 || channels % (3L * heads) != 0) {
            throw new IllegalArgumentException(f + ": qkv " + Arrays.toString(s) + " has " + channels
                    + " channels, which is not a positive multiple of heads * 3 = " + 3L * heads
                    + " (each head needs q, k and v of headDim channels)");
        }
        long headDim = channels / (3L * heads);
        long length = s.length == 3 ? s[1] : Math.multiplyExact(s[1], s[2]);
        long[] outShape = s.clone();
        outShape[s.length - 1] = heads * headDim;
        return new Dims(s[0], length, heads, headDim, outShape, new long[] {s[0], heads, length});
    }

    private static void expectShape(String f, String name, Tensor t, long[] want, String meaning) {
        if (!Arrays.equals(t.shape(), want)) {
            throw new IllegalArgumentException(f + ": " + name + " " + Arrays.toString(t.shape()) + " must be "
                    + Arrays.toString(want) + " (" + meaning + ")");
        }
    }

    /**
     * {@code out = softmax(q k^T / sqrt(headDim)) v} per sample and head, and when {@code lse} is
     * not null, each query's log-sum-exp of the scaled logits (what {@link #backward} needs).
     * Modifies and returns out (and lse); out and lse must not overlap qkv or each other.
     *
     * @param qkv   {@code [N, L, heads * 3 * headDim]} or {@code [N, H, W, heads * 3 * headDim]}
     * @param heads number of heads; the channels must divide into heads * 3 equal parts
     * @param out   qkv's shape with {@code heads * headDim} channels
     * @param lse   {@code [N, heads, L]} (L = H * W for images), or null (inference)
     */
    public static Tensor forward(Tensor qkv, int heads, Tensor out, Tensor lse) {
        String f = FORWARD;
        Device device = lse == null ? Checks.sameDevice(f, "qkv", qkv, "out", out)
                : Checks.sameDevice(f, "qkv", qkv, "out", out, "lse", lse);
        Dims d = dims(f, qkv, heads);
        expectShape(f, "out", out, d.outShape(), "qkv's shape with heads * headDim channels");
        Checks.distinct(f, "out", out, "qkv", qkv);
        if (lse != null) {
            expectShape(f, "lse", lse, d.lseShape(), "N, heads, L");
            Checks.distinct(f, "lse", lse, "qkv", qkv);
            Checks.distinct(f, "lse", lse, "out", out);
        }
        device.activate();
        device.backend().check(device.backend().api.ambient_attention_forward(d.n(), d.length(), d.heads(),
                d.headDim(), qkv.segment(), out.segment(), lse == null ? MemorySegment.NULL
                        : lse.segment()), f, Checks.shapes("qkv", qkv, "out", out, "lse", lse).and("heads", heads));
        return out;
    }

    /** The forward pass into a new out tensor, without lse (inference). */
    public static Tensor forward(Tensor qkv, int heads) {
        if (qkv == null) throw new IllegalArgumentException(FORWARD + ": qkv is null");
        Dims d = dims(FORWARD, qkv, heads);
        return intoNew(qkv.device(), d.outShape(), out -> forward(qkv, heads, out, null));
    }

    /**
     * Gradient with respect to qkv of a loss whose gradient with respect to out is dout, given
     * out and lse from {@link #forward(Tensor, int, Tensor, Tensor)} on the same qkv (flash
     * attention's backward: S and P are recomputed tile by tile):
     * <pre>
     *   P = exp(S - lse),  D = rowsum(dout * out),  dP = dout v^T,  dS = P (dP - D)
     *   dq = dS k / sqrt(headDim),  dk = dS^T q / sqrt(headDim),  dv = P^T dout
     * </pre>
     * Modifies and returns dqkv (qkv's shape, overwritten, same channel layout), which must not
     * overlap any input.
     */
    public static Tensor backward(Tensor qkv, Tensor out, Tensor lse, Tensor dout, int heads, Tensor dqkv) {
        String f = BACKWARD;
        Device device = Checks.sameDevice(f, "qkv", qkv, "out", out, "lse", lse, "dout", dout, "dqkv", dqkv);
        Dims d = dims(f, qkv, heads);
        expectShape(f, "out", out, d.outShape(), "qkv's shape with heads * headDim channels");
        expectShape(f, "dout", dout, d.outShape(), "out's shape");
        expectShape(f, "lse", lse, d.lseShape(), "N, heads, L");
        Checks.sameShape(f, "qkv", qkv, "dqkv", dqkv);
        Checks.distinct(f, "dqkv", dqkv, "qkv", qkv);
        Checks.distinct(f, "dqkv", dqkv, "out", out);
        Checks.distinct(f, "dqkv", dqkv, "lse", lse);
        Checks.distinct(f, "dqkv", dqkv, "dout", dout);
        device.activate();
        device.backend().check(device.backend().api.ambient_attention_backward(d.n(), d.length(), d.heads(),
                d.headDim(), qkv.segment(), out.segment(), lse.segment(), dout.segment(), dqkv.segment()), f,
                Checks.shapes("qkv", qkv, "out", out, "lse", lse, "dout", dout, "dqkv", dqkv).and("heads", heads));
        return dqkv;
    }

    /** The backward pass into a new dqkv tensor. */
    public static Tensor backward(Tensor qkv, Tensor out, Tensor lse, Tensor dout, int heads) {
        if (qkv == null) throw new IllegalArgumentException(BACKWARD + ": qkv is null");
        return intoNew(qkv.device(), qkv.shape(), dqkv -> backward(qkv, out, lse, dout, heads, dqkv));
    }

    /** Allocates an output, fills it, and frees it if filling fails. */
    private static Tensor intoNew(Device device, long[] shape, java.util.function.Consumer<Tensor> fill) {
        Tensor result = Tensor.allocate(device, shape);
        try {
            fill.accept(result);
            return result;
        } catch (RuntimeException e) {
            result.close();
            throw e;
        }
    }
}
