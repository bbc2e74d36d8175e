package dev.ambient.model.train;

import dev.ambient.kernels.Tensor;

import java.util.Arrays;

/**
 * One micro-batch of a training step: the samples {@code images [N, R, R, C]} (clean, or as
 * corrupted as they come), this step's noise level {@code sigmaT} per sample, the level of each
 * sample's own fixed noise {@code sigmaTn} (0 for samples used as clean; Ambient-o's sigma_min
 * otherwise, below sigmaT), the samples' dataset indices (which key their fixed noise), optional
 * class labels and an optional per-pixel loss mask {@code [N, R, R]}.
 */
public record TrainingBatch(Tensor images, double[] sigmaT, double[] sigmaTn, long[] sampleIds, int[] labels, Tensor mask) {

    public TrainingBatch {
        if (images == null || images.rank() != 4) throw new IllegalArgumentException("images must be [N, R, R, C]");
        int n = Math.toIntExact(images.dim(0));
        if (sigmaT == null || sigmaT.length != n) throw new IllegalArgumentException("sigmaT needs " + n + " values");
        if (sigmaTn == null || sigmaTn.length != n) throw new IllegalArgumentException("sigmaTn needs " + n + " values");
        if (sampleIds == null || sampleIds.length != n) throw new IllegalArgumentException("sampleIds needs " + n + " values");
        if (labels != null && labels.length != n) throw new IllegalArgumentException("labels needs " + n + " values");
        for (int i = 0; i < n; i++) {
            if (!(sigmaT[i] > 0) || !Double.isFinite(sigmaT[i])) {
                throw new IllegalArgumentException("sigmaT[" + i + "] = " + sigmaT[i] + " must be positive and finite");
            }
            if (!(sigmaTn[i] >= 0 && sigmaTn[i] < sigmaT[i])) {
                throw new IllegalArgumentException("sigmaTn[" + i + "] = " + sigmaTn[i] + " must be in [0, sigmaT = " + sigmaT[i] + ")");
            }
        }
        sigmaT = sigmaT.clone();
        sigmaTn = sigmaTn.clone();
        sampleIds = sampleIds.clone();
        labels = labels == null ? null : labels.clone();
    }

    /** Plain EDM training: every sample clean (sigma_tn = 0), ids 0..N-1, no labels, no mask. */
    public static TrainingBatch clean(Tensor images, double[] sigmaT) {
        long[] ids = new long[sigmaT.length];
        Arrays.setAll(ids, i -> i);
        return new TrainingBatch(images, sigmaT, new double[sigmaT.length], ids, null, null);
    }

    public int size() {
        return sigmaT.length;
    }
}
