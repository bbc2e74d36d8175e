package dev.ambient.benchmarks;

/**
 * What one JMH case of {@code ./ambient bench kernels} measures: its op name and shape as the
 * JSON reports them, and the work of one call, in floating-point operations for compute-bound
 * ops or in bytes read plus written for memory-bound ones (the other one is 0). Every kernel
 * benchmark class has a {@code public static KernelCase kernelCase(Map<String, String> params)}
 * that {@link BenchMain} calls with the case's JMH parameters.
 */
public record KernelCase(String op, String shape, double flops, double bytes) {

    public static KernelCase compute(String op, String shape, double flops) {
        return new KernelCase(op, shape, flops, 0);
    }

    public static KernelCase memory(String op, String shape, double bytes) {
        return new KernelCase(op, shape, 0, bytes);
    }

    public boolean computeBound() {
        return flops > 0;
    }
}
