package dev.ambient.kernels;

/**
 * General matrix multiply over row-major float32 tensors:
 * {@code C = alpha * op(A) * op(B) + beta * C}, where op transposes when asked.
 *
 * <p>Shapes: {@code op(A)} is m x k, {@code op(B)} is k x n, C is m x n. Either all three are
 * matrices, or all three are batches {@code [batch, rows, cols]} multiplied pairwise. A stored
 * transposed is given in its stored shape ({@code [k, m]} for A with {@code transposeA}).
 */
public final class Gemm {

    private static final String FUNCTION = "ambient_gemm";

    private Gemm() {}

    /**
     * {@code C = alpha * op(A) * op(B) + beta * C}; modifies and returns {@code c}. With
     * {@code beta == 0} the old contents of C are ignored (NaN included).
     */
    public static Tensor matmul(Tensor a, boolean transposeA, Tensor b, boolean transposeB,
                                float alpha, float beta, Tensor c) {
        Device device = Checks.sameDevice(FUNCTION, "A", a, "B", b, "C", c);
        Checks.Shapes shapes = Checks.shapes("A", a, "B", b, "C", c);
        Checks.finite(FUNCTION, "alpha", alpha);
        Checks.finite(FUNCTION, "beta", beta);
        int rank = a.rank();
        if ((rank != 2 && rank != 3) || b.rank() != rank || c.rank() != rank) {
            throw new IllegalArgumentException(FUNCTION + ": " + shapes
                    + ": A, B and C must all be matrices or all be batches of matrices (rank 2 or 3)");
        }
        long batch = rank == 3 ? a.dim(0) : 1;
        if (rank == 3 && (b.dim(0) != batch || c.dim(0) != batch)) {
            throw new IllegalArgumentException(FUNCTION + ": " + shapes + ": batch sizes differ");
        }
        long m = transposeA ? a.dim(-1) : a.dim(-2);
        long k = transposeA ? a.dim(-2) : a.dim(-1);
        long kb = transposeB ? b.dim(-1) : b.dim(-2);
        long n = transposeB ? b.dim(-2) : b.dim(-1);
        if (k != kb) {
            throw new IllegalArgumentException(FUNCTION + ": " + shapes + ": op(A) is " + m + " x " + k
                    + " but op(B) is " + kb + " x " + n + "; inner dimensions differ");
        }
        if (c.dim(-2) != m || c.dim(-1) != n) {
            throw new IllegalArgumentException(FUNCTION + ": " + shapes + ": C must be " + m + " x " + n);
        }
        Checks.distinct(FUNCTION, "C", c, "A", a);
        Checks.distinct(FUNCTION, "C", c, "B", b);
        device.activate();
        Backend backend = device.backend();
        backend.check(backend.api.ambient_gemm(transposeA ? 1 : 0, transposeB ? 1 : 0, batch, m, n, k, alpha,
                a.segment(), a.dim(-1), a.dim(-1) * a.dim(-2),
                b.segment(), b.dim(-1), b.dim(-1) * b.dim(-2),
                beta, c.segment(), n, m * n), FUNCTION, shapes);
        return c;
    }

    /** {@code op(A) * op(B)} into a new tensor on the same device. */
    public static Tensor matmul(Tensor a, boolean transposeA, Tensor b, boolean transposeB) {
        Checks.sameDevice(FUNCTION, "A", a, "B", b);
        long m = transposeA ? a.dim(-1) : a.dim(-2);
        long n = transposeB ? b.dim(-2) : b.dim(-1);
        Tensor c = a.rank() == 3 ? Tensor.allocate(a.device(), a.dim(0), m, n) : Tensor.allocate(a.device(), m, n);
        try {
            return matmul(a, transposeA, b, transposeB, 1f, 0f, c);
        } catch (RuntimeException e) {
            c.close();
            throw e;
        }
    }

    /** {@code A * B} into a new tensor. */
    public static Tensor matmul(Tensor a, Tensor b) {
        return matmul(a, false, b, false);
    }
}
