package dev.ambient.model.sample;

import dev.ambient.kernels.Tensor;
import dev.ambient.model.nn.StepContext;
import dev.ambient.model.unet.Edm2Model;

import java.util.Arrays;

/**
 * Images from a trained {@link Edm2Model} with the EDM Heun sampler: one image per seed, each
 * depending only on its seed (and label), whatever batch it is drawn in.
 */
public final class Generator {

    private Generator() {}

    /**
     * Samples {@code seeds.length} images, {@code batch} at a time; returns them NHWC, one row of
     * {@code R * R * C} per seed, in the model's data range (about [-1, 1] for images).
     *
     * @param labels one class per seed for a conditional network, or null
     */
    public static float[] generate(Edm2Model model, HeunSampler sampler, long[] seeds, int[] labels, int batch) {
        if (batch <= 0) throw new IllegalArgumentException("batch = " + batch + " must be positive");
        if (labels != null && labels.length != seeds.length) {
            throw new IllegalArgumentException(labels.length + " labels for " + seeds.length + " seeds");
        }
        var c = model.config();
        int size = c.imgResolution() * c.imgResolution() * c.imgChannels();
        float[] out = new float[Math.multiplyExact(seeds.length, size)];
        model.prepare(false);
        for (int start = 0; start < seeds.length; start += batch) {
            int n = Math.min(batch, seeds.length - start);
            long[] chunk = Arrays.copyOfRange(seeds, start, start + n);
            int[] chunkLabels = labels == null ? null : Arrays.copyOfRange(labels, start, start + n);
            double[] x = HeunSampler.noise(chunk, size);
            try (Tensor in = Tensor.allocate(model.device(), n, c.imgResolution(), c.imgResolution(), c.imgChannels())) {
                float[] staging = new float[n * size];
                HeunSampler.Denoiser denoiser = (state, rows, sigma, denoised) -> {
                    for (int i = 0; i < staging.length; i++) staging[i] = (float) state[i];
                    in.copyFrom(staging);
                    double[] sigmas = new double[rows];
                    Arrays.fill(sigmas, sigma);
                    StepContext ctx = new StepContext(model.pool(), false, 0, false, model.ones(rows));
                    Edm2Model.Output o = model.forward(in, sigmas, chunkLabels, false, ctx);
                    o.denoised().copyTo(staging);
                    model.pool().give(o.denoised());
                    for (int i = 0; i < staging.length; i++) denoised[i] = staging[i];
                };
                sampler.sample(denoiser, x, n);
            }
            for (int i = 0; i < n * size; i++) out[start * size + i] = (float) x[i];
        }
        return out;
    }
}
