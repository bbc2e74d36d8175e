package dev.ambient.examples;

import dev.ambient.kernels.Device;
import dev.ambient.kernels.Gemm;
import dev.ambient.kernels.MagnitudePreserving;
import dev.ambient.kernels.PixelNorm;
import dev.ambient.kernels.Tensor;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code ./ambient selfcheck}: a kernel self-check: which device was
 * chosen and why, a few kernels on random data checked against float64 references, and their
 * speed next to the machine's measured peak. Exits non-zero when a check fails.
 */
@Command(name = "selfcheck", mixinStandardHelpOptions = true,
        description = "Kernel self-check: device choice, correctness against float64 references, speed.")
final class SelfCheck implements Callable<Integer> {

    @Option(names = "--device", defaultValue = "auto", description = "auto, cpu, cuda or cuda:N (default ${DEFAULT-VALUE}).")
    String device;

    @Option(names = "--seed", defaultValue = "1", description = "Seed of the random inputs.")
    long seed;

    private int failures;

    @Override
    public Integer call() {
        Device d = device.equals("auto") ? Device.auto() : Device.parse(device);
        String cuda = Device.cudaProblem();
        System.out.println("Ambient kernel self-check");
        System.out.println("  device:  " + d);
        System.out.println("  library: " + d.libraryPath());
        System.out.println("  CUDA:    " + (cuda == null ? "available" : "not used (" + cuda + ")"));
        Device.MatmulPrecision precision = d.matmulPrecision();
        System.out.println("  matrix products: " + precision.name().toLowerCase(java.util.Locale.ROOT)
                + (d.kind() == Device.Kind.CUDA ? " (AMBIENT_CUDA_MATMUL)" : ""));
        System.out.println();
        System.out.println("Correctness on random inputs against float64 references:");
        SplittableRandom random = new SplittableRandom(seed);
        checkGemm(d, random, 257, 129, 65);
        checkGemm(d, random, 1, 300, 17);
        checkElementwise(d, random, 3 * 17 * 19 * 35);
        checkPixelNorm(d, random, 2 * 9 * 11, 67);
        System.out.println();
        System.out.println("Speed:");
        double peak = d.measureFmaPeak(1.0);
        double bandwidth = d.measureMemoryBandwidth(1L << 28, 1.0);
        System.out.printf("  machine FMA peak %.1f GFLOP/s, copy bandwidth %.1f GB/s%n", peak, bandwidth);
        timeGemm(d, random, 1024, peak);
        timeSilu(d, random, 64L * 32 * 32 * 64, bandwidth);
        System.out.println();
        System.out.println(failures == 0 ? "All checks passed." : failures + " check(s) FAILED.");
        return failures == 0 ? 0 : 1;
    }

    private static float[] uniform(SplittableRandom random, int n, double scale) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) ((random.nextDouble() * 2 - 1) * scale);
        return v;
    }

    /** Error measure of the elementwise checks: |got - want| / (1 + |want|). */
    private static double error(double got, double want) {
        return Math.abs(got - want) / (1 + Math.abs(want));
    }

    private void report(String what, double worst, double tolerance) {
        boolean ok = worst <= tolerance;
        if (!ok) failures++;
        System.out.printf("  %-34s worst error %.2e (tolerance %.0e)  %s%n", what, worst, tolerance, ok ? "ok" : "FAILED");
    }

    private void checkGemm(Device d, SplittableRandom random, int m, int n, int k) {
        float[] a = uniform(random, m * k, 1), b = uniform(random, k * n, 1);
        float[] c;
        try (Tensor ta = Tensor.of(d, a, m, k); Tensor tb = Tensor.of(d, b, k, n); Tensor tc = Gemm.matmul(ta, tb)) {
            c = tc.toArray();
        }
        double worst = 0;
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double want = 0, scale = 0;
                for (int p = 0; p < k; p++) {
                    want += (double) a[i * k + p] * b[p * n + j];
                    scale += Math.abs((double) a[i * k + p] * b[p * n + j]);
                }
                worst = Math.max(worst, Math.abs(c[i * n + j] - want) / Math.max(scale, 1e-30));
            }
        }
        // Each product of operands rounded once to the device's precision is off by at most
        // 2u + u^2 of itself, so the sum by at most that of the sum of |terms|; float32 sums add
        // far less than 1e-5 at these lengths.
        double u = d.matmulPrecision().unitRoundoff();
        report("gemm " + m + "x" + n + "x" + k, worst, 2 * u + u * u + 1e-5);
    }

    private void checkElementwise(Device d, SplittableRandom random, int n) {
        float[] x = uniform(random, n, 4), g = uniform(random, n, 1);
        float[] y, dx, s;
        try (Tensor tx = Tensor.of(d, x, n); Tensor tg = Tensor.of(d, g, n);
                Tensor ty = MagnitudePreserving.silu(tx); Tensor tdx = Tensor.allocate(d, n);
                Tensor ts = MagnitudePreserving.sum(tx, tg, 0.3f)) {
            y = ty.toArray();
            dx = MagnitudePreserving.siluBackward(tx, tg, tdx).toArray();
            s = ts.toArray();
        }
        double worstY = 0, worstDx = 0, worstS = 0, norm = Math.sqrt(0.49 + 0.09);
        for (int i = 0; i < n; i++) {
            double sig = 1 / (1 + Math.exp(-x[i]));
            worstY = Math.max(worstY, error(y[i], x[i] * sig / 0.596));
            double wantDx = g[i] * sig * (1 + x[i] * (1 - sig)) / 0.596;
            worstDx = Math.max(worstDx, error(dx[i], wantDx));
            double wantS = (0.7 * x[i] + 0.3 * g[i]) / norm;
            worstS = Math.max(worstS, error(s[i], wantS));
        }
        report("mp_silu forward (" + n + ")", worstY, 1e-5);
        report("mp_silu backward (" + n + ")", worstDx, 1e-5);
        report("mp_sum forward (" + n + ")", worstS, 1e-5);
    }

    private void checkPixelNorm(Device d, SplittableRandom random, int rows, int c) {
        float[] x = uniform(random, rows * c, 3);
        float[] y;
        try (Tensor tx = Tensor.of(d, x, rows, c); Tensor ty = PixelNorm.forward(tx)) {
            y = ty.toArray();
        }
        double worst = 0;
        for (int r = 0; r < rows; r++) {
            double sum = 0;
            for (int j = 0; j < c; j++) sum += (double) x[r * c + j] * x[r * c + j];
            double denominator = PixelNorm.DEFAULT_EPS + Math.sqrt(sum / c);
            for (int j = 0; j < c; j++) {
                double want = x[r * c + j] / denominator;
                worst = Math.max(worst, error(y[r * c + j], want));
            }
        }
        report("pixel_norm " + rows + "x" + c, worst, 1e-5);
    }

    private static double medianMillis(Runnable op, int runs) {
        for (int i = 0; i < 2; i++) op.run(); // warm-up
        double[] times = new double[runs];
        for (int i = 0; i < runs; i++) {
            long t0 = System.nanoTime();
            op.run();
            times[i] = (System.nanoTime() - t0) / 1e6;
        }
        java.util.Arrays.sort(times);
        return times[runs / 2];
    }

    private static void timeGemm(Device d, SplittableRandom random, int n, double peak) {
        try (Tensor a = Tensor.of(d, uniform(random, n * n, 1), n, n); Tensor b = Tensor.of(d, uniform(random, n * n, 1), n, n);
                Tensor c = Tensor.allocate(d, n, n)) {
            double ms = medianMillis(() -> {
                Gemm.matmul(a, false, b, false, 1f, 0f, c);
                d.synchronize();
            }, 7);
            double gflops = 2.0 * n * n * n / (ms * 1e6);
            // Tensor cores (tf32, bf16) are not bound by the float32 FMA peak.
            String precision = d.matmulPrecision().name().toLowerCase(java.util.Locale.ROOT);
            System.out.printf("  gemm %dx%dx%d %-6s    %8.2f ms  %7.1f GFLOP/s  (%.0f%% of the float32 FMA peak)%n", n, n, n,
                    precision, ms, gflops, 100 * gflops / peak);
        }
    }

    private static void timeSilu(Device d, SplittableRandom random, long n, double bandwidth) {
        try (Tensor x = Tensor.of(d, uniform(random, (int) n, 3), n); Tensor y = Tensor.allocate(d, n)) {
            double ms = medianMillis(() -> {
                MagnitudePreserving.silu(x, y);
                d.synchronize();
            }, 15);
            double gbs = 2.0 * n * Float.BYTES / (ms * 1e6);
            System.out.printf("  mp_silu %d elements   %8.2f ms  %7.1f GB/s     (%.0f%% of copy bandwidth)%n", n, ms, gbs,
                    100 * gbs / bandwidth);
        }
    }
}
