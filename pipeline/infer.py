"""Batched inference: the one loop that runs a network over many images without gradients."""

from __future__ import annotations

from collections.abc import Callable

import torch


def device_of(module: torch.nn.Module) -> torch.device:
    """Where a model's parameters live; random draws stay on the CPU generator and move there."""
    return next(module.parameters()).device


@torch.no_grad()
def batched(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """cat(fn(chunk on `device`) on the CPU) over chunks of `x` along dim 0."""
    parts = [fn(x[i : i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(parts) if parts else torch.zeros(0)


def logits_of(model: torch.nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """(N, outputs) logits of float images (N, C, H, W), model in eval mode."""
    model.eval()
    return batched(model, images, batch_size, device_of(model))


def embed_all(model: torch.nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Penultimate latents (N, D) of float images (N, C, H, W), model in eval mode."""
    model.eval()
    return batched(model.embed, images, batch_size, device_of(model))


def predict_real(
    model: torch.nn.Module, images: torch.Tensor, num_classes: int, batch_size: int = 256
) -> torch.Tensor:
    """(N,) argmax over the K real classes (a STIC round has a K+1-th 'fake' output)."""
    return logits_of(model, images, batch_size)[:, :num_classes].argmax(1)


def agreement(
    model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, num_classes: int
) -> float | None:
    """Share of hard-target images (float) that `model` assigns to their intended class: the
    sampling classifier's own view of its samples (the judge's is discriminability)."""
    hard = targets.max(1).values > 1 - 1e-6
    if not hard.any():
        return None
    pred = predict_real(model, images[hard], num_classes)
    return float((pred == targets[hard].argmax(1)).float().mean())
