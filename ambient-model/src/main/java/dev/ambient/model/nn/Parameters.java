package dev.ambient.model.nn;

import dev.ambient.kernels.Device;
import dev.ambient.kernels.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A model's parameters and buffers, each a named view into one flat tensor, so that the
 * optimizer, the gradient norm, the NaN guard and the EMA each run as one kernel call over the
 * whole model. Trained parameters share one buffer ({@link #values()}, with {@link #grads()} at
 * the same offsets); fixed buffers (EDM2's Fourier frequencies and phases) another.
 *
 * <p>Each entry knows how its kernel layout relates to PyTorch's, so checkpoints carry EDM2's
 * names and shapes: convolution weights are OHWI here and OIHW in PyTorch; the attention's qkv
 * weight orders its output rows {@code (head, part, channel)} here (what the attention kernel
 * reads) and {@code (head, channel, part)} in EDM2; scalars are {@code [1]} here and {@code []}
 * there.
 */
public final class Parameters implements AutoCloseable {

    /** How an entry's kernel layout maps to PyTorch's. */
    public enum Layout {
        /** a scalar: [1] here, [] in PyTorch */
        SCALAR,
        /** a vector or matrix, the same on both sides */
        PLAIN,
        /** a convolution weight: OHWI [out, k, k, in] here, OIHW [out, in, k, k] in PyTorch */
        CONV,
        /** a 1x1 qkv weight: rows (head, part, channel) here, (head, channel, part) in EDM2 */
        CONV_QKV
    }

    /** One parameter or buffer: its name, place and shapes. */
    public static final class Entry {
        private final String name;
        private final long[] torchShape;
        private final Layout layout;
        private final boolean trained;
        private final int headDim;
        private long offset;
        private Tensor value;
        private Tensor grad;

        private Entry(String name, long[] torchShape, Layout layout, boolean trained, int headDim) {
            this.name = name;
            this.torchShape = torchShape.clone();
            this.layout = layout;
            this.trained = trained;
            this.headDim = headDim;
        }

        public String name() {
            return name;
        }

        public boolean trained() {
            return trained;
        }

        public Layout layout() {
            return layout;
        }

        /** The shape in PyTorch (EDM2's state_dict). */
        public long[] torchShape() {
            return torchShape.clone();
        }

        /** The shape the kernels use. */
        public long[] shape() {
            return switch (layout) {
                case SCALAR -> new long[] {1};
                case PLAIN -> torchShape.clone();
                case CONV, CONV_QKV -> new long[] {torchShape[0], torchShape[2], torchShape[3], torchShape[1]};
            };
        }

        public long size() {
            long n = 1;
            for (long d : torchShape) n *= d;
            return n;
        }

        /** The values (a view into the model's flat buffer). */
        public Tensor value() {
            if (value == null) throw new IllegalStateException(name + ": parameters are not allocated yet");
            return value;
        }

        /** The gradient (trained entries only). */
        public Tensor grad() {
            if (grad == null) throw new IllegalStateException(name + " has no gradient (a fixed buffer, or not allocated yet)");
            return grad;
        }

        /** The first element, read to the host (a gain). */
        public float scalar() {
            float[] one = new float[1];
            value().slice(0, 1).copyTo(one);
            return one[0];
        }

        /** This entry's values in PyTorch's layout and order. */
        public float[] toTorch(float[] ours) {
            check(ours);
            return switch (layout) {
                case SCALAR, PLAIN -> ours.clone();
                case CONV -> ohwiToOihw(ours);
                case CONV_QKV -> ohwiToOihw(qkvRows(ours, false));
            };
        }

        /** Values in PyTorch's layout converted to ours. */
        public float[] fromTorch(float[] torch) {
            check(torch);
            return switch (layout) {
                case SCALAR, PLAIN -> torch.clone();
                case CONV -> oihwToOhwi(torch);
                case CONV_QKV -> qkvRows(oihwToOhwi(torch), true);
            };
        }

        private void check(float[] values) {
            if (values.length != size()) {
                throw new IllegalArgumentException(name + ": " + values.length + " values for shape " + Arrays.toString(torchShape));
            }
        }

        private float[] ohwiToOihw(float[] src) {
            int o = (int) torchShape[0], in = (int) torchShape[1], kh = (int) torchShape[2], kw = (int) torchShape[3];
            float[] dst = new float[src.length];
            for (int a = 0; a < o; a++)
                for (int c = 0; c < in; c++)
                    for (int y = 0; y < kh; y++)
                        for (int x = 0; x < kw; x++)
                            dst[((a * in + c) * kh + y) * kw + x] = src[((a * kh + y) * kw + x) * in + c];
            return dst;
        }

        private float[] oihwToOhwi(float[] src) {
            int o = (int) torchShape[0], in = (int) torchShape[1], kh = (int) torchShape[2], kw = (int) torchShape[3];
            float[] dst = new float[src.length];
            for (int a = 0; a < o; a++)
                for (int c = 0; c < in; c++)
                    for (int y = 0; y < kh; y++)
                        for (int x = 0; x < kw; x++)
                            dst[((a * kh + y) * kw + x) * in + c] = src[((a * in + c) * kh + y) * kw + x];
            return dst;
        }

        /**
         * Reorders the output rows of a qkv weight: EDM2's row {@code h*3d + c*3 + s} is our row
         * {@code (h*3 + s)*d + c}; {@code toOurs} says which way.
         */
        private float[] qkvRows(float[] src, boolean toOurs) {
            int rows = (int) torchShape[0], rowLength = src.length / rows, d = headDim, heads = rows / (3 * d);
            float[] dst = new float[src.length];
            for (int h = 0; h < heads; h++)
                for (int c = 0; c < d; c++)
                    for (int s = 0; s < 3; s++) {
                        int theirs = h * 3 * d + c * 3 + s, ours = (h * 3 + s) * d + c;
                        int from = toOurs ? theirs : ours, to = toOurs ? ours : theirs;
                        System.arraycopy(src, from * rowLength, dst, to * rowLength, rowLength);
                    }
            return dst;
        }
    }

    private final Map<String, Entry> entries = new LinkedHashMap<>();
    private Tensor values, grads, buffers;
    private long trainedSize, bufferSize;

    /** Declares a trained parameter; returns its entry (allocated by {@link #allocate}). */
    public Entry parameter(String name, Layout layout, long... torchShape) {
        return declare(new Entry(name, torchShape, layout, true, 0));
    }

    /** Declares a 1x1 attention qkv weight {@code [3C, C, 1, 1]} with heads of {@code headDim} channels. */
    public Entry qkvParameter(String name, int headDim, long... torchShape) {
        if (torchShape.length != 4 || torchShape[0] % (3L * headDim) != 0 || torchShape[2] != 1 || torchShape[3] != 1) {
            throw new IllegalArgumentException(name + ": " + Arrays.toString(torchShape) + " is not a 1x1 qkv weight of heads of " + headDim);
        }
        return declare(new Entry(name, torchShape, Layout.CONV_QKV, true, headDim));
    }

    /** Declares a fixed buffer (not trained, no gradient). */
    public Entry buffer(String name, long... torchShape) {
        return declare(new Entry(name, torchShape, Layout.PLAIN, false, 0));
    }

    private Entry declare(Entry e) {
        if (values != null) throw new IllegalStateException("parameters are allocated already; cannot add " + e.name);
        if (entries.putIfAbsent(e.name, e) != null) throw new IllegalArgumentException("duplicate parameter name " + e.name);
        if (e.trained) {
            e.offset = trainedSize;
            trainedSize += e.size();
        } else {
            e.offset = bufferSize;
            bufferSize += e.size();
        }
        return e;
    }

    /** Allocates the flat buffers on {@code device} (contents unspecified) and the entries' views. */
    public void allocate(Device device) {
        if (values != null) throw new IllegalStateException("parameters are allocated already");
        values = Tensor.allocate(device, trainedSize);
        grads = Tensor.zeros(device, trainedSize);
        buffers = Tensor.allocate(device, bufferSize);
        for (Entry e : entries.values()) {
            if (e.trained) {
                e.value = values.slice(e.offset, e.shape());
                e.grad = grads.slice(e.offset, e.shape());
            } else {
                e.value = buffers.slice(e.offset, e.shape());
            }
        }
    }

    /** Every trained parameter, flat, in declaration order. */
    public Tensor values() {
        return values;
    }

    /** The gradients, flat, at the offsets of {@link #values()}. */
    public Tensor grads() {
        return grads;
    }

    /** Number of trained values. */
    public long trainedSize() {
        return trainedSize;
    }

    public Entry get(String name) {
        Entry e = entries.get(name);
        if (e == null) throw new IllegalArgumentException("no parameter named " + name);
        return e;
    }

    /** All entries in declaration order. */
    public List<Entry> entries() {
        return Collections.unmodifiableList(new ArrayList<>(entries.values()));
    }

    /**
     * Copies another store's buffers and, as trained values, {@code flatValues} (a flat copy such
     * as an EMA, or {@code other.values()}): how an EMA becomes a network to sample from.
     */
    public void copyFrom(Parameters other, Tensor flatValues) {
        if (other.trainedSize != trainedSize || other.bufferSize != bufferSize || flatValues.size() != trainedSize) {
            throw new IllegalArgumentException("parameter stores differ: " + trainedSize + "/" + bufferSize + " values here, "
                    + other.trainedSize + "/" + other.bufferSize + " there, " + flatValues.size() + " given");
        }
        values.copyFrom(flatValues);
        if (bufferSize > 0) buffers.copyFrom(other.buffers);
    }

    @Override
    public void close() {
        if (values != null) values.close();
        if (grads != null) grads.close();
        if (buffers != null) buffers.close();
    }
}
