package dev.ambient.benchmarks;

import dev.ambient.kernels.AmbientLoss;
import dev.ambient.kernels.Device;
import dev.ambient.kernels.Optimizer;
import dev.ambient.kernels.Philox;
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
 * The per-step training kernels besides the network: the fused Ambient loss (forward and
 * backward, with learned log-variance, no mask) and the Ambient noising on a batch of
 * 64x32x32x3 images, and Adam (with clipping) and the EMA update over 10M parameters. All are
 * reported as bandwidth over the bytes each must move once ({@link #bytesMoved}); noising is
 * bound by generating two Philox normals per element rather than by memory, and every sample
 * here has 0 < sigma_tn < sigma_t, so it draws both. Results are checked against double
 * references (sampled) before and after timing.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
public class TrainingKernelsBenchmark {

    static final long[] IMAGES = {64, 32, 32, 3};
    static final long PARAMETERS = 10_000_000;
    static final long FIXED_SEED = 20261128, STEP_SEED = 7;
    static final float SIGMA_DATA = 0.5f, SCALE = 1f / 64, LR = 1e-3f, BETA1 = 0.9f, BETA2 = 0.99f, EPS = 1e-8f, MAX_NORM = 1f;
    static final float EMA_BETA = 0.999f;
    static final long STEP = 10;

    @Param({"auto"})
    public String device;

    @Param({"ambient_loss", "ambient_noising", "adam_step", "ema_update"})
    public String op;

    private float[] a, b, c, d, sigmaT, sigmaTn, logvar;
    private long[] ids;
    private Tensor ta, tb, tc, td, tst, tstn, tlv, out1, out2, out3, norm2;

    public static KernelCase kernelCase(java.util.Map<String, String> params) {
        String op = params.get("op");
        boolean images = op.startsWith("ambient");
        String shape = images ? IMAGES[0] + "x" + IMAGES[1] + "x" + IMAGES[2] + "x" + IMAGES[3] : Long.toString(PARAMETERS);
        return KernelCase.memory(op, shape, bytesMoved(op, images ? IMAGES[0] * IMAGES[1] * IMAGES[2] * IMAGES[3] : PARAMETERS));
    }

    /** Bytes an op reads plus writes, at the minimum (each tensor touched once; per-sample scalars left out). */
    static long bytesMoved(String op, long elements) {
        int tensors = switch (op) {
            case "ambient_loss" -> 4;     // reads x0_pred, x_t, x_tn; writes grad_x0
            case "ambient_noising" -> 3;  // reads x; writes x_tn, x_t
            case "adam_step" -> 7;        // reads param, grad, m, v; writes param, m, v
            case "ema_update" -> 3;       // reads param, ema; writes ema
            default -> throw new IllegalArgumentException("unknown op " + op);
        };
        return tensors * elements * Float.BYTES;
    }

    @Setup(Level.Trial)
    public void setUp() {
        Device dev = BenchDevices.resolve(device);
        if (op.startsWith("ambient")) {
            int n = (int) IMAGES[0], count = Math.toIntExact(IMAGES[0] * IMAGES[1] * IMAGES[2] * IMAGES[3]);
            sigmaT = new float[n];
            sigmaTn = new float[n];
            ids = new long[n];
            for (int i = 0; i < n; i++) {
                sigmaT[i] = 0.2f + 0.1f * i;
                sigmaTn[i] = 0.5f * sigmaT[i];
                ids[i] = 1000L * i + 17;
            }
            logvar = Random.uniform(5, n, 0.5f);
            a = Random.uniform(1, count, 1f);  // x (noising) or x0_pred (loss)
            b = Random.uniform(2, count, 2f);  // x_t
            c = Random.uniform(3, count, 1f);  // x_tn
            ta = Tensor.of(dev, a, IMAGES);
            tb = Tensor.of(dev, b, IMAGES);
            tc = Tensor.of(dev, c, IMAGES);
            tst = Tensor.of(dev, sigmaT, n);
            tstn = Tensor.of(dev, sigmaTn, n);
            tlv = Tensor.of(dev, logvar, n);
            out1 = Tensor.allocate(dev, IMAGES);
            out2 = Tensor.allocate(dev, IMAGES);
            out3 = Tensor.allocate(dev, n);
            td = Tensor.allocate(dev, n);
        } else {
            int n = Math.toIntExact(PARAMETERS);
            a = Random.uniform(1, n, 1f);     // param
            b = Random.uniform(2, n, 0.1f);   // grad, or ema
            c = Random.uniform(3, n, 0.01f);  // m
            d = Random.uniform(4, n, 0.01f);  // v (non-negative)
            for (int i = 0; i < n; i++) d[i] = Math.abs(d[i]) * 0.01f;
            ta = Tensor.of(dev, a, n);
            tb = Tensor.of(dev, b, n);
            tc = Tensor.of(dev, c, n);
            td = Tensor.of(dev, d, n);
            norm2 = Tensor.allocate(dev, 1);
            Optimizer.sumSquares(tb, false, norm2);
        }
        run();
        verify();
    }

    @Benchmark
    public Object run() {
        switch (op) {
            case "ambient_loss" -> AmbientLoss.loss(ta, tb, tc, tst, tstn, tlv, null, SIGMA_DATA, SCALE, out3, out1, td);
            case "ambient_noising" -> AmbientLoss.noising(ta, tst, tstn, ids, FIXED_SEED, STEP_SEED, out1, out2);
            case "adam_step" -> Optimizer.adamStep(ta, tb, tc, td, LR, BETA1, BETA2, EPS, STEP, norm2, MAX_NORM);
            case "ema_update" -> Optimizer.emaUpdate(ta, tb, EMA_BETA);
            default -> throw new IllegalArgumentException("unknown op " + op);
        }
        return out1;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        Device dev = ta.device();
        dev.synchronize();
        if (!op.startsWith("ambient")) {
            // the timed calls kept updating the state: start again from the inputs for the check
            ta.copyFrom(a);
            tb.copyFrom(b);
            tc.copyFrom(c);
            td.copyFrom(d);
            run();
        }
        verify();
        for (Tensor t : new Tensor[] {ta, tb, tc, td, tst, tstn, tlv, out1, out2, out3, norm2}) {
            if (t != null) t.close();
        }
    }

    /** Checks every 97th element (and every per-sample value) against a double reference. */
    private void verify() {
        switch (op) {
            case "ambient_loss" -> verifyLoss();
            case "ambient_noising" -> verifyNoising();
            case "adam_step" -> verifyAdam();
            case "ema_update" -> {
                float[] got = tb.toArray();
                for (int i = 0; i < got.length; i += 97) check(i, got[i], b[i] + (1 - (double) EMA_BETA) * ((double) a[i] - b[i]));
            }
            default -> throw new IllegalArgumentException(op);
        }
    }

    private void verifyLoss() {
        int n = sigmaT.length, size = a.length / n;
        float[] grad = out1.toArray(), loss = out3.toArray(), glv = td.toArray();
        for (int i = 0; i < n; i++) {
            double t = sigmaT[i], tn = sigmaTn[i], r = tn * tn / (t * t);
            double w = (t * t + SIGMA_DATA * SIGMA_DATA) / (t * t * SIGMA_DATA * SIGMA_DATA), inv = Math.exp(-logvar[i]), s = 0;
            for (int e = 0; e < size; e++) {
                int k = i * size + e;
                double res = r * b[k] + (1 - r) * a[k] - c[k];
                s += res * res;
                if (k % 97 == 0) check(k, grad[k], SCALE * 2 * w / (1 - r) * res * inv);
            }
            double l = w / ((1 - r) * (1 - r)) * s;
            check(i, loss[i], l * inv + logvar[i] * size);
            check(i, glv[i], SCALE * (size - l * inv));
        }
    }

    private void verifyNoising() {
        int n = sigmaT.length, size = a.length / n;
        float[] xtn = out1.toArray(), xt = out2.toArray();
        for (int k = 0; k < a.length; k += 97) {
            int i = k / size, e = k % size;
            double s = Math.sqrt((double) sigmaT[i] * sigmaT[i] - (double) sigmaTn[i] * sigmaTn[i]);
            check(k, xtn[k], a[k] + sigmaTn[i] * Philox.normal(FIXED_SEED, ids[i], e));
            check(k, xt[k], xtn[k] + s * Philox.normal(STEP_SEED, i, e));
        }
    }

    private void verifyAdam() {
        double sum = 0;
        for (float g : b) sum += (double) g * g;
        double clip = Math.min(1, MAX_NORM / Math.sqrt(sum));
        float[] p = ta.toArray();
        for (int i = 0; i < p.length; i += 97) {
            double g = b[i] * clip, m = BETA1 * c[i] + (1 - (double) BETA1) * g, v = BETA2 * d[i] + (1 - (double) BETA2) * g * g;
            double mh = m / (1 - Math.pow(BETA1, STEP)), vh = v / (1 - Math.pow(BETA2, STEP));
            check(i, p[i], a[i] - LR * mh / (Math.sqrt(vh) + EPS));
        }
    }

    private void check(int i, float got, double want) {
        if (!(Math.abs(got - want) <= 1e-4 * Math.abs(want) + 1e-5)) {
            throw new IllegalStateException(op + " is wrong at " + i + ": got " + got + ", want " + want);
        }
    }
}
