package dev.ambient.model.checkpoint;

import dev.ambient.kernels.Tensor;
import dev.ambient.model.nn.Parameters;
import dev.ambient.model.unet.Edm2Model;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeSet;

/**
 * An {@link Edm2Model}'s weights as a safetensors file with EDM2's state_dict names and PyTorch's
 * shapes and layouts (convolutions OIHW, EDM2's qkv row order, scalars of shape []), so that a
 * file written here loads into EDM2's Precond with {@code load_state_dict} and the other way
 * round. Written atomically (see {@link SafeTensors}); on load every name and shape is checked
 * before any weight is changed, so a mismatched file leaves the model as it was.
 */
public final class ModelCheckpoint {

    private ModelCheckpoint() {}

    /** Writes the model's current weights and buffers. */
    public static void save(Edm2Model model, Path file, Map<String, String> metadata) throws IOException {
        save(model.parameters(), null, file, metadata);
    }

    /**
     * Writes {@code flatValues} (a flat copy of the trained parameters, such as an EMA) in place
     * of the model's own trained weights, with the model's buffers.
     */
    public static void save(Parameters params, Tensor flatValues, Path file, Map<String, String> metadata) throws IOException {
        SafeTensors.write(file, tensors(params, flatValues), metadata);
    }

    /**
     * Loads weights written by {@link #save} or by PyTorch (EDM2's names; F32, F16 or BF16).
     * A {@link TrainingCheckpoint} file loads too (its network part). Every parameter and buffer
     * of the model must be in the file with its PyTorch shape, and the file must hold nothing else; otherwise an IOException names the file and what differs.
     *
     * @return the file's metadata
     */
    public static Map<String, String> load(Edm2Model model, Path file) throws IOException {
        SafeTensors.Contents contents = SafeTensors.read(file);
        Map<String, SafeTensors.Tensor> tensors = contents.tensors();
        if (TrainingCheckpoint.FORMAT.equals(contents.metadata().get("format"))) { // a training state: its network part
            tensors = new LinkedHashMap<>(tensors);
            tensors.keySet().removeIf(name -> name.startsWith("trainer."));
        }
        load(model, tensors, file);
        return contents.metadata();
    }

    /** Loads the network's entries from tensors read from {@code file} (named in errors); see {@link #load(Edm2Model, Path)}. */
    static void load(Edm2Model model, Map<String, SafeTensors.Tensor> tensors, Path file) throws IOException {
        load(model.parameters(), describe(model), tensors, file);
    }

    /**
     * Loads every parameter and buffer of {@code params} (any network: a classifier too) from
     * {@code file}, which must hold exactly them with their PyTorch shapes.
     *
     * @param network what the parameters belong to, for the error message
     * @return the file's metadata
     */
    public static Map<String, String> load(Parameters params, String network, Path file) throws IOException {
        SafeTensors.Contents contents = SafeTensors.read(file);
        load(params, network, contents.tensors(), file);
        return contents.metadata();
    }

    private static void load(Parameters params, String network, Map<String, SafeTensors.Tensor> tensors, Path file) throws IOException {
        TreeSet<String> missing = new TreeSet<>(), unexpected = new TreeSet<>(tensors.keySet());
        StringBuilder shapes = new StringBuilder();
        for (Parameters.Entry e : params.entries()) {
            unexpected.remove(e.name());
            SafeTensors.Tensor t = tensors.get(e.name());
            if (t == null) {
                missing.add(e.name());
            } else if (!Arrays.equals(t.shape(), e.torchShape())) {
                shapes.append("\n  ").append(e.name()).append(": file ").append(Arrays.toString(t.shape()))
                        .append(", model ").append(Arrays.toString(e.torchShape()));
            }
        }
        if (!missing.isEmpty() || !unexpected.isEmpty() || !shapes.isEmpty()) {
            throw new IOException(file + " does not match the network " + network + ":"
                    + (missing.isEmpty() ? "" : "\n  missing: " + String.join(", ", missing))
                    + (unexpected.isEmpty() ? "" : "\n  not in the network: " + String.join(", ", unexpected))
                    + (shapes.isEmpty() ? "" : "\n  shapes differ:" + shapes));
        }
        for (Parameters.Entry e : params.entries()) {
            e.value().copyFrom(e.fromTorch(tensors.get(e.name()).values()));
        }
    }

    /** The network's entries in PyTorch's layout, with {@code flatValues} (or the model's own) for the trained ones. */
    static Map<String, SafeTensors.Tensor> tensors(Parameters params, Tensor flatValues) {
        float[] flat = flatValues == null ? null : flatValues.toArray();
        Map<String, SafeTensors.Tensor> out = new LinkedHashMap<>();
        long offset = 0;
        for (Parameters.Entry e : params.entries()) {
            float[] ours;
            if (e.trained() && flat != null) {
                ours = Arrays.copyOfRange(flat, (int) offset, (int) (offset + e.size()));
            } else {
                ours = e.value().toArray();
            }
            if (e.trained()) offset += e.size();
            out.put(e.name(), new SafeTensors.Tensor(e.torchShape(), e.toTorch(ours)));
        }
        return out;
    }

    private static String describe(Edm2Model model) {
        var c = model.config();
        return "(" + c.imgResolution() + "x" + c.imgResolution() + "x" + c.imgChannels() + ", channels " + c.modelChannels()
                + ", mult " + Arrays.toString(c.channelMult()) + ", blocks " + c.numBlocks() + ", labels " + c.labelDim() + ")";
    }
}
