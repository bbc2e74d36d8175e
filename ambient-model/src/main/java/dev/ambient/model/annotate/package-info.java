/**
 * Per-sample annotations {@code (σ_min, σ_max)}: the reference's JSON Lines forms
 * ({@link dev.ambient.model.annotate.Annotation}, {@link dev.ambient.model.annotate.AnnotationFile}
 * with {@code sigmas.txt}), the rules that turn classifier outputs into levels
 * ({@link dev.ambient.model.annotate.FirstConfusionRule}, {@link dev.ambient.model.annotate.CropRule}),
 * the table by dataset index that the sampler reads ({@link dev.ambient.model.annotate.AnnotationTable}),
 * and the fixed annotation ({@link dev.ambient.model.annotate.FixedAnnotation}).
 */
package dev.ambient.model.annotate;
