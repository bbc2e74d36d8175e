/**
 * Training images in memory: {@link dev.ambient.model.data.ImageDataset} (a uint8 NHWC cache
 * with names and optional class labels), its loaders ({@link dev.ambient.model.data.ImageFolder}
 * for folders and zips in EDM's dataset-tool layout, {@link dev.ambient.model.data.Cifar10},
 * the built-in {@link dev.ambient.model.data.ProceduralShapes}), and
 * {@link dev.ambient.model.data.BatchPrefetcher}, which prepares batches on a background thread.
 * Bad inputs are {@link dev.ambient.model.data.BadInputException}s naming the file and entry.
 */
package dev.ambient.model.data;
