/**
 * The model layer over the kernel calls of {@code dev.ambient.kernels}. Today it holds the
 * pieces that need no network: EDM's preconditioning ({@link dev.ambient.model.Precond}), the
 * learning-rate and EMA schedules ({@code train}), the Heun sampler ({@code sample}) and
 * safetensors checkpoints ({@code checkpoint}). The EDM2 UNet, the Ambient loss layer, Adam
 * and the training loop are not written yet (see the README's "What works today").
 */
package dev.ambient.model;
