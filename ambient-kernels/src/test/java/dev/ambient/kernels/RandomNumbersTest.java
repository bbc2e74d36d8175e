package dev.ambient.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Philox 4x32-10 streams: against an independent Java Philox (uniforms bit for bit, normals
 * against Box-Muller in double), the Random123 known answers, determinism, independence of the
 * split, and the moments of 10^6 draws.
 */
class RandomNumbersTest {

    @Test
    void javaReferenceMatchesRandom123KnownAnswers() {
        assertArrayEquals(new int[] {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}, Philox.block(0, 0, 0, 0, 0, 0));
        assertArrayEquals(new int[] {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}, Philox.block(-1, -1, -1, -1, -1, -1));
        assertArrayEquals(new int[] {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
                Philox.block(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0));
    }

    /** {count, offset, seed, stream}. */
    static Stream<long[]> streams() {
        return Stream.of(new long[] {1, 0, 0, 0}, new long[] {3, 1, 7, 2}, new long[] {5, 2, -1, 9}, new long[] {1025, 3, 42, 1L << 40},
                new long[] {70001, 4097, 123456789, 5}, new long[] {64, Long.MAX_VALUE - 64, Long.MIN_VALUE, -7});
    }

    @ParameterizedTest
    @MethodSource("streams")
    void matchesTheJavaReference(long[] c) {
        Device d = Device.cpu();
        int n = (int) c[0];
        long offset = c[1], seed = c[2], stream = c[3];
        double[] wantU = new double[n], wantZ = new double[n];
        for (int e = 0; e < n; e++) {
            wantU[e] = Philox.uniform(seed, stream, offset + e);
            wantZ[e] = Philox.normal(seed, stream, offset + e);
        }
        try (Tensor u = TestSupport.poison(Tensor.allocate(d, n)); Tensor z = TestSupport.poison(Tensor.allocate(d, n))) {
            TestSupport.assertClose("uniform", wantU, RandomNumbers.uniform(u, seed, stream, offset).toArray(), 0, 0);
            // float log, cos and sin of float arguments against double: a few float ulps
            TestSupport.assertClose("normal", wantZ, RandomNumbers.normal(z, seed, stream, offset).toArray(), 5e-6, 5e-6);
        }
    }

    @Test
    void sameArgumentsSameNumbersAndAnySplit() {
        Device d = Device.cpu();
        int n = 100003;
        try (Tensor all = RandomNumbers.normal(d, 11, 3, 5, n); Tensor again = RandomNumbers.normal(d, 11, 3, 5, n);
                Tensor u = RandomNumbers.uniform(d, 11, 3, 5, n); Tensor other = RandomNumbers.normal(d, 11, 4, 5, n)) {
            float[] whole = all.toArray(), wholeU = u.toArray();
            assertArrayEquals(whole, again.toArray(), "same arguments");
            for (int k : new int[] {1, 2, 3, 5, 4097, n - 1}) {
                try (Tensor first = RandomNumbers.normal(d, 11, 3, 5, k); Tensor rest = RandomNumbers.normal(d, 11, 3, 5 + k, n - k);
                        Tensor firstU = RandomNumbers.uniform(d, 11, 3, 5, k);
                        Tensor restU = RandomNumbers.uniform(d, 11, 3, 5 + k, n - k)) {
                    float[] joined = new float[n], joinedU = new float[n];
                    System.arraycopy(first.toArray(), 0, joined, 0, k);
                    System.arraycopy(rest.toArray(), 0, joined, k, n - k);
                    System.arraycopy(firstU.toArray(), 0, joinedU, 0, k);
                    System.arraycopy(restU.toArray(), 0, joinedU, k, n - k);
                    assertArrayEquals(whole, joined, "normals split at " + k);
                    assertArrayEquals(wholeU, joinedU, "uniforms split at " + k);
                }
            }
            float[] o = other.toArray();
            int equal = 0;
            for (int i = 0; i < n; i++) if (o[i] == whole[i]) equal++;
            assertTrue(equal < 100, "streams 3 and 4 share " + equal + " numbers");
        }
    }

    @Test
    void momentsOfAMillionDraws() {
        Device d = Device.cpu();
        int n = 1_000_000;
        try (Tensor z = RandomNumbers.normal(d, 2026, 0, 0, n); Tensor u = RandomNumbers.uniform(d, 2026, 0, 0, n)) {
            float[] zs = z.toArray(), us = u.toArray();
            double mean = 0, var = 0;
            for (float v : zs) mean += v;
            mean /= n;
            for (float v : zs) var += (v - mean) * (v - mean);
            var /= n - 1;
            assertTrue(Math.abs(mean) < 5e-3, "normal mean " + mean);
            assertTrue(Math.abs(var - 1) < 1e-2, "normal variance " + var);
            double meanU = 0, varU = 0;
            for (float v : us) {
                assertTrue(v >= 0 && v < 1, "uniform " + v);
                meanU += v;
            }
            meanU /= n;
            for (float v : us) varU += (v - meanU) * (v - meanU);
            varU /= n - 1;
            assertEquals(0.5, meanU, 2e-3, "uniform mean");
            assertEquals(1.0 / 12, varU, 1e-3, "uniform variance");
        }
    }

    @Test
    void badArgumentsAreRefused() {
        Device d = Device.cpu();
        try (Tensor y = Tensor.zeros(d, 4)) {
            var negative = assertThrows(IllegalArgumentException.class, () -> RandomNumbers.normal(y, 1, 2, -1));
            assertTrue(negative.getMessage().contains("offset = -1 is negative"), negative.getMessage());
            var overflow = assertThrows(IllegalArgumentException.class, () -> RandomNumbers.uniform(y, 1, 2, Long.MAX_VALUE - 2));
            assertTrue(overflow.getMessage().contains("overflows"), overflow.getMessage());
            var nulls = assertThrows(IllegalArgumentException.class, () -> RandomNumbers.uniform(null, 1, 2, 0));
            assertTrue(nulls.getMessage().contains("y is null"), nulls.getMessage());
        }
    }
}
