package dev.ambient.kernels;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.FloatBuffer;
import java.util.Arrays;

/**
 * A float32 tensor in a device's memory, row-major; four-dimensional image tensors are NHWC.
 *
 * <p>Memory is owned through an {@link Arena}: {@link #allocate(Device, long...)} gives the
 * tensor an arena of its own that {@link #close()} frees; {@link #allocate(Device, Arena,
 * long...)} ties it to the caller's arena (a step's scratch, say), freed when that closes. Any
 * use after the memory is freed fails in Java with an {@link IllegalStateException}.
 * Contents of CUDA tensors are reached only through the copy methods.
 */
public final class Tensor implements AutoCloseable {

    private static final long MAX_ELEMENTS = 1L << 58;

    private final Device device;
    private final long[] shape;
    private final long size;
    private final MemorySegment memory; // device memory: host memory on the CPU, GPU memory on CUDA
    private final Arena ownArena;       // null when the memory belongs to a caller's arena or a base tensor
    private volatile boolean closed;

    private Tensor(Device device, long[] shape, long size, MemorySegment memory, Arena ownArena) {
        this.device = device;
        this.shape = shape;
        this.size = size;
        this.memory = memory;
        this.ownArena = ownArena;
    }

    // ---- Creation -------------------------------------------------------------------------

    /** An uninitialised tensor with its own memory, freed by {@link #close()}. */
    public static Tensor allocate(Device device, long... shape) {
        Arena arena = Arena.ofShared();
        try {
            return allocate(device, arena, true, shape);
        } catch (RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    /** An uninitialised tensor whose memory is freed when {@code arena} closes. */
    public static Tensor allocate(Device device, Arena arena, long... shape) {
        if (arena == null) throw new IllegalArgumentException("arena is null");
        return allocate(device, arena, false, shape);
    }

    /** A tensor of zeros with its own memory. */
    public static Tensor zeros(Device device, long... shape) {
        Tensor t = allocate(device, shape);
        t.zero();
        return t;
    }

    /** A tensor with its own memory holding a copy of {@code values} (row-major). */
    public static Tensor of(Device device, float[] values, long... shape) {
        Tensor t = allocate(device, shape);
        try {
            t.copyFrom(values);
        } catch (RuntimeException e) {
            t.close();
            throw e;
        }
        return t;
    }

    private static Tensor allocate(Device device, Arena arena, boolean owned, long[] shape) {
        if (device == null) throw new IllegalArgumentException("device is null");
        long[] dims = checkShape(shape);
        long size = elementCount(dims);
        if (size == 0) return new Tensor(device, dims, 0, MemorySegment.NULL, owned ? arena : null);
        long bytes = size * Float.BYTES;
        Backend backend = device.backend();
        device.activate();
        MemorySegment pointer;
        try (Arena scratch = Arena.ofConfined()) {
            MemorySegment out = scratch.allocate(ValueLayout.ADDRESS);
            backend.check(backend.api.ambient_memory_alloc(bytes, out), "ambient_memory_alloc",
                    "tensor " + Arrays.toString(dims) + " (" + bytes + " bytes) on " + device);
            pointer = out.get(ValueLayout.ADDRESS, 0);
        }
        MemorySegment memory = pointer.reinterpret(bytes, arena, p -> backend.api.ambient_memory_free(p));
        return new Tensor(device, dims, size, memory, owned ? arena : null);
    }

    private static long[] checkShape(long[] shape) {
        if (shape == null || shape.length == 0) throw new IllegalArgumentException("a tensor needs at least one dimension");
        for (long d : shape) {
            if (d < 0) throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " has a negative dimension");
        }
        elementCount(shape);
        return shape.clone();
    }

    private static long elementCount(long[] shape) {
        long n = 1;
        for (long d : shape) {
            if (d != 0 && n > MAX_ELEMENTS / d) {
                throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " has more than 2^58 elements");
            }
            n *= d;
        }
        return n;
    }

    // ---- Shape ----------------------------------------------------------------------------

    public Device device() {
        return device;
    }

    /** A copy of the dimensions. */
    public long[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    /** Dimension {@code i}; negative {@code i} counts from the end. */
    public long dim(int i) {
        int j = i < 0 ? shape.length + i : i;
        if (j < 0 || j >= shape.length) {
            throw new IndexOutOfBoundsException("dimension " + i + " of a rank-" + shape.length + " tensor");
        }
        return shape[j];
    }

    /** Number of elements. */
    public long size() {
        return size;
    }

    public long byteSize() {
        return size * Float.BYTES;
    }

    /**
     * A tensor of another shape with the same elements, sharing this one's memory. Closing the
     * view frees nothing; closing this tensor invalidates the view.
     */
    public Tensor reshape(long... newShape) {
        long[] dims = checkShape(newShape);
        if (elementCount(dims) != size) {
            throw new IllegalArgumentException("cannot reshape " + describe() + " (" + size + " elements) to "
                    + Arrays.toString(dims));
        }
        return new Tensor(device, dims, size, segment(), null);
    }

    /**
     * A view of {@code shape}'s element count of this tensor's elements, starting at element
     * {@code offset} (row-major), sharing this one's memory: how a model keeps all its
     * parameters in one buffer and still hands each layer a tensor of its own shape. Closing the
     * view frees nothing; closing this tensor invalidates the view.
     */
    public Tensor slice(long offset, long... shape) {
        long[] dims = checkShape(shape);
        long count = elementCount(dims);
        if (offset < 0 || offset > size || count > size - offset) {
            throw new IllegalArgumentException("cannot take " + count + " elements " + Arrays.toString(dims) + " at offset "
                    + offset + " of " + describe() + " (" + size + " elements)");
        }
        MemorySegment whole = segment();
        MemorySegment part = count == 0 ? MemorySegment.NULL : whole.asSlice(offset * Float.BYTES, count * Float.BYTES);
        return new Tensor(device, dims, count, part, null);
    }

    // ---- Contents -------------------------------------------------------------------------

    /** Copies {@code values} (row-major, exactly {@link #size()} of them) into the tensor. */
    public Tensor copyFrom(float[] values) {
        if (values == null) throw new IllegalArgumentException("values is null");
        requireLength(values.length);
        return copyFrom(MemorySegment.ofArray(values), ValueLayout.JAVA_FLOAT);
    }

    /** Copies the buffer's remaining {@link #size()} floats into the tensor; the position is not moved. */
    public Tensor copyFrom(FloatBuffer values) {
        if (values == null) throw new IllegalArgumentException("values is null");
        requireLength(values.remaining());
        return copyFrom(MemorySegment.ofBuffer(values), ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(values.order()));
    }

    /** Copies another tensor of the same number of elements on the same device. */
    public Tensor copyFrom(Tensor source) {
        if (source == null) throw new IllegalArgumentException("source is null");
        if (source.device != device) {
            throw new IllegalArgumentException("cannot copy " + source.describe() + " on " + source.device
                    + " into " + describe() + " on " + device + ": devices differ");
        }
        requireLength(source.size);
        if (size == 0) return this;
        device.activate();
        Backend b = device.backend();
        b.check(b.api.ambient_memory_copy_on_device(segment(), source.segment(), byteSize()),
                "ambient_memory_copy_on_device", source.describe() + " -> " + describe());
        return this;
    }

    /** The contents as a new array. */
    public float[] toArray() {
        if (size > Integer.MAX_VALUE - 8) throw new IllegalStateException(describe() + " is too large for a Java array");
        float[] out = new float[(int) size];
        copyTo(out);
        return out;
    }

    /** Copies the contents into {@code out}, which must have exactly {@link #size()} elements. */
    public void copyTo(float[] out) {
        if (out == null) throw new IllegalArgumentException("out is null");
        requireLength(out.length);
        copyTo(MemorySegment.ofArray(out), ValueLayout.JAVA_FLOAT);
    }

    /** Copies the contents into the buffer's remaining space (at least {@link #size()} floats). */
    public void copyTo(FloatBuffer out) {
        if (out == null) throw new IllegalArgumentException("out is null");
        if (out.isReadOnly()) throw new IllegalArgumentException("out is read-only");
        if (out.remaining() < size) {
            throw new IllegalArgumentException("buffer has " + out.remaining() + " floats left, " + describe() + " needs " + size);
        }
        copyTo(MemorySegment.ofBuffer(out).asSlice(0, byteSize()), ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(out.order()));
    }

    /** Sets every element to zero. */
    public Tensor zero() {
        if (size == 0) return this;
        device.activate();
        Backend b = device.backend();
        b.check(b.api.ambient_memory_set(segment(), 0, byteSize()), "ambient_memory_set", describe());
        return this;
    }

    private Tensor copyFrom(MemorySegment host, ValueLayout.OfFloat layout) {
        if (size == 0) return this;
        MemorySegment target = segment();
        if (device.kind() == Device.Kind.CPU) {
            MemorySegment.copy(host, layout, 0, target, ValueLayout.JAVA_FLOAT, 0, size);
            return this;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment staging = arena.allocate(ValueLayout.JAVA_FLOAT, size);
            MemorySegment.copy(host, layout, 0, staging, ValueLayout.JAVA_FLOAT, 0, size);
            device.activate();
            Backend b = device.backend();
            b.check(b.api.ambient_memory_copy_to_device(target, staging, byteSize()), "ambient_memory_copy_to_device", describe());
        }
        return this;
    }

    private void copyTo(MemorySegment host, ValueLayout.OfFloat layout) {
        if (size == 0) return;
        MemorySegment source = segment();
        if (device.kind() == Device.Kind.CPU) {
            MemorySegment.copy(source, ValueLayout.JAVA_FLOAT, 0, host, layout, 0, size);
            return;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment staging = arena.allocate(ValueLayout.JAVA_FLOAT, size);
            device.activate();
            Backend b = device.backend();
            b.check(b.api.ambient_memory_copy_to_host(staging, source, byteSize()), "ambient_memory_copy_to_host", describe());
            MemorySegment.copy(staging, ValueLayout.JAVA_FLOAT, 0, host, layout, 0, size);
        }
    }

    private void requireLength(long length) {
        if (length != size) {
            throw new IllegalArgumentException(describe() + " holds " + size + " elements, got " + length);
        }
    }

    // ---- Lifetime -------------------------------------------------------------------------

    /** Frees the memory if this tensor owns it; afterwards every use fails. Idempotent. */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        if (ownArena != null) ownArena.close();
    }

    public boolean isClosed() {
        return closed || (size > 0 && !memory.scope().isAlive());
    }

    /** The device memory, for kernel calls; fails when the tensor or its memory is gone. */
    MemorySegment segment() {
        if (isClosed()) throw new IllegalStateException(describe() + " on " + device + " is closed");
        return memory;
    }

    /** Address range overlap, for the aliasing rules of kernels. */
    boolean overlaps(Tensor other) {
        if (size == 0 || other.size == 0) return false;
        long a = segment().address(), b = other.segment().address();
        return a < b + other.byteSize() && b < a + byteSize();
    }

    /** "tensor [2, 3]" for messages. */
    String describe() {
        return "tensor " + Arrays.toString(shape);
    }

    @Override
    public String toString() {
        return describe() + " on " + device + (closed ? " (closed)" : "");
    }
}
