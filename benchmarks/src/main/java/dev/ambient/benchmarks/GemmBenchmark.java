package dev.ambient.benchmarks;

import dev.ambient.kernels.Device;
import dev.ambient.kernels.Gemm;
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
 * Square float32 GEMM, C = A * B, at the sizes of the kernel benchmarks (2 n^3 flops). The
 * result is checked against a double-precision dot product at sampled entries before and
 * after timing, so a fast wrong kernel fails the run.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
public class GemmBenchmark {

    @Param({"auto"})
    public String device;

    @Param({"512", "2048"})
    public int size;

    private float[] a, b;

    public static KernelCase kernelCase(java.util.Map<String, String> params) {
        long n = Long.parseLong(params.get("size"));
        return KernelCase.compute("gemm", n + "x" + n + "x" + n, 2.0 * n * n * n);
    }
    private Tensor ta, tb, tc;

    @Setup(Level.Trial)
    public void setUp() {
        Device d = BenchDevices.resolve(device);
        int n = size;
        a = Random.uniform(1, n * n, 1f);
        b = Random.uniform(2, n * n, 1f);
        ta = Tensor.of(d, a, n, n);
        tb = Tensor.of(d, b, n, n);
        tc = Tensor.allocate(d, n, n);
        multiply();
        verify();
    }

    @Benchmark
    public Tensor multiply() {
        return Gemm.matmul(ta, false, tb, false, 1f, 0f, tc);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        tc.device().synchronize();
        verify();
        ta.close();
        tb.close();
        tc.close();
    }

    private void verify() {
        int n = size;
        float[] c = tc.toArray();
        SplittableRandom random = new SplittableRandom(3);
        for (int s = 0; s < 64; s++) {
            int i = random.nextInt(n), j = random.nextInt(n);
            double want = 0, magnitude = 0;
            for (int k = 0; k < n; k++) {
                want += (double) a[i * n + k] * b[k * n + j];
                magnitude += Math.abs((double) a[i * n + k] * b[k * n + j]);
            }
            if (!(Math.abs(c[i * n + j] - want) <= 1e-5 * magnitude + 1e-6)) {
                throw new IllegalStateException("GEMM " + n + "^3 is wrong at (" + i + ", " + j + "): got " + c[i * n + j]
                        + ", want " + want);
            }
        }
    }
}
