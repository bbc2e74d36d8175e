package dev.ambient.model.checkpoint;

import dev.ambient.kernels.Device;
import dev.ambient.kernels.RandomNumbers;
import dev.ambient.kernels.Tensor;
import dev.ambient.model.train.EmaSchedule;
import dev.ambient.model.train.LearningRateSchedule;
import dev.ambient.model.train.Trainer;
import dev.ambient.model.train.TrainingBatch;
import dev.ambient.model.unet.Edm2Model;
import dev.ambient.model.unet.UNetConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TrainingCheckpointTest {

    static final UNetConfig TINY = new UNetConfig(8, 3, 0, 8, new int[] {1, 2}, null, null, 1, new int[] {4}, 0.1,
            0.5, 0.5, 0.3, 0.3, 256, 4, 8);

    static Trainer.Options options(long seed) {
        return new Trainer.Options(new LearningRateSchedule(0.01, 10, 64), 0.9f, 0.99f, 1e-8f, 1f,
                List.of(EmaSchedule.powerFunction(0.1), EmaSchedule.halfLife(500, 0.05)), true, seed);
    }

    static void train(Trainer trainer, Tensor images, int steps) {
        for (int s = 0; s < steps; s++) {
            double[] sigma = new double[(int) images.dim(0)];
            for (int i = 0; i < sigma.length; i++) sigma[i] = Math.exp(-0.4 + 0.3 * ((trainer.step() * 7 + i) % 5 - 2));
            trainer.step(List.of(TrainingBatch.clean(images, sigma)));
        }
    }

    @Test
    void aResumedRunContinuesExactlyAsTheUninterruptedOne(@TempDir Path dir) throws IOException {
        long seed = System.nanoTime();
        System.out.println("TrainingCheckpointTest seed " + seed);
        Device cpu = Device.cpu();
        Path state = dir.resolve("training-state.safetensors");
        float[] straight, straightEma, saved;
        try (Tensor images = RandomNumbers.normal(cpu, seed, 3, 0, 4, 8, 8, 3)) {
            try (Edm2Model model = new Edm2Model(TINY, cpu, seed); Trainer trainer = new Trainer(model, options(seed))) {
                train(trainer, images, 3);
                TrainingCheckpoint.save(trainer, state, Map.of("data_position", "12"));
                saved = model.parameters().values().toArray();
                train(trainer, images, 2);
                straight = model.parameters().values().toArray();
                straightEma = trainer.ema(1).toArray();
            }
            try (Edm2Model model = Edm2Model.uninitialized(TINY, cpu); Trainer trainer = new Trainer(model, options(seed))) {
                Map<String, String> meta = TrainingCheckpoint.load(trainer, state);
                assertEquals("12", meta.get("data_position"));
                assertEquals(3, trainer.step());
                assertEquals(12, trainer.imagesSeen());
                train(trainer, images, 2);
                assertArrayEquals(straight, model.parameters().values().toArray(), "weights after resuming");
                assertArrayEquals(straightEma, trainer.ema(1).toArray(), "EMA after resuming");
            }
        }
        // the file is also a plain network checkpoint, and refuses a run with other EMA settings
        try (Edm2Model model = Edm2Model.uninitialized(TINY, cpu)) {
            ModelCheckpoint.load(model, state);
            assertArrayEquals(saved, model.parameters().values().toArray(), "the network part loads as weights");
            Trainer.Options oneEma = new Trainer.Options(new LearningRateSchedule(0.01, 0, 0), 0.9f, 0.99f, 1e-8f, 0f,
                    List.of(EmaSchedule.powerFunction(0.1)), true, 1);
            try (Trainer trainer = new Trainer(model, oneEma)) {
                IOException e2 = assertThrows(IOException.class, () -> TrainingCheckpoint.load(trainer, state));
                assertTrue(e2.getMessage().contains("EMA"), e2.getMessage());
            }
        }
    }
}
