package dev.ambient.benchmarks;

import java.util.SplittableRandom;

/** Random test data for benchmarks: uniform in [-scale, scale), never all zeros. */
final class Random {

    private Random() {}

    static float[] uniform(long seed, int n, float scale) {
        SplittableRandom random = new SplittableRandom(seed);
        float[] values = new float[n];
        for (int i = 0; i < n; i++) values[i] = (float) ((random.nextDouble() * 2 - 1) * scale);
        return values;
    }
}
