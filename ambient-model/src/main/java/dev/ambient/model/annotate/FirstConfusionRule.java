package dev.ambient.model.annotate;

/**
 * The noise classifier's decision rule (spec §1.6): average P(corrupted) over the trials at each
 * grid sigma (sorted ascending), smooth along the grid with an exponential moving average of span
 * W ({@code α = 2/(W+1)}, {@code s_0 = p̄_0}, {@code s_k = (1−α)·s_{k−1} + α·p̄_k}, not bias
 * corrected), and take as σ_min the first grid sigma where {@code s_k < 0.5 + ε}: the classifier
 * can no longer tell the noisy corrupted image from noisy clean ones. If it never gets confused,
 * σ_min is the largest grid sigma. The reference's training defaults are W = 32, ε = 0.05.
 */
public record FirstConfusionRule(double emaSpan, double epsilon) {

    public static final FirstConfusionRule DEFAULT = new FirstConfusionRule(32, 0.05);

    public FirstConfusionRule {
        if (!(emaSpan >= 1) || Double.isInfinite(emaSpan)) throw new IllegalArgumentException("EMA span must be >= 1, got " + emaSpan);
        if (!(epsilon >= 0 && epsilon < 0.5)) throw new IllegalArgumentException("epsilon must be in [0, 0.5), got " + epsilon);
    }

    /** σ_min of a trajectory evaluated on {@code sortedSigmas} (ascending, one per trajectory row). */
    public double sigmaMin(Annotation.Trajectory trajectory, double[] sortedSigmas) {
        int k = trajectory.sigmaCount();
        if (k != sortedSigmas.length) {
            throw new IllegalArgumentException("trajectory of " + trajectory.filename() + " has " + k
                    + " sigmas but the grid has " + sortedSigmas.length);
        }
        double alpha = 2 / (emaSpan + 1);
        double s = trajectory.mean(0);
        for (int i = 0; i < k; i++) {
            if (i > 0) {
                if (!(sortedSigmas[i] >= sortedSigmas[i - 1])) throw new IllegalArgumentException("sigma grid is not sorted ascending at " + i);
                s = (1 - alpha) * s + alpha * trajectory.mean(i);
            }
            if (s < 0.5 + epsilon) return sortedSigmas[i];
        }
        return sortedSigmas[k - 1];
    }
}
