package dev.ambient.benchmarks;

import dev.ambient.kernels.Device;
import dev.ambient.kernels.MagnitudePreserving;
import dev.ambient.kernels.Tensor;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * What one kernel call costs beyond its work: a call that does nothing native
 * (synchronize on the CPU) and a kernel call on a single element, validation included.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class CallOverheadBenchmark {

    @Param({"auto"})
    public String device;

    private Device d;
    private Tensor x, y;

    @Setup
    public void setUp() {
        d = BenchDevices.resolve(device);
        x = Tensor.of(d, new float[] {0.5f}, 1);
        y = Tensor.allocate(d, 1);
    }

    @Benchmark
    public void synchronize() {
        d.synchronize();
    }

    @Benchmark
    public Tensor oneElementKernel() {
        return MagnitudePreserving.silu(x, y);
    }

    @TearDown
    public void tearDown() {
        float got = y.toArray()[0];
        double want = 0.5 / (1 + Math.exp(-0.5)) / 0.596;
        if (Math.abs(got - want) > 1e-5) throw new IllegalStateException("mp_silu(0.5) = " + got + ", want " + want);
        x.close();
        y.close();
    }
}
