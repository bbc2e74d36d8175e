package dev.ambient.benchmarks;

import dev.ambient.kernels.Conv2d;
import dev.ambient.kernels.Device;
import dev.ambient.kernels.Tensor;
import java.util.SplittableRandom;
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
 * 3x3 NHWC convolution of EDM2's UNet blocks at the DESIGN kernel shapes (N x H x W x Cin x
 * Cout), each pass on its own: forward, input gradient, weight gradient. Every pass is
 * {@code 2 N H W Cin Cout 9} flops (taps in the zero padding counted, as everyone does).
 * Outputs are checked against float64 sums at sampled entries before and after timing.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
public class ConvBenchmark {

    static final int KERNEL = 3;

    @Param({"auto"})
    public String device;

    /** N x H x W x Cin x Cout. */
    @Param({"32x16x16x128x128", "32x32x32x64x64"})
    public String shape;

    @Param({"forward", "backward_input", "backward_weight"})
    public String pass;

    private int n, h, w, cin, cout;
    private float[] x, weight, dy;
    private Tensor tx, tweight, tdy, out;

    public static KernelCase kernelCase(java.util.Map<String, String> params) {
        int[] s = parse(params.get("shape"));
        double flops = 2.0 * s[0] * s[1] * s[2] * s[3] * s[4] * KERNEL * KERNEL;
        return KernelCase.compute("conv3x3_" + params.get("pass"), params.get("shape"), flops);
    }

    static int[] parse(String shape) {
        String[] parts = shape.split("x");
        if (parts.length != 5) throw new IllegalArgumentException("shape " + shape + " is not N x H x W x Cin x Cout");
        int[] s = new int[5];
        for (int i = 0; i < 5; i++) s[i] = Integer.parseInt(parts[i]);
        return s;
    }

    @Setup(Level.Trial)
    public void setUp() {
        Device d = BenchDevices.resolve(device);
        int[] s = parse(shape);
        n = s[0];
        h = s[1];
        w = s[2];
        cin = s[3];
        cout = s[4];
        int pixels = n * h * w;
        x = Random.uniform(1, pixels * cin, 1f);
        weight = Random.uniform(2, cout * KERNEL * KERNEL * cin, 1f);
        dy = Random.uniform(3, pixels * cout, 1f);
        tx = Tensor.of(d, x, n, h, w, cin);
        tweight = Tensor.of(d, weight, cout, KERNEL, KERNEL, cin);
        tdy = Tensor.of(d, dy, n, h, w, cout);
        out = switch (pass) {
            case "forward" -> Tensor.allocate(d, n, h, w, cout);
            case "backward_input" -> Tensor.allocate(d, n, h, w, cin);
            case "backward_weight" -> Tensor.allocate(d, cout, KERNEL, KERNEL, cin);
            default -> throw new IllegalArgumentException("unknown pass " + pass);
        };
        run();
        verify();
    }

    @Benchmark
    public Tensor run() {
        return switch (pass) {
            case "forward" -> Conv2d.forward(tx, tweight, 0f, out);
            case "backward_input" -> Conv2d.backwardInput(tdy, tweight, 0f, out);
            case "backward_weight" -> Conv2d.backwardWeight(tx, tdy, 0f, out);
            default -> throw new IllegalArgumentException("unknown pass " + pass);
        };
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        out.device().synchronize();
        verify();
        for (Tensor t : new Tensor[] {tx, tweight, tdy, out}) t.close();
    }

    /** 64 sampled outputs against float64 sums, within 1e-5 of the sum of |terms|. */
    private void verify() {
        float[] got = out.toArray();
        SplittableRandom random = new SplittableRandom(4);
        int taps = KERNEL * KERNEL;
        for (int sample = 0; sample < 64; sample++) {
            int index = random.nextInt(got.length);
            double want = 0, magnitude = 0;
            if (pass.equals("backward_weight")) {
                // dW[o, t, i] = sum over pixels p of dy[p, o] * x[p + offset(t), i]
                int o = index / (taps * cin), t = index / cin % taps, i = index % cin;
                for (int p = 0; p < n * h * w; p++) {
                    int q = neighbour(p, t, 1);
                    if (q < 0) continue;
                    double term = (double) dy[p * cout + o] * x[q * cin + i];
                    want += term;
                    magnitude += Math.abs(term);
                }
            } else {
                boolean forward = pass.equals("forward");
                int channels = forward ? cout : cin, p = index / channels, c = index % channels;
                for (int t = 0; t < taps; t++) {
                    // forward reads x at p + offset(t); the input gradient reads dy at p - offset(t)
                    int q = neighbour(p, t, forward ? 1 : -1);
                    if (q < 0) continue;
                    for (int k = 0; k < (forward ? cin : cout); k++) {
                        double term = forward ? (double) x[q * cin + k] * weight[(c * taps + t) * cin + k]
                                : (double) dy[q * cout + k] * weight[(k * taps + t) * cin + c];
                        want += term;
                        magnitude += Math.abs(term);
                    }
                }
            }
            if (!(Math.abs(got[index] - want) <= 1e-5 * magnitude + 1e-6)) {
                throw new IllegalStateException("conv3x3 " + pass + " " + shape + " is wrong at " + index + ": got "
                        + got[index] + ", want " + want);
            }
        }
    }

    /** The pixel that tap t of pixel p reads (sign -1: the mirrored tap), or -1 in the padding. */
    private int neighbour(int p, int t, int sign) {
        int px = p % w, py = p / w % h, img = p / (w * h);
        int yy = py + sign * (t / KERNEL - KERNEL / 2), xx = px + sign * (t % KERNEL - KERNEL / 2);
        if (yy < 0 || yy >= h || xx < 0 || xx >= w) return -1;
        return (img * h + yy) * w + xx;
    }
}
