package dev.ambient.benchmarks;

import dev.ambient.kernels.Attention;
import dev.ambient.kernels.Device;
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
 * EDM2's multi-head attention at batch 32, 2 heads of 64 channels (EDM2-S's attention blocks
 * at 16x16 = 256 and 8x8 = 64 tokens), q, k, v pixel-normalised per head.
 *
 * <p>Flop counts (shape "N x heads x L x headDim"): forward {@code 4 N heads L^2 headDim}
 * (two matrix products, q k^T and P v); backward {@code 10 N heads L^2 headDim}: the kernel
 * recomputes S = q k^T from lse instead of storing P, so five products (S, dP = dO v^T,
 * dV = P^T dO, dK = dS^T q, dQ = dS k). The exponentials and the softmax are not counted.
 * Results are checked against a double-precision reference (two whole heads, and sampled
 * query rows for the forward) before and after timing.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
public class AttentionBenchmark {

    static final int BATCH = 32, HEADS = 2, HEAD_DIM = 64;

    @Param({"auto"})
    public String device;

    @Param({"64", "256"})
    public String length;

    @Param({"forward", "backward"})
    public String pass;

    private int tokens;
    private float[] qkv, dout;
    private Tensor tqkv, tout, tlse, tdout, tdqkv;

    public static KernelCase kernelCase(java.util.Map<String, String> params) {
        long l = Long.parseLong(params.get("length"));
        boolean forward = params.get("pass").equals("forward");
        double products = forward ? 4 : 10;
        return KernelCase.compute(forward ? "attention_forward" : "attention_backward",
                BATCH + "x" + HEADS + "x" + l + "x" + HEAD_DIM, products * BATCH * HEADS * l * l * HEAD_DIM);
    }

    @Setup(Level.Trial)
    public void setUp() {
        Device d = BenchDevices.resolve(device);
        tokens = Integer.parseInt(length);
        int rows = BATCH * tokens * HEADS * 3;
        qkv = Random.uniform(11, rows * HEAD_DIM, 1f);
        // Pixel-normalised rows, as EDM2 feeds them.
        for (int r = 0; r < rows; r++) {
            double sum = 0;
            for (int c = 0; c < HEAD_DIM; c++) sum += (double) qkv[r * HEAD_DIM + c] * qkv[r * HEAD_DIM + c];
            float inv = (float) (1 / Math.sqrt(sum / HEAD_DIM));
            for (int c = 0; c < HEAD_DIM; c++) qkv[r * HEAD_DIM + c] *= inv;
        }
        dout = Random.uniform(12, BATCH * tokens * HEADS * HEAD_DIM, 1f);
        tqkv = Tensor.of(d, qkv, BATCH, tokens, 3L * HEADS * HEAD_DIM);
        tdout = Tensor.of(d, dout, BATCH, tokens, (long) HEADS * HEAD_DIM);
        tout = Tensor.allocate(d, BATCH, tokens, (long) HEADS * HEAD_DIM);
        tlse = Tensor.allocate(d, BATCH, HEADS, tokens);
        tdqkv = Tensor.allocate(d, BATCH, tokens, 3L * HEADS * HEAD_DIM);
        Attention.forward(tqkv, HEADS, tout, tlse);
        run();
        verify();
    }

    @Benchmark
    public Tensor run() {
        if (pass.equals("forward")) return Attention.forward(tqkv, HEADS, tout, tlse);
        return Attention.backward(tqkv, tout, tlse, tdout, HEADS, tdqkv);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        tout.device().synchronize();
        verify();
        for (Tensor t : new Tensor[] {tqkv, tout, tlse, tdout, tdqkv}) t.close();
    }

    private int at(int b, int i, int h, int part) {
        return (((b * tokens + i) * HEADS + h) * 3 + part) * HEAD_DIM;
    }

    /** Softmax probabilities of one head in double, row by row (L x L), lse into lse. */
    private double[] probs(int b, int h, double[] lse) {
        int l = tokens;
        double[] p = new double[l * l];
        double scale = 1 / Math.sqrt(HEAD_DIM);
        for (int i = 0; i < l; i++) {
            double m = Double.NEGATIVE_INFINITY, sum = 0;
            for (int j = 0; j < l; j++) {
                double dot = 0;
                for (int c = 0; c < HEAD_DIM; c++) dot += (double) qkv[at(b, i, h, 0) + c] * qkv[at(b, j, h, 1) + c];
                p[i * l + j] = scale * dot;
                m = Math.max(m, p[i * l + j]);
            }
            for (int j = 0; j < l; j++) sum += (p[i * l + j] = Math.exp(p[i * l + j] - m));
            for (int j = 0; j < l; j++) p[i * l + j] /= sum;
            lse[i] = m + Math.log(sum);
        }
        return p;
    }

    /** out, lse and (backward) dqkv of the first and the last head of the batch, in double. */
    private void verify() {
        float[] out = tout.toArray(), lse = tlse.toArray(), dq = pass.equals("backward") ? tdqkv.toArray() : null;
        int l = tokens, d = HEAD_DIM;
        double scale = 1 / Math.sqrt(d);
        for (int[] bh : new int[][] {{0, 0}, {BATCH - 1, HEADS - 1}}) {
            int b = bh[0], h = bh[1];
            double[] wantLse = new double[l];
            double[] p = probs(b, h, wantLse);
            double[] o = new double[l * d];
            for (int i = 0; i < l; i++) {
                check("lse", lse[(b * HEADS + h) * l + i], wantLse[i], 1e-5);
                for (int j = 0; j < l; j++)
                    for (int c = 0; c < d; c++) o[i * d + c] += p[i * l + j] * qkv[at(b, j, h, 2) + c];
                for (int c = 0; c < d; c++) check("out", out[((b * l + i) * HEADS + h) * d + c], o[i * d + c], 1e-5);
            }
            if (dq == null) continue;
            double[] ds = new double[l * l];
            for (int i = 0; i < l; i++) {
                int go = ((b * l + i) * HEADS + h) * d;
                double dd = 0;
                for (int j = 0; j < l; j++) {
                    double dp = 0;
                    for (int c = 0; c < d; c++) dp += dout[go + c] * (double) qkv[at(b, j, h, 2) + c];
                    ds[i * l + j] = dp;
                    dd += p[i * l + j] * dp;
                }
                for (int j = 0; j < l; j++) ds[i * l + j] = p[i * l + j] * (ds[i * l + j] - dd);
            }
            for (int i = 0; i < l; i++) {
                for (int c = 0; c < d; c++) {
                    double gq = 0, gk = 0, gv = 0;
                    for (int j = 0; j < l; j++) {
                        gq += scale * ds[i * l + j] * qkv[at(b, j, h, 1) + c];
                        gk += scale * ds[j * l + i] * qkv[at(b, j, h, 0) + c];
                        gv += p[j * l + i] * dout[((b * l + j) * HEADS + h) * d + c];
                    }
                    check("dq", dq[at(b, i, h, 0) + c], gq, 1e-4);
                    check("dk", dq[at(b, i, h, 1) + c], gk, 1e-4);
                    check("dv", dq[at(b, i, h, 2) + c], gv, 1e-4);
                }
            }
        }
    }

    private void check(String what, float got, double want, double atol) {
        if (!(Math.abs(got - want) <= atol + 1e-4 * Math.abs(want))) {
            throw new IllegalStateException("attention_" + pass + " " + what + " is wrong at length " + tokens + ": got "
                    + got + ", want " + want);
        }
    }
}
