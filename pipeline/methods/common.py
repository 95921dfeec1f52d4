"""Small helpers the generation methods share."""

from __future__ import annotations

import torch

from pipeline.config import ConfigError

RESERVED_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"


def device_of(module: torch.nn.Module) -> torch.device:
    """Where a model's parameters live; random draws stay on the CPU generator and move there."""
    return next(module.parameters()).device


def class_labels(num_classes: int, per_class: int) -> torch.Tensor:
    """(K * n,) labels grouped by class, [0]*n + [1]*n + ...: a grid of them has a row per class."""
    return torch.arange(num_classes).repeat_interleave(per_class)


@torch.no_grad()
def embed_all(
    classifier: torch.nn.Module, images: torch.Tensor, batch_size: int = 256
) -> torch.Tensor:
    """Penultimate latents (N, D) of float images (N, C, H, W), classifier in eval mode."""
    classifier.eval()
    dev = device_of(classifier)
    parts = [
        classifier.embed(images[i : i + batch_size].to(dev)).cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(parts)


@torch.no_grad()
def predict_real(
    classifier: torch.nn.Module, images: torch.Tensor, num_classes: int, batch_size: int = 256
) -> torch.Tensor:
    """(N,) argmax over the K real classes (a STIC round has a K+1-th 'fake' output)."""
    classifier.eval()
    dev = device_of(classifier)
    parts = [
        classifier(images[i : i + batch_size].to(dev))[:, :num_classes].argmax(1).cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(parts)


def check_sample_set_name(name: str, key: str) -> None:
    """Sample-set names become file names and DVC stage keys: lower-case letters, digits, '_'."""
    if not name or any(ch not in RESERVED_NAME_CHARS for ch in name):
        raise ConfigError(f"{key}: '{name}' must be lower-case letters, digits and '_' only")
