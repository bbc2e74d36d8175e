package dev.ambient.kernels;

/**
 * The native random-number generator on the host, in double precision: Philox 4x32-10 with
 * counter (group, stream) and key seed, and the transforms that native/cpu/philox.h defines,
 * so that Java code can reproduce (to float rounding) the numbers the kernels draw: the noise
 * of {@link RandomNumbers}, dropout masks, and the fixed per-sample noise of the Ambient loss.
 * Element e of a stream is lane e % 4 of group e / 4.
 */
public final class Philox {

    private Philox() {}

    /** The 4 words of Philox 4x32-10 for counter (c0, c1, c2, c3) and key (k0, k1). */
    public static int[] block(int c0, int c1, int c2, int c3, int k0, int k1) {
        for (int round = 0; round < 10; round++) {
            long p0 = 0xD2511F53L * Integer.toUnsignedLong(c0), p1 = 0xCD9E8D57L * Integer.toUnsignedLong(c2);
            int n0 = (int) (p1 >>> 32) ^ c1 ^ k0, n2 = (int) (p0 >>> 32) ^ c3 ^ k1;
            c1 = (int) p1;
            c3 = (int) p0;
            c0 = n0;
            c2 = n2;
            k0 += 0x9E3779B9;
            k1 += 0xBB67AE85;
        }
        return new int[] {c0, c1, c2, c3};
    }

    /** The 4 words of group g of stream {@code stream} under {@code seed}. */
    public static int[] group(long seed, long stream, long g) {
        return block((int) g, (int) (g >>> 32), (int) stream, (int) (stream >>> 32), (int) seed, (int) (seed >>> 32));
    }

    /** Element {@code index} of the uniform [0, 1) stream: the top 24 bits of its word. */
    public static double uniform(long seed, long stream, long index) {
        return (group(seed, stream, index / 4)[(int) (index % 4)] >>> 8) * 0x1p-24;
    }

    /**
     * Element {@code index} of the standard normal stream: Box-Muller on lanes (0, 1) and (2, 3),
     * with the angle rounded to float as the native code computes it.
     */
    public static double normal(long seed, long stream, long index) {
        int[] w = group(seed, stream, index / 4);
        int lane = (int) (index % 4), pair = lane / 2;
        double u0 = ((w[2 * pair] >>> 8) + 1) * 0x1p-24, u1 = (w[2 * pair + 1] >>> 8) * 0x1p-24;
        double r = Math.sqrt(-2 * Math.log(u0));
        float angle = 6.283185307179586f * (float) u1;
        return lane % 2 == 0 ? r * Math.cos(angle) : r * Math.sin(angle);
    }
}
