package dev.ambient.kernels;

/**
 * EDM2's magnitude-preserving elementwise ops and their gradients (Karras et al. 2024):
 * <ul>
 *   <li>{@code mp_silu(x) = silu(x) / 0.596}, where 0.596 is the RMS of silu over N(0, 1);</li>
 *   <li>{@code mp_sum(a, b, t) = ((1 - t) a + t b) / sqrt((1 - t)^2 + t^2)}.</li>
 * </ul>
 * The output may be the input itself (in place); partial overlaps are refused.
 */
public final class MagnitudePreserving {

    private MagnitudePreserving() {}

    /** {@code y = mp_silu(x)}; modifies and returns y. */
    public static Tensor silu(Tensor x, Tensor y) {
        String f = "ambient_mp_silu_forward";
        Device device = Checks.sameDevice(f, "x", x, "y", y);
        Checks.sameShape(f, "x", x, "y", y);
        Checks.identicalOrDistinct(f, "x", x, "y", y);
        device.activate();
        device.backend().check(device.backend().api.ambient_mp_silu_forward(x.size(), x.segment(), y.segment()),
                f, Checks.shapes("x", x, "y", y));
        return y;
    }

    /** {@code mp_silu(x)} into a new tensor. */
    public static Tensor silu(Tensor x) {
        return intoNew(x, y -> silu(x, y));
    }

    /** {@code dx = dy * d mp_silu / dx at x}; modifies and returns dx (which may be dy). */
    public static Tensor siluBackward(Tensor x, Tensor dy, Tensor dx) {
        String f = "ambient_mp_silu_backward";
        Device device = Checks.sameDevice(f, "x", x, "dy", dy, "dx", dx);
        Checks.sameShape(f, "x", x, "dy", dy);
        Checks.sameShape(f, "x", x, "dx", dx);
        Checks.identicalOrDistinct(f, "dy", dy, "dx", dx);
        Checks.identicalOrDistinct(f, "x", x, "dx", dx);
        device.activate();
        device.backend().check(device.backend().api.ambient_mp_silu_backward(x.size(), x.segment(), dy.segment(),
                dx.segment()), f, Checks.shapes("x", x, "dy", dy, "dx", dx));
        return dx;
    }

    /** {@code y = mp_sum(a, b, t)}; modifies and returns y (which may be a or b). */
    public static Tensor sum(Tensor a, Tensor b, float t, Tensor y) {
        String f = "ambient_mp_sum_forward";
        Device device = Checks.sameDevice(f, "a", a, "b", b, "y", y);
        Checks.sameShape(f, "a", a, "b", b);
        Checks.sameShape(f, "a", a, "y", y);
        Checks.finite(f, "t", t);
        Checks.identicalOrDistinct(f, "a", a, "y", y);
        Checks.identicalOrDistinct(f, "b", b, "y", y);
        device.activate();
        device.backend().check(device.backend().api.ambient_mp_sum_forward(a.size(), a.segment(), b.segment(), t,
                y.segment()), f, Checks.shapes("a", a, "b", b, "y", y).and("t", t));
        return y;
    }

    /** {@code mp_sum(a, b, t)} into a new tensor. */
    public static Tensor sum(Tensor a, Tensor b, float t) {
        return intoNew(a, y -> sum(a, b, t, y));
    }

    /**
     * Gradients of mp_sum: {@code da = dy (1 - t) / s}, {@code db = dy t / s}; modifies da and
     * db (either may be dy; they must not overlap each other).
     */
    public static void sumBackward(Tensor dy, float t, Tensor da, Tensor db) {
        String f = "ambient_mp_sum_backward";
        Device device = Checks.sameDevice(f, "dy", dy, "da", da, "db", db);
        Checks.sameShape(f, "dy", dy, "da", da);
        Checks.sameShape(f, "dy", dy, "db", db);
        Checks.finite(f, "t", t);
        Checks.distinct(f, "da", da, "db", db);
        Checks.identicalOrDistinct(f, "dy", dy, "da", da);
        Checks.identicalOrDistinct(f, "dy", dy, "db", db);
        device.activate();
        device.backend().check(device.backend().api.ambient_mp_sum_backward(dy.size(), dy.segment(), t, da.segment(),
                db.segment()), f, Checks.shapes("dy", dy, "da", da, "db", db).and("t", t));
    }

    /** Allocates an output shaped like {@code like}, fills it, and frees it if filling fails. */
    static Tensor intoNew(Tensor like, java.util.function.Consumer<Tensor> fill) {
        if (like == null) throw new IllegalArgumentException("input tensor is null");
        Tensor out = Tensor.allocate(like.device(), like.shape());
        try {
            fill.accept(out);
            return out;
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
    }

    // ---- mp_cat ---------------------------------------------------------------------------

    /**
     * EDM2's magnitude-preserving concatenation along channels (the last dimension):
     * {@code y = [wa a, wb b]} with {@code wa = s (1 - t) / sqrt(Ca)}, {@code wb = s t / sqrt(Cb)},
     * {@code s = sqrt((Ca + Cb) / ((1 - t)^2 + t^2))}. a is {@code [..., Ca]}, b is
     * {@code [..., Cb]} with the same leading dimensions, y is {@code [..., Ca + Cb]}; modifies
     * and returns y, which must not overlap a or b.
     */
    public static Tensor cat(Tensor a, Tensor b, float t, Tensor y) {
        String f = "ambient_mp_cat_forward";
        Device device = Checks.sameDevice(f, "a", a, "b", b, "y", y);
        Checks.Shapes shapes = Checks.shapes("a", a, "b", b, "y", y).and("t", t);
        Checks.finite(f, "t", t);
        long ca = catChannels(f, "a", a), cb = catChannels(f, "b", b);
        checkCatOutput(f, shapes, a, b, "y", y, ca + cb);
        Checks.distinct(f, "y", y, "a", a);
        Checks.distinct(f, "y", y, "b", b);
        device.activate();
        device.backend().check(device.backend().api.ambient_mp_cat_forward(a.size() / ca, ca, cb, t, a.segment(),
                b.segment(), y.segment()), f, shapes);
        return y;
    }

    /** {@code mp_cat(a, b, t)} into a new tensor {@code [..., Ca + Cb]}. */
    public static Tensor cat(Tensor a, Tensor b, float t) {
        String f = "ambient_mp_cat_forward";
        Checks.sameDevice(f, "a", a, "b", b);
        long[] shape = a.shape();
        shape[shape.length - 1] += b.dim(-1);
        return intoNew(a.device(), shape, y -> cat(a, b, t, y));
    }

    /**
     * Gradients of mp_cat: {@code da = wa dy[..., :Ca]}, {@code db = wb dy[..., Ca:]} with the
     * weights of {@link #cat(Tensor, Tensor, float, Tensor)}; Ca and Cb are the last dimensions
     * of da and db. Modifies da and db, which must not overlap each other or dy.
     */
    public static void catBackward(Tensor dy, float t, Tensor da, Tensor db) {
        String f = "ambient_mp_cat_backward";
        Device device = Checks.sameDevice(f, "dy", dy, "da", da, "db", db);
        Checks.Shapes shapes = Checks.shapes("dy", dy, "da", da, "db", db).and("t", t);
        Checks.finite(f, "t", t);
        long ca = catChannels(f, "da", da), cb = catChannels(f, "db", db);
        checkCatOutput(f, shapes, da, db, "dy", dy, ca + cb);
        Checks.distinct(f, "da", da, "db", db);
        Checks.distinct(f, "da", da, "dy", dy);
        Checks.distinct(f, "db", db, "dy", dy);
        device.activate();
        device.backend().check(device.backend().api.ambient_mp_cat_backward(da.size() / ca, ca, cb, t, dy.segment(),
                da.segment(), db.segment()), f, shapes);
    }

    private static long catChannels(String f, String name, Tensor t) {
        long c = t.dim(-1);
        if (c <= 0) throw new IllegalArgumentException(f + ": " + name + " " + java.util.Arrays.toString(t.shape())
                + " has no channels; mp_cat needs at least one on each side");
        return c;
    }

    /** The dimensions before the channels must agree. */
    private static void catRows(String f, Checks.Shapes shapes, Tensor a, Tensor b) {
        long[] sa = a.shape(), sb = b.shape();
        if (!java.util.Arrays.equals(sa, 0, sa.length - 1, sb, 0, sb.length - 1)) {
            throw new IllegalArgumentException(f + ": " + shapes + ": all dimensions but the last (channels) must agree");
        }
    }

    /** The concatenated tensor must share a's (and b's) leading dimensions and have Ca + Cb channels. */
    private static void checkCatOutput(String f, Checks.Shapes shapes, Tensor a, Tensor b, String name, Tensor joined, long channels) {
        catRows(f, shapes, a, b);
        catRows(f, shapes, a, joined);
        if (joined.dim(-1) != channels) {
            throw new IllegalArgumentException(f + ": " + shapes + ": " + name + " must have Ca + Cb = " + channels + " channels");
        }
    }

    /** Allocates an output of {@code shape} on {@code device}, fills it, and frees it if filling fails. */
    static Tensor intoNew(Device device, long[] shape, java.util.function.Consumer<Tensor> fill) {
        Tensor out = Tensor.allocate(device, shape);
        try {
            fill.accept(out);
            return out;
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
    }
}
