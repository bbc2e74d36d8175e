package dev.ambient.model.checkpoint;

import dev.ambient.kernels.Tensor;
import dev.ambient.model.train.Trainer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Everything a run needs to continue exactly where it stopped, in one safetensors file: the
 * network under EDM2's names (so the file also loads as weights), Adam's moments and every EMA
 * as flat tensors under {@code trainer.}, and the step and images seen (plus the caller's own
 * entries, such as the data sampler's position) in the metadata. Written atomically; loading
 * checks everything before it changes anything.
 */
public final class TrainingCheckpoint {

    static final String FORMAT = "ambient-training-state-1";

    private TrainingCheckpoint() {}

    /** Writes the trainer's state; {@code metadata} is stored beside Ambient's own keys. */
    public static void save(Trainer trainer, Path file, Map<String, String> metadata) throws IOException {
        Map<String, SafeTensors.Tensor> tensors = new LinkedHashMap<>(ModelCheckpoint.tensors(trainer.model().parameters(), null));
        tensors.put("trainer.adam_m", flat(trainer.adamM()));
        tensors.put("trainer.adam_v", flat(trainer.adamV()));
        for (int k = 0; k < trainer.emaCount(); k++) tensors.put("trainer.ema" + k, flat(trainer.ema(k)));
        Map<String, String> meta = new LinkedHashMap<>(metadata);
        meta.put("format", FORMAT);
        meta.put("step", Long.toString(trainer.step()));
        meta.put("updates", Long.toString(trainer.updates()));
        meta.put("images_seen", Long.toString(trainer.imagesSeen()));
        meta.put("emas", Integer.toString(trainer.emaCount()));
        SafeTensors.write(file, tensors, meta);
    }

    /** Restores a trainer (and its model) from {@link #save}'s file; returns the file's metadata. */
    public static Map<String, String> load(Trainer trainer, Path file) throws IOException {
        SafeTensors.Contents contents = SafeTensors.read(file);
        Map<String, String> meta = contents.metadata();
        if (!FORMAT.equals(meta.get("format"))) {
            throw new IOException(file + " is not an Ambient training state (format " + meta.get("format") + ", expected " + FORMAT + ")");
        }
        int emas = Integer.parseInt(meta.getOrDefault("emas", "-1"));
        if (emas != trainer.emaCount()) {
            throw new IOException(file + " holds " + emas + " EMAs, the run has " + trainer.emaCount() + " (the EMA settings changed)");
        }
        Map<String, SafeTensors.Tensor> network = new HashMap<>(contents.tensors());
        Map<String, Tensor> targets = new LinkedHashMap<>();
        targets.put("trainer.adam_m", trainer.adamM());
        targets.put("trainer.adam_v", trainer.adamV());
        for (int k = 0; k < emas; k++) targets.put("trainer.ema" + k, trainer.ema(k));
        Map<String, float[]> values = new LinkedHashMap<>();
        for (var t : targets.entrySet()) {
            SafeTensors.Tensor stored = network.remove(t.getKey());
            if (stored == null) throw new IOException(file + " lacks " + t.getKey());
            if (stored.values().length != t.getValue().size()) {
                throw new IOException(file + ": " + t.getKey() + " holds " + stored.values().length + " values, the network has "
                        + t.getValue().size() + " parameters");
            }
            values.put(t.getKey(), stored.values());
        }
        long step, updates, images;
        try {
            step = Long.parseLong(meta.get("step"));
            updates = Long.parseLong(meta.get("updates"));
            images = Long.parseLong(meta.get("images_seen"));
        } catch (NumberFormatException e) {
            throw new IOException(file + ": step, updates or images_seen is missing or not a number", e);
        }
        if (updates > step || step < 0 || updates < 0 || images < 0) {
            throw new IOException(file + ": inconsistent progress (step " + step + ", updates " + updates + ", images " + images + ")");
        }
        ModelCheckpoint.load(trainer.model(), network, file); // verifies every name and shape first
        for (var t : targets.entrySet()) t.getValue().copyFrom(values.get(t.getKey()));
        trainer.restoreProgress(step, updates, images);
        return meta;
    }

    private static SafeTensors.Tensor flat(Tensor t) {
        return new SafeTensors.Tensor(new long[] {t.size()}, t.toArray());
    }
}
