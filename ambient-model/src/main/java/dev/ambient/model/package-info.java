/**
 * The model layer: layers with explicit forward and backward over the kernel calls of
 * {@code dev.ambient.kernels}, the EDM2 UNet, the Ambient loss, optimisers, samplers,
 * checkpoints and the training loop. Not written yet: today the project ends at the kernel
 * API (see the README's "What works today").
 */
package dev.ambient.model;
