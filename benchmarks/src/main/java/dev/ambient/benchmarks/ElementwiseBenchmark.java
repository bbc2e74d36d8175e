package dev.ambient.benchmarks;

import dev.ambient.kernels.Device;
import dev.ambient.kernels.MagnitudePreserving;
import dev.ambient.kernels.PixelNorm;
import dev.ambient.kernels.Tensor;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * The memory-bound elementwise ops of EDM2's magnitude-preserving layers on an NHWC activation
 * of 64x32x32x64. Bandwidth counts the bytes each op must read and write once
 * ({@link #bytesMoved}). Outputs are checked against double references before and after timing.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
public class ElementwiseBenchmark {

    static final long[] SHAPE = {64, 32, 32, 64};

    @Param({"auto"})
    public String device;

    @Param({"mp_silu_forward", "mp_silu_backward", "mp_sum_forward", "mp_sum_backward",
            "pixel_norm_forward", "pixel_norm_backward"})
    public String op;

    private float[] x, g;
    private Tensor tx, tg, out1, out2;

    public static KernelCase kernelCase(java.util.Map<String, String> params) {
        String op = params.get("op");
        return KernelCase.memory(op, SHAPE[0] + "x" + SHAPE[1] + "x" + SHAPE[2] + "x" + SHAPE[3],
                bytesMoved(op, SHAPE[0] * SHAPE[1] * SHAPE[2] * SHAPE[3]));
    }

    /** Bytes an op reads plus writes, at the minimum (each tensor touched once). */
    static long bytesMoved(String op, long elements) {
        int tensors = switch (op) {
            case "mp_silu_forward", "pixel_norm_forward" -> 2;
            case "mp_silu_backward", "mp_sum_forward", "mp_sum_backward", "pixel_norm_backward" -> 3;
            default -> throw new IllegalArgumentException("unknown op " + op);
        };
        return tensors * elements * Float.BYTES;
    }

    @Setup(Level.Trial)
    public void setUp() {
        Device d = BenchDevices.resolve(device);
        int n = Math.toIntExact(SHAPE[0] * SHAPE[1] * SHAPE[2] * SHAPE[3]);
        x = Random.uniform(1, n, 3f);
        g = Random.uniform(2, n, 1f);
        tx = Tensor.of(d, x, SHAPE);
        tg = Tensor.of(d, g, SHAPE);
        out1 = Tensor.allocate(d, SHAPE);
        out2 = Tensor.allocate(d, SHAPE);
        run();
        verify();
    }

    @Benchmark
    public Tensor run() {
        switch (op) {
            case "mp_silu_forward" -> MagnitudePreserving.silu(tx, out1);
            case "mp_silu_backward" -> MagnitudePreserving.siluBackward(tx, tg, out1);
            case "mp_sum_forward" -> MagnitudePreserving.sum(tx, tg, 0.3f, out1);
            case "mp_sum_backward" -> MagnitudePreserving.sumBackward(tg, 0.3f, out1, out2);
            case "pixel_norm_forward" -> PixelNorm.forward(tx, PixelNorm.DEFAULT_EPS, out1);
            case "pixel_norm_backward" -> PixelNorm.backward(tx, tg, PixelNorm.DEFAULT_EPS, out1);
            default -> throw new IllegalArgumentException("unknown op " + op);
        }
        return out1;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        out1.device().synchronize();
        verify();
        for (Tensor t : new Tensor[] {tx, tg, out1, out2}) t.close();
    }

    /** Checks every 97th element (and whole rows for pixel norm) against a double reference. */
    private void verify() {
        float[] y = out1.toArray();
        int channels = (int) SHAPE[3];
        double s = Math.sqrt(0.7 * 0.7 + 0.3 * 0.3);
        for (int i = 0; i < y.length; i += 97) {
            double want = switch (op) {
                case "mp_silu_forward" -> x[i] / (1 + Math.exp(-x[i])) / 0.596;
                case "mp_silu_backward" -> {
                    double sig = 1 / (1 + Math.exp(-x[i]));
                    yield g[i] * sig * (1 + x[i] * (1 - sig)) / 0.596;
                }
                case "mp_sum_forward" -> (0.7 * x[i] + 0.3 * g[i]) / s;
                case "mp_sum_backward" -> g[i] * 0.7 / s;
                case "pixel_norm_forward", "pixel_norm_backward" -> pixelNorm(i / channels * channels, channels, i % channels);
                default -> throw new IllegalArgumentException(op);
            };
            if (!(Math.abs(y[i] - want) <= 1e-4 * Math.abs(want) + 1e-5)) {
                throw new IllegalStateException(op + " is wrong at " + i + ": got " + y[i] + ", want " + want);
            }
        }
    }

    private double pixelNorm(int start, int c, int j) {
        double sum = 0, dot = 0;
        for (int k = 0; k < c; k++) {
            sum += (double) x[start + k] * x[start + k];
            dot += (double) g[start + k] * x[start + k];
        }
        double r = Math.sqrt(sum / c), d = PixelNorm.DEFAULT_EPS + r;
        if (op.equals("pixel_norm_forward")) return x[start + j] / d;
        return g[start + j] / d - x[start + j] * dot / (d * d * c * r);
    }
}
