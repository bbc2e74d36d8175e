package dev.ambient.benchmarks;

import dev.ambient.kernels.Activations;
import dev.ambient.kernels.Device;
import dev.ambient.kernels.Embedding;
import dev.ambient.kernels.MagnitudePreserving;
import dev.ambient.kernels.Resample;
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
 * The memory-bound layer ops of EDM2's UNet blocks on an NHWC activation of 64x32x32x64:
 * mp_cat of two such tensors into 128 channels, 2x2 average pooling of it, nearest 2x
 * upsampling from 64x16x16x64, channel scaling by a 64x64 embedding (alone, and fused with the
 * mp_silu that follows it in a block), clipping, and dropout
 * (p = 0.1, Philox uniforms generated on the fly). Bandwidth counts the bytes each op must read
 * and write once ({@link #bytesMoved}). Outputs are checked against double references (every
 * 97th element) before and after timing.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
public class LayerBenchmark {

    static final long N = 64, H = 32, W = 32, C = 64;
    static final long[] SHAPE = {N, H, W, C};
    static final float T = 0.5f, LIMIT = 1.5f, P = 0.1f;
    static final long SEED = 7, STREAM = 3, OFFSET = 0;

    @Param({"auto"})
    public String device;

    @Param({"mp_cat_forward", "avg_pool2x2_forward", "upsample2x_forward", "channel_scale_forward",
            "channel_scale_silu_forward", "clip_forward", "dropout_forward"})
    public String op;

    private float[] x, b, s;
    private Tensor tx, tb, ts, out;

    public static KernelCase kernelCase(java.util.Map<String, String> params) {
        String op = params.get("op");
        String shape = switch (op) {
            case "mp_cat_forward" -> "64x32x32x(64+64)";
            case "upsample2x_forward" -> "64x16x16x64";
            default -> "64x32x32x64";
        };
        return KernelCase.memory(op, shape, bytesMoved(op));
    }

    /** Bytes an op reads plus writes, at the minimum (each tensor touched once). */
    static long bytesMoved(String op) {
        long e = N * H * W * C;
        long elements = switch (op) {
            case "mp_cat_forward" -> 2 * e + 2 * e;               // read a and b, write y with both
            case "avg_pool2x2_forward" -> e + e / 4;               // read x, write a quarter
            case "upsample2x_forward" -> e / 4 + e;                // read a quarter, write x's size
            case "channel_scale_forward", "channel_scale_silu_forward" -> e + N * C + e; // read x and s, write y
            case "clip_forward", "dropout_forward" -> 2 * e;
            default -> throw new IllegalArgumentException("unknown op " + op);
        };
        return elements * Float.BYTES;
    }

    @Setup(Level.Trial)
    public void setUp() {
        Device d = BenchDevices.resolve(device);
        int e = Math.toIntExact(N * H * W * C);
        x = Random.uniform(1, e, 3f);
        b = Random.uniform(2, e, 1f);
        s = Random.uniform(3, Math.toIntExact(N * C), 0.5f);
        switch (op) {
            case "upsample2x_forward" -> {
                x = java.util.Arrays.copyOf(x, e / 4);
                tx = Tensor.of(d, x, N, H / 2, W / 2, C);
                out = Tensor.allocate(d, SHAPE);
            }
            case "avg_pool2x2_forward" -> {
                tx = Tensor.of(d, x, SHAPE);
                out = Tensor.allocate(d, N, H / 2, W / 2, C);
            }
            case "mp_cat_forward" -> {
                tx = Tensor.of(d, x, SHAPE);
                tb = Tensor.of(d, b, SHAPE);
                out = Tensor.allocate(d, N, H, W, 2 * C);
            }
            case "channel_scale_forward", "channel_scale_silu_forward" -> {
                tx = Tensor.of(d, x, SHAPE);
                ts = Tensor.of(d, s, N, C);
                out = Tensor.allocate(d, SHAPE);
            }
            default -> {
                tx = Tensor.of(d, x, SHAPE);
                out = Tensor.allocate(d, SHAPE);
            }
        }
        run();
        verify();
    }

    @Benchmark
    public Tensor run() {
        return switch (op) {
            case "mp_cat_forward" -> MagnitudePreserving.cat(tx, tb, T, out);
            case "avg_pool2x2_forward" -> Resample.avgPool2x2(tx, out);
            case "upsample2x_forward" -> Resample.upsample2x(tx, out);
            case "channel_scale_forward" -> Embedding.channelScale(tx, ts, out);
            case "channel_scale_silu_forward" -> Embedding.channelScaleSilu(tx, ts, out);
            case "clip_forward" -> Activations.clip(tx, LIMIT, out);
            case "dropout_forward" -> Activations.dropout(tx, P, SEED, STREAM, OFFSET, out);
            default -> throw new IllegalArgumentException("unknown op " + op);
        };
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        out.device().synchronize();
        verify();
        for (Tensor t : new Tensor[] {tx, tb, ts, out}) {
            if (t != null) t.close();
        }
    }

    /** Checks every 97th output element against a double reference. */
    private void verify() {
        float[] y = out.toArray();
        int c = (int) C, w = (int) W, h = (int) H;
        double cat = Math.sqrt(2 * C / (double) ((1 - T) * (1 - T) + T * T)) / Math.sqrt(C);
        float[] keep = null;
        if (op.equals("dropout_forward")) {
            try (Tensor u = dev.ambient.kernels.RandomNumbers.uniform(out.device(), SEED, STREAM, OFFSET, y.length)) {
                keep = u.toArray();
            }
        }
        for (int i = 0; i < y.length; i += 97) {
            double want = switch (op) {
                case "mp_cat_forward" -> {
                    int row = i / (2 * c), k = i % (2 * c);
                    yield k < c ? cat * (1 - T) * x[row * c + k] : cat * T * b[row * c + k - c];
                }
                case "avg_pool2x2_forward" -> {
                    int k = i % c, q = i / c % (w / 2), r = i / c / (w / 2) % (h / 2), n = i / c / (w / 2) / (h / 2);
                    double sum = 0;
                    for (int dd = 0; dd < 4; dd++) sum += x[((n * h + 2 * r + dd / 2) * w + 2 * q + dd % 2) * c + k];
                    yield sum / 4;
                }
                case "upsample2x_forward" -> {
                    int k = i % c, q = i / c % w, r = i / c / w % h, n = i / c / w / h;
                    yield x[((n * (h / 2) + r / 2) * (w / 2) + q / 2) * c + k];
                }
                case "channel_scale_forward" -> x[i] * (1 + (double) s[i / (h * w * c) * c + i % c]);
                case "channel_scale_silu_forward" -> {
                    double u = x[i] * (1 + (double) s[i / (h * w * c) * c + i % c]);
                    yield u / (1 + Math.exp(-u)) / 0.596;
                }
                case "clip_forward" -> Math.min(Math.max(x[i], -LIMIT), LIMIT);
                case "dropout_forward" -> keep[i] >= P ? x[i] / (1.0 - P) : 0;
                default -> throw new IllegalArgumentException(op);
            };
            if (!(Math.abs(y[i] - want) <= 1e-5 * Math.abs(want) + 1e-6)) {
                throw new IllegalStateException(op + " is wrong at " + i + ": got " + y[i] + ", want " + want);
            }
        }
    }
}
