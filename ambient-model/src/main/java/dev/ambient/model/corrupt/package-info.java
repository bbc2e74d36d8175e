/**
 * Synthetic corruptions for controlled experiments, named as the reference names them
 * ({@code blur0-8}, {@code jpeg25}, {@code motionblur3}, ...), and
 * {@link dev.ambient.model.corrupt.Corrupter}, which corrupts a seeded part of a dataset (by
 * probability or by clean fraction) and records each sample's corruption label.
 */
package dev.ambient.model.corrupt;
