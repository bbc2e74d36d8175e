package dev.ambient.kernels;

import java.util.Arrays;

/**
 * The embedding path of EDM2's UNet:
 * <ul>
 *   <li>MP Fourier features of one scalar per sample (the noise level's {@code c_noise}):
 *       {@code y[i, k] = sqrt(2) cos(x[i] freqs[k] + phases[k])}, x {@code [N]}, freqs and
 *       phases {@code [C]}, y {@code [N, C]};</li>
 *   <li>channel scaling, each block's embedding modulation:
 *       {@code y[i, p, c] = x[i, p, c] (1 + s[i, c])}, x and y {@code [N, H, W, C]} or
 *       {@code [N, P, C]}, s {@code [N, C]}.</li>
 * </ul>
 */
public final class Embedding {

    /** Stream of the seed that {@link #mpFourierBuffers} draws the frequencies from. */
    public static final long FOURIER_FREQUENCY_STREAM = 0;
    /** Stream of the seed that {@link #mpFourierBuffers} draws the phases from. */
    public static final long FOURIER_PHASE_STREAM = 1;

    private Embedding() {}

    // ---- MP Fourier -------------------------------------------------------------------------

    /** The fixed buffers of an MPFourier layer; closing frees both. */
    public record FourierBuffers(Tensor freqs, Tensor phases) implements AutoCloseable {
        @Override
        public void close() {
            freqs.close();
            phases.close();
        }
    }

    /**
     * Makes MPFourier buffers the way EDM2 defines them, from {@link RandomNumbers}:
     * {@code freqs[k] = 2 pi bandwidth z_k} with {@code z} the normals of stream
     * {@link #FOURIER_FREQUENCY_STREAM} of {@code seed}, and {@code phases[k] = 2 pi u_k} with
     * {@code u} the uniforms of stream {@link #FOURIER_PHASE_STREAM}, both from offset 0, each
     * product rounded once to float.
     *
     * <p>These are not EDM2's numbers: EDM2 draws its buffers from torch's generator at
     * construction and stores them in the checkpoint ({@code emb_fourier.freqs},
     * {@code emb_fourier.phases}), so a model loaded from an EDM2 checkpoint must use the
     * buffers it carries; this helper is for models trained here from scratch.
     */
    public static FourierBuffers mpFourierBuffers(Device device, int channels, long seed, float bandwidth) {
        if (device == null) throw new IllegalArgumentException("mpFourierBuffers: device is null");
        if (channels < 0) throw new IllegalArgumentException("mpFourierBuffers: channels = " + channels + " is negative");
        Checks.finite("mpFourierBuffers", "bandwidth", bandwidth);
        float[] z, u;
        try (Tensor tz = RandomNumbers.normal(device, seed, FOURIER_FREQUENCY_STREAM, 0, channels);
                Tensor tu = RandomNumbers.uniform(device, seed, FOURIER_PHASE_STREAM, 0, channels)) {
            z = tz.toArray();
            u = tu.toArray();
        }
        float[] freqs = new float[channels], phases = new float[channels];
        for (int k = 0; k < channels; k++) {
            freqs[k] = (float) (2 * Math.PI * bandwidth * z[k]);
            phases[k] = (float) (2 * Math.PI * u[k]);
        }
        Tensor tf = Tensor.of(device, freqs, channels);
        try {
            return new FourierBuffers(tf, Tensor.of(device, phases, channels));
        } catch (RuntimeException e) {
            tf.close();
            throw e;
        }
    }

    /** {@link #mpFourierBuffers(Device, int, long, float)} with EDM2's bandwidth 1. */
    public static FourierBuffers mpFourierBuffers(Device device, int channels, long seed) {
        return mpFourierBuffers(device, channels, seed, 1f);
    }

    /**
     * {@code y[i, k] = sqrt(2) cos(x[i] freqs[k] + phases[k])} for x {@code [N]}, freqs and
     * phases {@code [C]}, y {@code [N, C]}; modifies and returns y, which must not overlap the
     * inputs.
     */
    public static Tensor mpFourier(Tensor x, Tensor freqs, Tensor phases, Tensor y) {
        String f = "ambient_mp_fourier_forward";
        Device device = Checks.sameDevice(f, "x", x, "freqs", freqs, "phases", phases, "y", y);
        Checks.Shapes shapes = Checks.shapes("x", x, "freqs", freqs, "phases", phases, "y", y);
        long n = fourierShapes(f, shapes, x, freqs, phases);
        long c = freqs.dim(0);
        if (!Arrays.equals(y.shape(), new long[] {n, c})) {
            throw new IllegalArgumentException(f + ": " + shapes + ": y must be [" + n + ", " + c + "]");
        }
        Checks.distinct(f, "y", y, "x", x);
        Checks.distinct(f, "y", y, "freqs", freqs);
        Checks.distinct(f, "y", y, "phases", phases);
        device.activate();
        device.backend().check(device.backend().api.ambient_mp_fourier_forward(n, c, x.segment(), freqs.segment(),
                phases.segment(), y.segment()), f, shapes);
        return y;
    }

    /** MP Fourier features into a new tensor {@code [N, C]}. */
    public static Tensor mpFourier(Tensor x, Tensor freqs, Tensor phases) {
        String f = "ambient_mp_fourier_forward";
        Checks.sameDevice(f, "x", x, "freqs", freqs, "phases", phases);
        long n = fourierShapes(f, Checks.shapes("x", x, "freqs", freqs, "phases", phases), x, freqs, phases);
        return MagnitudePreserving.intoNew(x.device(), new long[] {n, freqs.dim(0)}, y -> mpFourier(x, freqs, phases, y));
    }

    /**
     * Gradient with respect to x: {@code dx[i] = -sqrt(2) sum_k dy[i, k] freqs[k] sin(x[i] freqs[k] + phases[k])}
     * (freqs and phases are fixed buffers). Modifies and returns dx {@code [N]}, which must not
     * overlap the inputs.
     */
    public static Tensor mpFourierBackward(Tensor x, Tensor freqs, Tensor phases, Tensor dy, Tensor dx) {
        String f = "ambient_mp_fourier_backward";
        Device device = Checks.sameDevice(f, "x", x, "freqs", freqs, "phases", phases, "dy", dy, "dx", dx);
        Checks.Shapes shapes = Checks.shapes("x", x, "freqs", freqs, "phases", phases, "dy", dy, "dx", dx);
        long n = fourierShapes(f, shapes, x, freqs, phases);
        long c = freqs.dim(0);
        if (!Arrays.equals(dy.shape(), new long[] {n, c})) {
            throw new IllegalArgumentException(f + ": " + shapes + ": dy must be [" + n + ", " + c + "]");
        }
        Checks.sameShape(f, "x", x, "dx", dx);
        for (Object[] other : new Object[][] {{"x", x}, {"freqs", freqs}, {"phases", phases}, {"dy", dy}}) {
            Checks.distinct(f, "dx", dx, (String) other[0], (Tensor) other[1]);
        }
        device.activate();
        device.backend().check(device.backend().api.ambient_mp_fourier_backward(n, c, x.segment(), freqs.segment(),
                phases.segment(), dy.segment(), dx.segment()), f, shapes);
        return dx;
    }

    /** x [N], freqs [C], phases [C]; returns N. */
    private static long fourierShapes(String f, Checks.Shapes shapes, Tensor x, Tensor freqs, Tensor phases) {
        if (x.rank() != 1 || freqs.rank() != 1 || phases.rank() != 1 || freqs.dim(0) != phases.dim(0)) {
            throw new IllegalArgumentException(f + ": " + shapes + ": x must be [N], freqs and phases [C]");
        }
        return x.dim(0);
    }

    // ---- Channel scaling ----------------------------------------------------------------------

    /**
     * {@code y[i, p, c] = x[i, p, c] (1 + s[i, c])}: x and y {@code [N, ..., C]} (NHWC or
     * {@code [N, P, C]}), s {@code [N, C]}. Modifies and returns y, which may be x itself but
     * must not overlap s.
     */
    public static Tensor channelScale(Tensor x, Tensor s, Tensor y) {
        return scaleForward(false, x, s, y);
    }

    /**
     * {@code y = mp_silu(x (1 + s))} in one pass: channel scaling followed by EDM2's mp_silu,
     * as the block applies them, with the layouts and aliasing rules of
     * {@link #channelScale(Tensor, Tensor, Tensor)}. Modifies and returns y.
     */
    public static Tensor channelScaleSilu(Tensor x, Tensor s, Tensor y) {
        return scaleForward(true, x, s, y);
    }

    private static Tensor scaleForward(boolean silu, Tensor x, Tensor s, Tensor y) {
        String f = silu ? "ambient_channel_scale_silu_forward" : "ambient_channel_scale_forward";
        Device device = Checks.sameDevice(f, "x", x, "s", s, "y", y);
        Checks.Shapes shapes = Checks.shapes("x", x, "s", s, "y", y);
        long positions = scaleShapes(f, shapes, x, s);
        Checks.sameShape(f, "x", x, "y", y);
        Checks.identicalOrDistinct(f, "x", x, "y", y);
        Checks.distinct(f, "y", y, "s", s);
        device.activate();
        var api = device.backend().api;
        long n = x.dim(0), c = x.dim(-1);
        device.backend().check(silu
                ? api.ambient_channel_scale_silu_forward(n, positions, c, x.segment(), s.segment(), y.segment())
                : api.ambient_channel_scale_forward(n, positions, c, x.segment(), s.segment(), y.segment()), f, shapes);
        return y;
    }

    /** Channel scaling into a new tensor shaped like x. */
    public static Tensor channelScale(Tensor x, Tensor s) {
        return MagnitudePreserving.intoNew(x, y -> channelScale(x, s, y));
    }

    /**
     * Gradients of channel scaling: {@code dx = dy (1 + s)} and
     * {@code ds[i, c] = sum_p dy[i, p, c] x[i, p, c]}. Modifies dx (which may be dy) and ds
     * (overwritten); neither may overlap anything else.
     */
    public static void channelScaleBackward(Tensor x, Tensor s, Tensor dy, Tensor dx, Tensor ds) {
        scaleBackward(false, x, s, dy, dx, ds);
    }

    /**
     * Gradients of {@link #channelScaleSilu}: with {@code u = x (1 + s)} recomputed and
     * {@code g = dy mp_silu'(u)}, {@code dx = g (1 + s)} and {@code ds[i, c] = sum_p g x}.
     * Aliasing as in {@link #channelScaleBackward}.
     */
    public static void channelScaleSiluBackward(Tensor x, Tensor s, Tensor dy, Tensor dx, Tensor ds) {
        scaleBackward(true, x, s, dy, dx, ds);
    }

    private static void scaleBackward(boolean silu, Tensor x, Tensor s, Tensor dy, Tensor dx, Tensor ds) {
        String f = silu ? "ambient_channel_scale_silu_backward" : "ambient_channel_scale_backward";
        Device device = Checks.sameDevice(f, "x", x, "s", s, "dy", dy, "dx", dx, "ds", ds);
        Checks.Shapes shapes = Checks.shapes("x", x, "s", s, "dy", dy, "dx", dx, "ds", ds);
        long positions = scaleShapes(f, shapes, x, s);
        Checks.sameShape(f, "x", x, "dy", dy);
        Checks.sameShape(f, "x", x, "dx", dx);
        Checks.sameShape(f, "s", s, "ds", ds);
        Checks.identicalOrDistinct(f, "dy", dy, "dx", dx);
        Checks.distinct(f, "dx", dx, "x", x);
        Checks.distinct(f, "dx", dx, "s", s);
        Checks.distinct(f, "dx", dx, "ds", ds);
        Checks.distinct(f, "ds", ds, "x", x);
        Checks.distinct(f, "ds", ds, "s", s);
        Checks.distinct(f, "ds", ds, "dy", dy);
        device.activate();
        var api = device.backend().api;
        long n = x.dim(0), c = x.dim(-1);
        device.backend().check(silu
                ? api.ambient_channel_scale_silu_backward(n, positions, c, x.segment(), s.segment(), dy.segment(),
                        dx.segment(), ds.segment())
                : api.ambient_channel_scale_backward(n, positions, c, x.segment(), s.segment(), dy.segment(),
                        dx.segment(), ds.segment()), f, shapes);
    }

    /** x [N, ..., C] with s [N, C]; returns the number of positions (the middle dimensions' product). */
    private static long scaleShapes(String f, Checks.Shapes shapes, Tensor x, Tensor s) {
        if (x.rank() < 2 || s.rank() != 2 || s.dim(0) != x.dim(0) || s.dim(1) != x.dim(-1)) {
            throw new IllegalArgumentException(f + ": " + shapes + ": x must be [N, H, W, C] or [N, P, C] and s [N, C]");
        }
        long positions = 1;
        for (int i = 1; i < x.rank() - 1; i++) positions *= x.dim(i);
        return positions;
    }
}
