package dev.ambient.model.train;

import dev.ambient.model.annotate.AnnotationTable;
import java.util.Objects;

/**
 * Ambient-o's sample selection (DESIGN.md, "The method in one page"; spec §1.10–1.11): draw the
 * noise level first, then take the next sample that may be used at it.
 *
 * <p>Each {@link #next()} draws {@code σ_t = exp(P_mean + P_std·n)}, {@code n ~ N(0, 1)}, and walks
 * a stream of sample indices until it meets a sample {@code i} that is usable at σ_t:
 * <ul>
 * <li>high-noise rule: {@code σ_t > b·σ_min,i}, with the buffer {@code b = sqrt(1 + 1/(s_max − 1))}
 * that keeps the ambient factor {@code σ_t²/(σ_t² − σ_tn²)} below {@code s_max} (the reference's
 * scripts use s_max = 4, so b = 2/√3; s_max = ∞ means b = 1, no buffer);
 * <li>low-noise rule: {@code σ_t < σ_max,i}.
 * </ul>
 * Clean samples, (0, 0), are usable at every σ. The stream is a seeded permutation of all
 * indices that is re-shuffled as it is walked: after visiting position p, the entry there is
 * swapped with a uniformly chosen one among the {@code W} positions ending at p (W = half the
 * dataset by default), as the reference's pixel sampler does, so there are no epoch boundaries.
 *
 * <p>The trust level: by default the paper's, {@code σ_tn = σ_min} when the sample is used by the
 * high-noise rule and 0 when it is used by the low-noise rule (as a clean target seen at low
 * noise). With b = 1 this is "σ_min if σ_min < σ_t else 0"; with b > 1 it differs from that only
 * for a sample usable by σ_max at a σ_t between σ_min and b·σ_min, where "σ_min" would break the
 * s_max bound that the buffer exists for. {@link Config#releasedPixelTrust} gives the released
 * pixel code's {@code σ_tn = min(σ_min, σ_max)}, set to 0 when it exceeds σ_t (spec §1.11: with
 * the released annotations this makes σ_tn = 0 always, the plain EDM loss on the low-quality
 * image).
 *
 * <p>When no sample is usable at the drawn σ (the annotations leave a band of noise levels
 * uncovered: σ between the largest σ_max and the smallest b·σ_min), σ is drawn again; the σ
 * distribution of training is then the log-normal restricted to the covered levels (it is
 * exactly log-normal whenever some sample is clean). A walk of a whole dataset's length without
 * a usable sample also redraws. After {@link Config#maxRedraws} redraws in a row, {@code next()}
 * fails with an {@link IllegalStateException} that names the uncovered band.
 *
 * <p>Everything is deterministic from the seed, the annotations and the configuration, and the
 * position can be saved and restored ({@link #state()}, {@link #restore}) for exact resume.
 * Not thread-safe: one sampler feeds one training loop.
 */
public final class SigmaFirstSampler {

    /**
     * @param pMean mean of ln σ (EDM2 −0.4, EDM −1.2)
     * @param pStd std of ln σ (EDM2 1.0, EDM 1.2)
     * @param sMax bound on the ambient factor, > 1; {@code Double.POSITIVE_INFINITY} for no buffer
     * @param windowFraction the re-shuffle window as a fraction of the dataset (reference: 0.5); 0 keeps the first permutation
     * @param releasedPixelTrust use the released pixel code's σ_tn = min(σ_min, σ_max) instead of the paper's
     * @param maxRedraws how many σ in a row may find no usable sample before {@link #next()} fails
     */
    public record Config(double pMean, double pStd, double sMax, double windowFraction, boolean releasedPixelTrust, int maxRedraws) {

        /** EDM's noise distribution (−1.2, 1.2), the reference's pixel setting: s_max = 4, window ½. */
        public static Config edm() { return new Config(-1.2, 1.2, 4, 0.5, false, 10_000); }

        /** EDM2's noise distribution (−0.4, 1.0), with the same buffer and window. */
        public static Config edm2() { return new Config(-0.4, 1.0, 4, 0.5, false, 10_000); }

        public Config {
            if (!Double.isFinite(pMean) || !(pStd > 0) || Double.isInfinite(pStd)) {
                throw new IllegalArgumentException("need a finite P_mean and a positive finite P_std, got " + pMean + ", " + pStd);
            }
            if (!(sMax > 1)) throw new IllegalArgumentException("s_max must be > 1 (or infinite for no buffer), got " + sMax);
            if (!(windowFraction >= 0 && windowFraction <= 1)) throw new IllegalArgumentException("window fraction must be in [0, 1], got " + windowFraction);
            if (maxRedraws < 1) throw new IllegalArgumentException("maxRedraws must be >= 1, got " + maxRedraws);
        }

        /** The buffer factor b = sqrt(1 + 1/(s_max − 1)); 1 without a buffer. */
        public double buffer() {
            return Double.isInfinite(sMax) ? 1 : Math.sqrt(1 + 1 / (sMax - 1));
        }

        public Config withReleasedPixelTrust(boolean released) {
            return new Config(pMean, pStd, sMax, windowFraction, released, maxRedraws);
        }

        public Config withNoise(double mean, double std) {
            return new Config(mean, std, sMax, windowFraction, releasedPixelTrust, maxRedraws);
        }

        public Config withSMax(double s) {
            return new Config(pMean, pStd, s, windowFraction, releasedPixelTrust, maxRedraws);
        }

        public Config withMaxRedraws(int n) {
            return new Config(pMean, pStd, sMax, windowFraction, releasedPixelTrust, n);
        }
    }

    /**
     * One selection: the dataset index, its noise level σ_t and trust level σ_tn, and whether it
     * was admitted by the high-noise rule (else by the low-noise rule).
     */
    public record Draw(int index, double sigma, double sigmaTn, boolean highNoise) {}

    /** The sampler's position, enough to continue exactly where it was. */
    public record State(long rng, long position, int[] order, long draws, long redraws) {
        public State {
            order = order.clone();
        }
        @Override public int[] order() { return order.clone(); }
    }

    private final double[] sigmaMin, sigmaMax;
    private final Config config;
    private final double b;
    private final int window;
    /** Nothing is usable for σ in [deadLow, deadHigh] (an empty band when deadLow > deadHigh). */
    private final double deadLow, deadHigh;

    private final int[] order;
    private long rng;
    private long position;
    private long draws, redraws;

    /** A sampler over the samples of {@code table}. */
    public SigmaFirstSampler(AnnotationTable table, Config config, long seed) {
        this(table.sigmaMin(), table.sigmaMax(), config, seed);
    }

    /** A sampler over per-sample bounds (copied). */
    public SigmaFirstSampler(double[] sigmaMin, double[] sigmaMax, Config config, long seed) {
        this.config = Objects.requireNonNull(config, "config");
        new AnnotationTable(sigmaMin, sigmaMax, 0); // validates the bounds
        if (sigmaMin.length == 0) throw new IllegalArgumentException("no samples to draw from");
        this.sigmaMin = sigmaMin.clone();
        this.sigmaMax = sigmaMax.clone();
        this.b = config.buffer();
        int n = sigmaMin.length;
        this.window = (int) Math.round(config.windowFraction() * n);
        double minHigh = Double.POSITIVE_INFINITY, maxLow = 0;
        for (int i = 0; i < n; i++) {
            minHigh = Math.min(minHigh, b * sigmaMin[i]);
            maxLow = Math.max(maxLow, sigmaMax[i]);
        }
        this.deadLow = maxLow;
        this.deadHigh = minHigh;
        this.rng = seed;
        this.order = new int[n];
        for (int i = 0; i < n; i++) order[i] = i;
        for (int i = n - 1; i > 0; i--) swap(i, uniformInt(i + 1));
    }

    public Config config() { return config; }

    public int size() { return order.length; }

    /** The buffer factor b in use. */
    public double buffer() { return b; }

    /** True when sample {@code i} may be used at noise level {@code sigma}. */
    public boolean usable(int i, double sigma) {
        return sigma > b * sigmaMin[i] || sigma < sigmaMax[i];
    }

    /** The trust level σ_tn of sample {@code i} used at {@code sigma} (which must be usable). */
    public double trustLevel(int i, double sigma) {
        if (config.releasedPixelTrust()) {
            double t = Math.min(sigmaMin[i], sigmaMax[i]);
            return t > sigma ? 0 : t;
        }
        return sigma > b * sigmaMin[i] ? sigmaMin[i] : 0;
    }

    /** The next selection. */
    public Draw next() {
        int n = order.length;
        int failed = 0;
        while (true) {
            double sigma = Math.exp(config.pMean() + config.pStd() * gaussian());
            if (!(sigma >= deadLow && sigma <= deadHigh)) {
                for (int scanned = 0; scanned < n; scanned++) {
                    int p = (int) (position % n);
                    int candidate = order[p];
                    if (window >= 2) swap(p, Math.floorMod(p - uniformInt(window), n));
                    position++;
                    if (usable(candidate, sigma)) {
                        draws++;
                        return new Draw(candidate, sigma, trustLevel(candidate, sigma), sigma > b * sigmaMin[candidate]);
                    }
                }
            }
            redraws++;
            if (++failed >= config.maxRedraws()) {
                throw new IllegalStateException("no sample is usable at " + failed + " noise levels drawn in a row from ln(sigma) ~ N("
                        + config.pMean() + ", " + config.pStd() + "^2): the annotations cover no sigma in [" + deadLow + ", " + deadHigh
                        + "] (largest sigma_max " + deadLow + ", smallest b*sigma_min " + deadHigh + " with b = " + b
                        + "), which holds nearly all of that distribution; annotate some samples as clean (0, 0) or lower sigma_min");
            }
        }
    }

    /** The next {@code count} selections. */
    public Draw[] next(int count) {
        Draw[] out = new Draw[count];
        for (int k = 0; k < count; k++) out[k] = next();
        return out;
    }

    /** Selections made so far. */
    public long draws() { return draws; }

    /** Noise levels drawn again because no sample was usable at them. */
    public long redraws() { return redraws; }

    public State state() {
        return new State(rng, position, order, draws, redraws);
    }

    /** Continues from a saved position; the sampler must have been built over the same samples. */
    public void restore(State state) {
        int[] saved = state.order();
        if (saved.length != order.length) throw new IllegalArgumentException("state is for " + saved.length + " samples, not " + order.length);
        boolean[] seen = new boolean[saved.length];
        for (int v : saved) {
            if (v < 0 || v >= saved.length || seen[v]) throw new IllegalArgumentException("state's order is not a permutation");
            seen[v] = true;
        }
        if (state.position() < 0) throw new IllegalArgumentException("negative position");
        System.arraycopy(saved, 0, order, 0, saved.length);
        rng = state.rng();
        position = state.position();
        draws = state.draws();
        redraws = state.redraws();
    }

    private void swap(int i, int j) {
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }

    // The sampler's own generator (SplitMix64), so its whole state is one long that a checkpoint can hold.

    private long nextLong() {
        long z = (rng += 0x9E3779B97F4A7C15L);
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** Uniform in (0, 1). */
    private double uniform() {
        return ((nextLong() >>> 11) + 0.5) * 0x1.0p-53;
    }

    /** Uniform in [0, bound) (multiply-shift; the bias is below 2⁻³² for the sizes here). */
    private int uniformInt(int bound) {
        return (int) (((nextLong() >>> 32) * bound) >>> 32);
    }

    /** Standard normal by Box–Muller, one value per two uniforms, so no cached second value is state. */
    private double gaussian() {
        return Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
    }
}
