package dev.ambient.model.eval;

import java.util.Objects;
import java.util.stream.IntStream;

/**
 * Improved precision and recall (Kynkäänniemi, Karras, Laine, Lehtinen, Aila, NeurIPS 2019), which
 * separate fidelity from diversity where one Fréchet distance mixes them.
 *
 * <p>Each set approximates its manifold in feature space by the union of balls around its samples,
 * the radius of a sample's ball being the distance to its k-th nearest neighbour in the same set
 * (the sample itself not counted). <b>Precision</b> is the fraction of generated samples that lie
 * in the real manifold (within the radius of at least one real sample); <b>recall</b> is the
 * fraction of real samples that lie in the generated manifold. A generator that collapses onto a
 * few modes keeps a high precision and loses recall; one that produces off-manifold junk loses
 * precision. Ties count as inside ({@code ≤}), as in the paper.
 *
 * <p>Distances are exact Euclidean distances, computed brute force in float64 over all pairs
 * (three {@code n × m} passes, rows spread over the common fork-join pool): the sets evaluated here
 * are a few thousand vectors at most, where this takes seconds and needs no approximate index.
 */
public final class PrecisionRecall {

    /** The paper's k. */
    public static final int DEFAULT_K = 3;

    private PrecisionRecall() {}

    /** Precision and recall of one generated set against one real set, with the k used and the set sizes. */
    public record Result(double precision, double recall, int k, int realCount, int generatedCount) {}

    /** Precision and recall with k = 3 for {@code [n][dim]} feature vectors. */
    public static Result compute(double[][] real, double[][] generated) {
        return compute(real, generated, DEFAULT_K);
    }

    /** Precision and recall with the given k for {@code [n][dim]} feature vectors. */
    public static Result compute(double[][] real, double[][] generated, int k) {
        Objects.requireNonNull(real, "real");
        Objects.requireNonNull(generated, "generated");
        if (real.length == 0 || generated.length == 0) throw new IllegalArgumentException("both sets need feature vectors, got " + real.length + " real and " + generated.length + " generated");
        int dim = Objects.requireNonNull(real[0], "real[0]").length;
        return compute(new Points(flatten(real, dim, "real"), dim), new Points(flatten(generated, dim, "generated"), dim), k);
    }

    /** Precision and recall with the given k for {@code dim}-dimensional vectors stored row after row. */
    public static Result compute(float[] real, float[] generated, int dim, int k) {
        Objects.requireNonNull(real, "real");
        Objects.requireNonNull(generated, "generated");
        if (dim < 1) throw new IllegalArgumentException("dim must be >= 1, got " + dim);
        return compute(new Points(widen(real, dim, "real"), dim), new Points(widen(generated, dim, "generated"), dim), k);
    }

    private static Result compute(Points real, Points generated, int k) {
        if (k < 1) throw new IllegalArgumentException("k must be >= 1, got " + k);
        if (real.n <= k || generated.n <= k) {
            throw new IllegalArgumentException("k = " + k + " needs more than k vectors in each set, got " + real.n + " real and " + generated.n + " generated");
        }
        double[] realRadii = kthNeighbourDistances(real, k);
        double[] generatedRadii = kthNeighbourDistances(generated, k);
        double precision = coverage(generated, real, realRadii);
        double recall = coverage(real, generated, generatedRadii);
        return new Result(precision, recall, k, real.n, generated.n);
    }

    /** Row-major vectors of one set. */
    private record Points(double[] x, int dim, int n) {
        Points(double[] x, int dim) { this(x, dim, x.length / dim); }

        double distance2(int i, Points other, int j) {
            double s = 0;
            int a = i * dim, b = j * dim;
            for (int t = 0; t < dim; t++) {
                double d = x[a + t] - other.x[b + t];
                s += d * d;
            }
            return s;
        }
    }

    /** The squared distance from each vector to its k-th nearest other vector of the same set. */
    static double[] kthNeighbourDistances(Points p, int k) {
        double[] radii = new double[p.n];
        IntStream.range(0, p.n).parallel().forEach(i -> {
            // the k smallest distances so far, ascending; insertion keeps it O(n k)
            double[] best = new double[k];
            java.util.Arrays.fill(best, Double.POSITIVE_INFINITY);
            for (int j = 0; j < p.n; j++) {
                if (j == i) continue;
                double d = p.distance2(i, p, j);
                if (d >= best[k - 1]) continue;
                int at = k - 1;
                while (at > 0 && best[at - 1] > d) {
                    best[at] = best[at - 1];
                    at--;
                }
                best[at] = d;
            }
            radii[i] = best[k - 1];
        });
        return radii;
    }

    /** The fraction of {@code query} vectors within the (squared) radius of at least one {@code ref} vector. */
    static double coverage(Points query, Points ref, double[] refRadii2) {
        long inside = IntStream.range(0, query.n).parallel().filter(i -> {
            for (int j = 0; j < ref.n; j++) if (query.distance2(i, ref, j) <= refRadii2[j]) return true;
            return false;
        }).count();
        return (double) inside / query.n;
    }

    private static double[] flatten(double[][] rows, int dim, String what) {
        if (dim == 0) throw new IllegalArgumentException(what + " feature vectors are empty");
        double[] x = new double[Math.multiplyExact(rows.length, dim)];
        for (int i = 0; i < rows.length; i++) {
            double[] row = Objects.requireNonNull(rows[i], what + "[" + i + "]");
            if (row.length != dim) throw new IllegalArgumentException(what + " vector " + i + " has " + row.length + " dimensions, expected " + dim);
            for (int t = 0; t < dim; t++) {
                if (!Double.isFinite(row[t])) throw new IllegalArgumentException(what + " vector " + i + " has " + row[t] + " at " + t);
                x[i * dim + t] = row[t];
            }
        }
        return x;
    }

    private static double[] widen(float[] values, int dim, String what) {
        if (values.length % dim != 0) throw new IllegalArgumentException(what + ": " + values.length + " values are not a whole number of " + dim + "-dimensional vectors");
        if (values.length == 0) throw new IllegalArgumentException(what + " set is empty");
        double[] x = new double[values.length];
        for (int k = 0; k < values.length; k++) {
            if (!Float.isFinite(values[k])) throw new IllegalArgumentException(what + " vector " + k / dim + " has " + values[k] + " at " + k % dim);
            x[k] = values[k];
        }
        return x;
    }
}
