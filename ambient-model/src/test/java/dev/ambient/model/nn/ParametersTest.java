package dev.ambient.model.nn;

import dev.ambient.kernels.Device;
import dev.ambient.kernels.Tensor;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Flat named parameters, PyTorch layout conversions and the buffer pool. */
class ParametersTest {

    @Test
    void convolutionWeightsMoveBetweenOihwAndOhwi() {
        try (Parameters p = new Parameters()) {
            Parameters.Entry conv = p.parameter("conv.weight", Parameters.Layout.CONV, 2, 3, 3, 3);
            assertArrayEquals(new long[] {2, 3, 3, 3}, conv.shape());
            float[] torch = new float[54];
            for (int i = 0; i < torch.length; i++) torch[i] = i;
            float[] ours = conv.fromTorch(torch);
            // element [o=1, c=2, y=0, x=1] of OIHW sits at [o=1, y=0, x=1, c=2] of OHWI
            assertEquals(torch[((1 * 3 + 2) * 3 + 0) * 3 + 1], ours[((1 * 3 + 0) * 3 + 1) * 3 + 2]);
            assertArrayEquals(torch, conv.toTorch(ours));
        }
    }

    @Test
    void qkvRowsFollowTheAttentionKernelsOrder() {
        try (Parameters p = new Parameters()) {
            int d = 2, heads = 2, c = heads * d;
            Parameters.Entry qkv = p.qkvParameter("attn_qkv.weight", d, 3L * c, c, 1, 1);
            float[] torch = new float[3 * c * c];
            for (int i = 0; i < torch.length; i++) torch[i] = i;
            float[] ours = qkv.fromTorch(torch);
            // EDM2's output row h*3d + ch*3 + s is our row (h*3 + s)*d + ch
            int h = 1, ch = 1, s = 2;
            int theirs = h * 3 * d + ch * 3 + s, mine = (h * 3 + s) * d + ch;
            for (int k = 0; k < c; k++) assertEquals(torch[theirs * c + k], ours[mine * c + k]);
            assertArrayEquals(torch, qkv.toTorch(ours));
        }
    }

    @Test
    void entriesAreViewsOfOneBufferAndNamesAreUnique() {
        try (Parameters p = new Parameters()) {
            Parameters.Entry a = p.parameter("a", Parameters.Layout.PLAIN, 3, 2);
            Parameters.Entry gain = p.parameter("gain", Parameters.Layout.SCALAR);
            Parameters.Entry buffer = p.buffer("freqs", 4);
            assertThrows(IllegalArgumentException.class, () -> p.parameter("a", Parameters.Layout.PLAIN, 1));
            p.allocate(Device.cpu());
            assertEquals(7, p.trainedSize());
            a.value().copyFrom(new float[] {1, 2, 3, 4, 5, 6});
            gain.value().copyFrom(new float[] {7});
            assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6, 7}, p.values().toArray());
            assertEquals(7f, gain.scalar());
            assertThrows(IllegalStateException.class, buffer::grad, "buffers have no gradient");
            assertThrows(IllegalStateException.class, () -> p.parameter("late", Parameters.Layout.PLAIN, 1));
        }
    }

    @Test
    void poolReusesMemoryAndRefusesForeignTensors() {
        SplittableRandom r = new SplittableRandom();
        try (TensorPool pool = new TensorPool(Device.cpu()); Tensor foreign = Tensor.allocate(Device.cpu(), 4)) {
            Tensor a = pool.take(2, 3);
            pool.give(a);
            Tensor b = pool.take(3, 2); // same element count: the same memory again
            assertEquals(24, pool.bytesOwned());
            assertEquals(1, pool.lentCount());
            assertThrows(IllegalStateException.class, () -> pool.give(a), "given back twice");
            assertThrows(IllegalStateException.class, () -> pool.give(foreign));
            Tensor c = pool.take(5);
            assertEquals(44, pool.bytesOwned());
            pool.give(b);
            pool.give(c);
            assertEquals(0, pool.lentCount());
            assertEquals(44, pool.peakBytesLent());
            pool.trim();
            assertEquals(0, pool.bytesOwned());
            float[] v = {(float) r.nextDouble()};
            assertArrayEquals(v, pool.take(1).copyFrom(v).toArray());
        }
    }
}
