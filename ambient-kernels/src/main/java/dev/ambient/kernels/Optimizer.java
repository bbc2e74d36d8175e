package dev.ambient.kernels;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Single-pass bookkeeping over flat parameter, gradient and moment buffers: the squared norm
 * for clipping, a NaN/Inf guard, bias-corrected Adam with clipping by global norm, and the EMA
 * of the weights. Each reads and writes its buffers once.
 */
public final class Optimizer {

    private Optimizer() {}

    /**
     * {@code result[0] = sum x^2}, or {@code result[0] += sum x^2} when {@code accumulate}
     * (summing the norm of several gradient buffers). Accumulates in double in a fixed order, so
     * the value does not depend on the thread count. Modifies and returns {@code result [1]}.
     */
    public static Tensor sumSquares(Tensor x, boolean accumulate, Tensor result) {
        String f = "ambient_sum_squares";
        Device device = Checks.sameDevice(f, "x", x, "result", result);
        if (result.size() != 1) {
            throw new IllegalArgumentException(f + ": result " + java.util.Arrays.toString(result.shape()) + " must hold one value");
        }
        Checks.distinct(f, "result", result, "x", x);
        device.activate();
        device.backend().check(device.backend().api.ambient_sum_squares(x.size(), AmbientLoss.segmentOrNull(x),
                accumulate ? 1 : 0, result.segment()), f, Checks.shapes("x", x, "result", result));
        return result;
    }

    /** {@code sum x^2} as a number (allocates a one-element tensor). */
    public static float sumSquares(Tensor x) {
        if (x == null) throw new IllegalArgumentException("ambient_sum_squares: x is null");
        try (Tensor result = Tensor.allocate(x.device(), 1)) {
            return sumSquares(x, false, result).toArray()[0];
        }
    }

    /** Replaces every NaN, +Inf and -Inf of x by 0 (modifies x) and returns how many there were. */
    public static long nanGuard(Tensor x) {
        String f = "ambient_nan_guard";
        Device device = Checks.sameDevice(f, "x", x);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment count = arena.allocate(ValueLayout.JAVA_LONG);
            device.activate();
            device.backend().check(device.backend().api.ambient_nan_guard(x.size(), AmbientLoss.segmentOrNull(x), count), f,
                    Checks.shapes("x", x));
            return count.get(ValueLayout.JAVA_LONG, 0);
        }
    }

    /**
     * One Adam step with bias correction; modifies {@code param}, {@code m} and {@code v} (four
     * tensors of one shape that must not overlap):
     * <pre>
     *   g = c grad,  c = min(1, maxNorm / sqrt(gradSumSquares[0])) when gradSumSquares is given, else 1
     *   m = beta1 m + (1 - beta1) g,   v = beta2 v + (1 - beta2) g^2
     *   param -= lr (m / (1 - beta1^step)) / (sqrt(v / (1 - beta2^step)) + eps)
     * </pre>
     *
     * @param gradSumSquares one value, the squared global gradient norm ({@link #sumSquares}), or null
     * @param maxNorm        the clipping threshold, positive when gradSumSquares is given
     * @param step           the 1-based step number
     */
    public static void adamStep(Tensor param, Tensor grad, Tensor m, Tensor v, float lr, float beta1, float beta2,
            float eps, long step, Tensor gradSumSquares, float maxNorm) {
        String f = "ambient_adam_step";
        Device device = gradSumSquares == null
                ? Checks.sameDevice(f, "param", param, "grad", grad, "m", m, "v", v)
                : Checks.sameDevice(f, "param", param, "grad", grad, "m", m, "v", v, "gradSumSquares", gradSumSquares);
        Checks.sameShape(f, "param", param, "grad", grad);
        Checks.sameShape(f, "param", param, "m", m);
        Checks.sameShape(f, "param", param, "v", v);
        Object[] named = {"param", param, "grad", grad, "m", m, "v", v};
        for (int a = 0; a < named.length; a += 2) {
            for (int b = a + 2; b < named.length; b += 2) {
                Checks.distinct(f, (String) named[a], (Tensor) named[a + 1], (String) named[b], (Tensor) named[b + 1]);
            }
        }
        if (gradSumSquares != null) {
            if (gradSumSquares.size() != 1) {
                throw new IllegalArgumentException(f + ": gradSumSquares " + java.util.Arrays.toString(gradSumSquares.shape())
                        + " must hold one value");
            }
            if (!(maxNorm > 0) || !Float.isFinite(maxNorm)) {
                throw new IllegalArgumentException(f + ": maxNorm = " + maxNorm + " must be positive and finite when clipping");
            }
            for (int a = 0; a < named.length; a += 2) {
                Checks.distinct(f, "gradSumSquares", gradSumSquares, (String) named[a], (Tensor) named[a + 1]);
            }
        }
        if (!(lr >= 0) || !Float.isFinite(lr)) throw new IllegalArgumentException(f + ": lr = " + lr + " must be non-negative and finite");
        if (!(beta1 >= 0 && beta1 < 1)) throw new IllegalArgumentException(f + ": beta1 = " + beta1 + " must be in [0, 1)");
        if (!(beta2 >= 0 && beta2 < 1)) throw new IllegalArgumentException(f + ": beta2 = " + beta2 + " must be in [0, 1)");
        if (!(eps > 0) || !Float.isFinite(eps)) throw new IllegalArgumentException(f + ": eps = " + eps + " must be positive and finite");
        if (step < 1) throw new IllegalArgumentException(f + ": step = " + step + " must be >= 1");
        device.activate();
        device.backend().check(device.backend().api.ambient_adam_step(param.size(), lr, beta1, beta2, eps, step,
                AmbientLoss.segmentOrNull(gradSumSquares), maxNorm, AmbientLoss.segmentOrNull(param),
                AmbientLoss.segmentOrNull(grad), AmbientLoss.segmentOrNull(m), AmbientLoss.segmentOrNull(v)), f,
                Checks.shapes(named).and("lr", lr, "step", step));
    }

    /**
     * {@code ema += (1 - beta) (param - ema)}, EDM's and EDM2's weight average with the step's
     * beta in [0, 1]; modifies ema, which must not overlap param.
     */
    public static void emaUpdate(Tensor param, Tensor ema, float beta) {
        String f = "ambient_ema_update";
        Device device = Checks.sameDevice(f, "param", param, "ema", ema);
        Checks.sameShape(f, "param", param, "ema", ema);
        Checks.distinct(f, "ema", ema, "param", param);
        if (!(beta >= 0 && beta <= 1)) throw new IllegalArgumentException(f + ": beta = " + beta + " must be in [0, 1]");
        device.activate();
        device.backend().check(device.backend().api.ambient_ema_update(param.size(), beta, AmbientLoss.segmentOrNull(param),
                AmbientLoss.segmentOrNull(ema)), f, Checks.shapes("param", param, "ema", ema).and("beta", beta));
    }
}
