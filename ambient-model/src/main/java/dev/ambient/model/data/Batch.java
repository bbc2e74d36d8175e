package dev.ambient.model.data;

/**
 * One batch of images gathered from an {@link ImageDataset}: the dataset indices, the images as
 * N·H·W·C floats in [−1, 1] (NHWC), and their class labels (null when the dataset has none).
 */
public record Batch(int[] indices, float[] images, int[] labels) {

    /** Gathers the images (and labels) at {@code indices}. */
    public static Batch of(ImageDataset dataset, int[] indices) {
        float[] images = new float[indices.length * dataset.imageSize()];
        dataset.gather(indices, images);
        int[] labels = null;
        if (dataset.hasLabels()) {
            labels = new int[indices.length];
            for (int b = 0; b < indices.length; b++) labels[b] = dataset.label(indices[b]);
        }
        return new Batch(indices.clone(), images, labels);
    }

    public int size() { return indices.length; }
}
