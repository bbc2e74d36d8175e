/**
 * Evaluation of generated images against a reference set: the Fréchet distance on any features
 * ({@link dev.ambient.model.eval.FrechetDistance}) and on downsampled pixels
 * ({@link dev.ambient.model.eval.FdPixels}), improved precision and recall
 * ({@link dev.ambient.model.eval.PrecisionRecall}), high-frequency energy
 * ({@link dev.ambient.model.eval.Sharpness}), the report that holds them
 * ({@link dev.ambient.model.eval.EvaluationReport}), and the figures
 * ({@link dev.ambient.model.eval.Plots}). Everything here is plain Java on float64 and needs no
 * native library.
 */
package dev.ambient.model.eval;
