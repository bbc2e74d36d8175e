package dev.ambient.model.nn;

import dev.ambient.kernels.Tensor;

/**
 * What the layers of one forward/backward pass share: the buffer pool, whether this is training
 * (forced weight normalisation, dropout, activations kept for the backward pass), the seed of
 * this pass's dropout masks, whether parameter gradients add to those of earlier micro-batches
 * of the same step, and a tensor of N ones (for per-sample scaling kernels).
 */
public final class StepContext {

    private final TensorPool pool;
    private final boolean training;
    private final long dropoutSeed;
    private final boolean accumulate;
    private final Tensor ones;

    public StepContext(TensorPool pool, boolean training, long dropoutSeed, boolean accumulate, Tensor ones) {
        this.pool = pool;
        this.training = training;
        this.dropoutSeed = dropoutSeed;
        this.accumulate = accumulate;
        this.ones = ones;
    }

    public TensorPool pool() {
        return pool;
    }

    public boolean training() {
        return training;
    }

    public long dropoutSeed() {
        return dropoutSeed;
    }

    /** True from the second micro-batch of a step on: weight gradients add instead of overwrite. */
    public boolean accumulate() {
        return accumulate;
    }

    /** N ones, N the batch size. */
    public Tensor ones() {
        return ones;
    }
}
