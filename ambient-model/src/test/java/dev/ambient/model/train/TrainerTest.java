package dev.ambient.model.train;

import dev.ambient.kernels.Device;
import dev.ambient.kernels.RandomNumbers;
import dev.ambient.kernels.Tensor;
import dev.ambient.model.unet.Edm2Model;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TrainerTest {

    @Test
    void aNonFiniteLossSkipsTheUpdateAndIsCounted() {
        long seed = System.nanoTime();
        System.out.println("TrainerTest seed " + seed);
        Device cpu = Device.cpu();
        Trainer.Options options = new Trainer.Options(new LearningRateSchedule(0.01, 0, 0), 0.9f, 0.99f, 1e-8f, 1f,
                List.of(EmaSchedule.powerFunction(0.1)), true, seed);
        double[] sigma = {0.3, 1.0, 4.0};
        try (Edm2Model model = new Edm2Model(TrainingRunTest.TINY, cpu, seed); Trainer trainer = new Trainer(model, options);
             Tensor images = RandomNumbers.normal(cpu, seed, 1, 0, 3, 8, 8, 3)) {
            float[] poisoned = images.toArray();
            poisoned[77] = Float.NaN;
            float[] emaBefore = trainer.ema(0).toArray();
            float[] before; // what the weights become by the step's forced weight normalisation alone (EDM2 does it in place)
            try (Edm2Model twin = new Edm2Model(TrainingRunTest.TINY, cpu, seed)) {
                twin.prepare(true);
                before = twin.parameters().values().toArray();
            }
            try (Tensor bad = Tensor.of(cpu, poisoned, 3, 8, 8, 3)) {
                Trainer.StepStats s = trainer.step(List.of(TrainingBatch.clean(bad, sigma)));
                assertTrue(s.skipped(), "a NaN input must skip the step");
                assertFalse(Double.isFinite(s.loss()));
            }
            assertArrayEquals(before, model.parameters().values().toArray(), "weights untouched by the skipped step");
            assertArrayEquals(emaBefore, trainer.ema(0).toArray(), "EMA untouched by the skipped step");
            assertEquals(1, trainer.step());
            assertEquals(0, trainer.updates());

            // the next finite batch trains normally: nothing of the bad step leaks into its gradient
            Trainer.StepStats s = trainer.step(List.of(TrainingBatch.clean(images, sigma)));
            assertFalse(s.skipped());
            assertTrue(Double.isFinite(s.loss()) && Double.isFinite(s.gradNorm()), s.toString());
            assertEquals(0, s.nonFinite(), "non-finite gradient elements left over from the skipped step");
            assertEquals(1, trainer.updates());
            float[] after = model.parameters().values().toArray();
            assertNotEquals(before[0], after[0]);
            for (float w : after) assertTrue(Float.isFinite(w));
        }
    }
}
