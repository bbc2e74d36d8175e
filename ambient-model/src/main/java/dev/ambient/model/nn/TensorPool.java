package dev.ambient.model.nn;

import dev.ambient.kernels.Device;
import dev.ambient.kernels.Tensor;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reusable activation and gradient buffers for training steps: {@link #take} hands out a tensor
 * of a shape, {@link #give} returns it, and a later take of the same element count reuses the
 * memory. After the first step a model's steps allocate nothing, and memory in use peaks at the
 * activations that are alive at once (those saved for the backward pass plus a few gradients),
 * not at the sum of every buffer a step touches.
 *
 * <p>Not thread-safe: one pool serves one model on one thread.
 */
public final class TensorPool implements AutoCloseable {

    private final Device device;
    private final Map<Long, ArrayDeque<Tensor>> free = new HashMap<>();
    private final Map<Tensor, Tensor> lent = new IdentityHashMap<>(); // view handed out -> its base
    private final List<Tensor> owned = new ArrayList<>();
    private long bytesOwned;
    private long bytesLent;
    private long peakBytesLent;

    public TensorPool(Device device) {
        this.device = device;
    }

    public Device device() {
        return device;
    }

    /** A tensor of {@code shape} with unspecified contents, until {@link #give} returns it. */
    public Tensor take(long... shape) {
        long size = 1;
        for (long d : shape) size = Math.multiplyExact(size, d);
        ArrayDeque<Tensor> bases = free.get(size);
        Tensor base = bases == null ? null : bases.poll();
        if (base == null) {
            base = Tensor.allocate(device, size);
            owned.add(base);
            bytesOwned += base.byteSize();
        }
        Tensor view = base.reshape(shape);
        lent.put(view, base);
        bytesLent += base.byteSize();
        peakBytesLent = Math.max(peakBytesLent, bytesLent);
        return view;
    }

    /** A tensor of zeros of {@code shape}. */
    public Tensor takeZeros(long... shape) {
        return take(shape).zero();
    }

    /** Returns a tensor from {@link #take}; giving anything else, or twice, is an error. Null is ignored. */
    public void give(Tensor t) {
        if (t == null) return;
        Tensor base = lent.remove(t);
        if (base == null) throw new IllegalStateException("TensorPool.give: " + t + " was not taken from this pool (or was given back already)");
        bytesLent -= base.byteSize();
        free.computeIfAbsent(base.size(), k -> new ArrayDeque<>()).push(base);
    }

    /** Tensors taken and not given back. */
    public int lentCount() {
        return lent.size();
    }

    /** Bytes of device memory the pool holds. */
    public long bytesOwned() {
        return bytesOwned;
    }

    /** The most bytes lent out at one time since creation. */
    public long peakBytesLent() {
        return peakBytesLent;
    }

    /** Frees the memory the pool holds but does not lend (a smaller batch no longer needs it). */
    public void trim() {
        for (ArrayDeque<Tensor> bases : free.values()) {
            for (Tensor t : bases) {
                owned.remove(t);
                bytesOwned -= t.byteSize();
                t.close();
            }
        }
        free.clear();
    }

    @Override
    public void close() {
        for (Tensor t : owned) t.close();
        owned.clear();
        free.clear();
        lent.clear();
        bytesOwned = 0;
        bytesLent = 0;
    }
}
