package dev.ambient.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import org.junit.jupiter.api.Test;

/** Tensor creation, copies, views, lifetime and the errors for bad shapes and bad use. */
class TensorTest {

    private final Device cpu = Device.cpu();

    @Test
    void copiesRoundTrip() {
        float[] values = TestSupport.uniform(TestSupport.freshRandom(), 2 * 3 * 5 * 7, 1);
        try (Tensor t = Tensor.of(cpu, values, 2, 3, 5, 7); Tensor u = Tensor.allocate(cpu, 2, 3, 5, 7)) {
            assertArrayEquals(new long[] {2, 3, 5, 7}, t.shape());
            assertEquals(210, t.size());
            assertEquals(7, t.dim(-1));
            assertArrayEquals(values, t.toArray());
            u.copyFrom(t);
            assertArrayEquals(values, u.toArray());
            assertArrayEquals(new float[210], u.zero().toArray());
        }
    }

    @Test
    void slicesAreViewsOfARange() {
        float[] values = new float[24];
        for (int i = 0; i < values.length; i++) values[i] = i;
        Tensor base = Tensor.of(cpu, values, 24);
        Tensor part = base.slice(5, 2, 3);
        assertArrayEquals(new float[] {5, 6, 7, 8, 9, 10}, part.toArray());
        part.copyFrom(new float[] {-1, -2, -3, -4, -5, -6});
        assertEquals(-1, base.toArray()[5], "a slice writes through to its base");
        assertEquals(11, base.toArray()[11], "and only inside its range");
        assertEquals(0, base.slice(24, 0).size());
        assertTrue(base.slice(23, 1).toArray()[0] == 23);
        assertThrows(IllegalArgumentException.class, () -> base.slice(20, 5));
        assertThrows(IllegalArgumentException.class, () -> base.slice(-1, 2));
        Tensor other = base.slice(11, 4);
        assertArrayEquals(new float[] {11, 12, 13, 14}, other.toArray());
        assertThrows(IllegalArgumentException.class, () -> MagnitudePreserving.silu(part, base.slice(7, 6)),
                "partial overlap of two slices is refused");
        MagnitudePreserving.silu(other, other); // a slice in place is fine
        assertEquals((float) (11 / (1 + Math.exp(-11)) / 0.596), base.toArray()[11], 1e-4f);
        base.close();
        assertThrows(IllegalStateException.class, part::toArray, "closing the base closes its slices");
    }

    @Test
    void floatBuffersOfEitherByteOrder() {
        float[] values = {1.5f, -2.25f, 3.125f};
        for (ByteOrder order : new ByteOrder[] {ByteOrder.BIG_ENDIAN, ByteOrder.LITTLE_ENDIAN}) {
            FloatBuffer in = ByteBuffer.allocateDirect(12).order(order).asFloatBuffer().put(values).flip();
            try (Tensor t = Tensor.allocate(cpu, 3)) {
                t.copyFrom(in);
                assertArrayEquals(values, t.toArray());
                FloatBuffer out = ByteBuffer.allocate(12).order(order).asFloatBuffer();
                t.copyTo(out);
                assertArrayEquals(values, new float[] {out.get(0), out.get(1), out.get(2)});
            }
        }
    }

    @Test
    void viewsShareMemoryAndDieWithTheirBase() {
        Tensor base = Tensor.of(cpu, new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
        Tensor view = base.reshape(3, 2);
        view.copyFrom(new float[] {6, 5, 4, 3, 2, 1});
        assertArrayEquals(new float[] {6, 5, 4, 3, 2, 1}, base.toArray());
        view.close(); // frees nothing
        assertArrayEquals(new float[] {6, 5, 4, 3, 2, 1}, base.toArray());
        Tensor view2 = base.reshape(6);
        base.close();
        assertTrue(view2.isClosed());
        assertThrows(IllegalStateException.class, view2::toArray);
        var e = assertThrows(IllegalArgumentException.class, () -> Tensor.zeros(cpu, 2, 3).reshape(4));
        assertTrue(e.getMessage().contains("cannot reshape"), e.getMessage());
    }

    @Test
    void useAfterCloseFailsInJava() {
        Tensor t = Tensor.zeros(cpu, 4);
        t.close();
        t.close(); // idempotent
        var e = assertThrows(IllegalStateException.class, t::toArray);
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
    }

    @Test
    void arenaOwnedTensorsAreFreedWithTheArena() {
        Tensor t;
        try (Arena step = Arena.ofConfined()) {
            t = Tensor.allocate(cpu, step, 16);
            t.copyFrom(new float[16]);
        }
        assertTrue(t.isClosed());
        assertThrows(IllegalStateException.class, t::toArray);
    }

    @Test
    void badShapesAreRefused() {
        var negative = assertThrows(IllegalArgumentException.class, () -> Tensor.allocate(cpu, 2, -1));
        assertTrue(negative.getMessage().contains("negative"), negative.getMessage());
        var overflow = assertThrows(IllegalArgumentException.class, () -> Tensor.allocate(cpu, 1L << 40, 1L << 40));
        assertTrue(overflow.getMessage().contains("2^58"), overflow.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Tensor.allocate(cpu));
        assertThrows(IllegalArgumentException.class, () -> Tensor.allocate(null, 3));
        var length = assertThrows(IllegalArgumentException.class, () -> Tensor.of(cpu, new float[5], 2, 3));
        assertTrue(length.getMessage().contains("holds 6 elements, got 5"), length.getMessage());
    }

    @Test
    void aHugeAllocationIsANativeErrorNotACrash() {
        var e = assertThrows(AmbientException.class, () -> Tensor.allocate(cpu, 1L << 56));
        assertEquals("ambient_memory_alloc", e.function());
        assertTrue(e.getMessage().contains("cannot allocate"), e.getMessage());
    }

    @Test
    void emptyTensorsAreAllowed() {
        try (Tensor t = Tensor.allocate(cpu, 0, 3); Tensor u = Tensor.allocate(cpu, 0, 3)) {
            assertEquals(0, t.size());
            assertArrayEquals(new float[0], t.toArray());
            MagnitudePreserving.silu(t, u);
        }
    }
}
