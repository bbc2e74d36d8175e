package dev.ambient.kernels;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The training pair and the loss of Ambient Diffusion Omni, fused into one pass each.
 *
 * <p>Noising, for each sample {@code i} of a batch {@code x [N, ...]}:
 * <pre>
 *   x_tn = x + sigma_tn[i] z_i                                z_i: the sample's fixed noise
 *   x_t  = x_tn + sqrt(sigma_t[i]^2 - sigma_tn[i]^2) eps_i    eps_i: fresh noise of this step
 * </pre>
 * where {@code z_i} is Philox 4x32-10 normal stream {@code sampleIds[i]} under {@code fixedSeed}
 * (so a sample keeps its noise realisation wherever it sits in a batch) and {@code eps_i} is
 * stream {@code i} under {@code stepSeed}; element {@code e} of a stream is lane {@code e % 4}
 * of Philox group {@code e / 4} (native/cpu/philox.h).
 *
 * <p>Loss, with {@code r = sigma_tn^2 / sigma_t^2},
 * {@code w = (sigma_t^2 + sigma_data^2) / (sigma_t sigma_data)^2} and {@code m} the mask of each
 * pixel (1 without a mask):
 * <pre>
 *   x_tn_pred = r x_t + (1 - r) x0_pred
 *   L_i = w / (1 - r)^2 * sum_e m_e (x_tn_pred - x_tn)^2            (sigma_tn = 0, m = 1: EDM)
 *   with logvar u:  L_i = L_i / exp(u_i) + u_i * sum_e m_e          (EDM2's uncertainty)
 *   gradX0 = scale dL_i / dx0_pred = scale * 2 w / (1 - r) * m (x_tn_pred - x_tn) / exp(u_i)
 *   gradLogvar[i] = scale dL_i / du_i = scale * (sum_e m_e - L_i^(without u) / exp(u_i))
 * </pre>
 * Sums accumulate in double in a fixed order, so the results do not depend on the thread count.
 */
public final class AmbientLoss {

    private AmbientLoss() {}

    /**
     * Draws the training pair of a batch; modifies {@code xTn} and {@code xT} (same shape as x,
     * not overlapping any input or each other).
     *
     * @param x          clean (or already corrupted) samples {@code [N, ...]}
     * @param sigmaT     N noise levels of this step, each positive
     * @param sigmaTn    N noise levels of the samples' own noise, {@code 0 <= sigmaTn <= sigmaT}
     * @param sampleIds  N dataset indices: the stream of each sample's fixed noise
     */
    public static void noising(Tensor x, Tensor sigmaT, Tensor sigmaTn, long[] sampleIds, long fixedSeed,
            long stepSeed, Tensor xTn, Tensor xT) {
        String f = "ambient_ambient_noising";
        Device device = Checks.sameDevice(f, "x", x, "sigmaT", sigmaT, "sigmaTn", sigmaTn, "xTn", xTn, "xT", xT);
        if (sampleIds == null) throw new IllegalArgumentException(f + ": sampleIds is null");
        long n = x.dim(0), size = n == 0 ? 0 : x.size() / n;
        perSample(f, "sigmaT", sigmaT, n);
        perSample(f, "sigmaTn", sigmaTn, n);
        if (sampleIds.length != n) {
            throw new IllegalArgumentException(f + ": sampleIds has " + sampleIds.length + " ids, x " + Arrays.toString(x.shape())
                    + " has N = " + n + " samples");
        }
        Checks.sameShape(f, "x", x, "xTn", xTn);
        Checks.sameShape(f, "x", x, "xT", xT);
        Checks.distinct(f, "xTn", xTn, "xT", xT);
        for (Tensor out : new Tensor[] {xTn, xT}) {
            String name = out == xTn ? "xTn" : "xT";
            Checks.distinct(f, name, out, "x", x);
            Checks.distinct(f, name, out, "sigmaT", sigmaT);
            Checks.distinct(f, name, out, "sigmaTn", sigmaTn);
        }
        Checks.Shapes shapes = Checks.shapes("x", x, "sigmaT", sigmaT, "sigmaTn", sigmaTn, "xTn", xTn, "xT", xT);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ids = n == 0 ? MemorySegment.NULL : arena.allocateFrom(ValueLayout.JAVA_LONG, sampleIds);
            device.activate();
            device.backend().check(device.backend().api.ambient_ambient_noising(n, size, x.segment(), sigmaT.segment(),
                    sigmaTn.segment(), ids, fixedSeed, stepSeed, xTn.segment(), xT.segment()), f, shapes);
        }
    }

    /**
     * The Ambient loss per sample and its gradients; modifies and returns {@code loss [N]}, and
     * modifies {@code gradX0} (shape of x0Pred) and {@code gradLogvar [N]} when given. Outputs
     * must not overlap the inputs or each other. Channels are the last dimension of x0Pred.
     *
     * @param logvar     N learned log-variances u, or null (then gradLogvar must be null too)
     * @param mask       per-pixel weights {@code [N, H, W]} or {@code [N, H, W, 1]}, or null for all ones
     * @param sigmaData  the data's standard deviation (EDM: 0.5), positive
     * @param scale      factor of the gradients (loss scaling, 1 / batch size), not of the loss
     * @param gradX0     receives scale dL/dx0_pred, or null for the loss alone
     * @throws AmbientException naming the sample when {@code sigmaTn >= sigmaT} somewhere
     */
    public static Tensor loss(Tensor x0Pred, Tensor xT, Tensor xTn, Tensor sigmaT, Tensor sigmaTn, Tensor logvar,
            Tensor mask, float sigmaData, float scale, Tensor loss, Tensor gradX0, Tensor gradLogvar) {
        String f = "ambient_ambient_loss";
        List<Object> named = new ArrayList<>(List.of("x0Pred", x0Pred, "xT", xT, "xTn", xTn, "sigmaT", sigmaT,
                "sigmaTn", sigmaTn, "loss", loss));
        if (logvar != null) named.addAll(List.of("logvar", logvar));
        if (mask != null) named.addAll(List.of("mask", mask));
        if (gradX0 != null) named.addAll(List.of("gradX0", gradX0));
        if (gradLogvar != null) named.addAll(List.of("gradLogvar", gradLogvar));
        Object[] all = named.toArray();
        Device device = Checks.sameDevice(f, all);
        if ((logvar == null) != (gradLogvar == null)) {
            throw new IllegalArgumentException(f + ": logvar and gradLogvar must be given together (logvar "
                    + (logvar == null ? "null" : "given") + ", gradLogvar " + (gradLogvar == null ? "null" : "given") + ")");
        }
        if (x0Pred.rank() < 2) {
            throw new IllegalArgumentException(f + ": x0Pred " + Arrays.toString(x0Pred.shape())
                    + " must be [N, ..., C] (at least two dimensions)");
        }
        if (!(sigmaData > 0) || !Float.isFinite(sigmaData)) {
            throw new IllegalArgumentException(f + ": sigmaData = " + sigmaData + " must be positive and finite");
        }
        Checks.finite(f, "scale", scale);
        Checks.sameShape(f, "x0Pred", x0Pred, "xT", xT);
        Checks.sameShape(f, "x0Pred", x0Pred, "xTn", xTn);
        long n = x0Pred.dim(0), channels = x0Pred.dim(-1), size = n == 0 ? 0 : x0Pred.size() / n;
        perSample(f, "sigmaT", sigmaT, n);
        perSample(f, "sigmaTn", sigmaTn, n);
        perSample(f, "loss", loss, n);
        if (logvar != null) {
            perSample(f, "logvar", logvar, n);
            perSample(f, "gradLogvar", gradLogvar, n);
        }
        if (gradX0 != null) Checks.sameShape(f, "x0Pred", x0Pred, "gradX0", gradX0);
        if (mask != null) checkMask(f, x0Pred, mask);
        // every output against every other tensor
        for (int a = 0; a < all.length; a += 2) {
            String nameA = (String) all[a];
            if (!nameA.equals("loss") && !nameA.equals("gradX0") && !nameA.equals("gradLogvar")) continue;
            for (int b = 0; b < all.length; b += 2) {
                if (a != b) Checks.distinct(f, nameA, (Tensor) all[a + 1], (String) all[b], (Tensor) all[b + 1]);
            }
        }
        device.activate();
        device.backend().check(device.backend().api.ambient_ambient_loss(n, size, channels, sigmaData,
                x0Pred.segment(), xT.segment(), xTn.segment(), sigmaT.segment(), sigmaTn.segment(), segmentOrNull(logvar),
                segmentOrNull(mask), scale, loss.segment(), segmentOrNull(gradX0), segmentOrNull(gradLogvar)), f,
                Checks.shapes(all).and("sigmaData", sigmaData, "scale", scale));
        return loss;
    }

    /** The loss and its gradients with a newly allocated {@code loss [N]} (closed by the caller). */
    public static Tensor loss(Tensor x0Pred, Tensor xT, Tensor xTn, Tensor sigmaT, Tensor sigmaTn, Tensor logvar,
            Tensor mask, float sigmaData, float scale, Tensor gradX0, Tensor gradLogvar) {
        if (x0Pred == null) throw new IllegalArgumentException("ambient_ambient_loss: x0Pred is null");
        Tensor out = Tensor.allocate(x0Pred.device(), x0Pred.dim(0));
        try {
            return loss(x0Pred, xT, xTn, sigmaT, sigmaTn, logvar, mask, sigmaData, scale, out, gradX0, gradLogvar);
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
    }

    static MemorySegment segmentOrNull(Tensor t) {
        return t == null || t.size() == 0 ? MemorySegment.NULL : t.segment();
    }

    /** One value per sample: exactly n elements, [N] (or [N, 1]). */
    static void perSample(String f, String name, Tensor t, long n) {
        if (t.size() != n || t.dim(0) != n) {
            throw new IllegalArgumentException(f + ": " + name + " " + Arrays.toString(t.shape()) + " must hold one value per sample, ["
                    + n + "]");
        }
    }

    /** The mask is x0Pred's shape without channels, or with a channel dimension of 1. */
    private static void checkMask(String f, Tensor x0Pred, Tensor mask) {
        long[] x = x0Pred.shape(), m = mask.shape();
        long[] pixels = Arrays.copyOf(x, x.length - 1);
        long[] withOne = x.clone();
        withOne[x.length - 1] = 1;
        if (!Arrays.equals(m, pixels) && !Arrays.equals(m, withOne)) {
            throw new IllegalArgumentException(f + ": mask " + Arrays.toString(m) + " must be " + Arrays.toString(pixels)
                    + " or " + Arrays.toString(withOne) + " for x0Pred " + Arrays.toString(x));
        }
    }
}
