package dev.ambient.kernels;

/**
 * Counter-based random numbers (Philox 4x32-10, Salmon et al. 2011), identical on every backend.
 *
 * <p>A stream is named by {@code (seed, stream)}; its element {@code e} is a pure function of
 * {@code (seed, stream, e)}. A call fills a tensor with elements {@code offset ..
 * offset + size - 1} of the stream, in row-major order, so any split of the work (two calls
 * with offsets, another thread count, the CPU or the GPU) gives the same numbers: uniforms bit
 * for bit, normals to an ulp or two (they go through log, cos and sin). Seeds and streams may be
 * any long; offsets are non-negative.
 */
public final class RandomNumbers {

    private RandomNumbers() {}

    /** Standard normals (Box-Muller) of elements {@code offset ..} of the stream; modifies and returns y. */
    public static Tensor normal(Tensor y, long seed, long stream, long offset) {
        String f = "ambient_random_normal";
        Device device = Checks.sameDevice(f, "y", y);
        checkOffset(f, y, offset);
        device.activate();
        device.backend().check(device.backend().api.ambient_random_normal(y.size(), seed, stream, offset, y.segment()),
                f, Checks.shapes("y", y).and("seed", seed, "stream", stream, "offset", offset));
        return y;
    }

    /** Standard normals into a new tensor of {@code shape}. */
    public static Tensor normal(Device device, long seed, long stream, long offset, long... shape) {
        if (device == null) throw new IllegalArgumentException("ambient_random_normal: device is null");
        return MagnitudePreserving.intoNew(device, shape, y -> normal(y, seed, stream, offset));
    }

    /**
     * Uniforms in [0, 1) of elements {@code offset ..} of the stream, multiples of 2^-24;
     * modifies and returns y.
     */
    public static Tensor uniform(Tensor y, long seed, long stream, long offset) {
        String f = "ambient_random_uniform";
        Device device = Checks.sameDevice(f, "y", y);
        checkOffset(f, y, offset);
        device.activate();
        device.backend().check(device.backend().api.ambient_random_uniform(y.size(), seed, stream, offset, y.segment()),
                f, Checks.shapes("y", y).and("seed", seed, "stream", stream, "offset", offset));
        return y;
    }

    /** Uniforms in [0, 1) into a new tensor of {@code shape}. */
    public static Tensor uniform(Device device, long seed, long stream, long offset, long... shape) {
        if (device == null) throw new IllegalArgumentException("ambient_random_uniform: device is null");
        return MagnitudePreserving.intoNew(device, shape, y -> uniform(y, seed, stream, offset));
    }

    /** The offset is an element index: non-negative, and offset + size must fit in a long. */
    static void checkOffset(String f, Tensor t, long offset) {
        if (offset < 0) throw new IllegalArgumentException(f + ": offset = " + offset + " is negative");
        if (offset > Long.MAX_VALUE - t.size()) {
            throw new IllegalArgumentException(f + ": offset " + offset + " + " + t.size() + " elements overflows");
        }
    }
}
