"""The target densities the samplers draw from (pipeline.samplers runs the kernels on them).

For a label distribution t over the K real classes, per chain:

    log pi(x) = [ class_term_t(f(x))
                  - lambda_gram * sum_l ||G_l(x) - sum_k t_k Gbar_l^k||_F^2 / C_l^2 ] / T

with the class term the one the classifier was trained to shape (`pipeline.train.LossConfig`):
`log_softmax` sum_k t_k log softmax(f(x))_k over ALL outputs (K+1 with STIC's fake class, so a
sample the classifier recognises as fake loses density), `logit` sum_k t_k f(x)_k (JEM's
log p(x, y) up to a constant), or `logsumexp` over the real classes (JEM's log p(x)).
G_l(x) = F_l F_l^T / (H_l W_l) is the Gram matrix of feature map l (C_l channels).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
import torch.nn.functional as F

from pipeline.errors import ConfigError
from pipeline.samplers import LogDensityFn, SamplerConfig

ClassTerm = Literal["log_softmax", "logit", "logsumexp"]  # what a sampler ascends


def gram(maps: torch.Tensor) -> torch.Tensor:
    """Gram matrix F F^T / (H W) of feature maps (B, C, H, W) -> (B, C, C)."""
    b, c, h, w = maps.shape
    flat = maps.reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (h * w)


def gram_distance(
    maps: Mapping[str, torch.Tensor], targets: torch.Tensor, mean_grams: Mapping[str, torch.Tensor]
) -> torch.Tensor:
    """sum_l ||G_l(x) - sum_k t_k Gbar_l^k||_F^2 / C_l^2 per chain (B,).

    `targets` (B, K); `mean_grams[l]` (K, C_l, C_l): per-class mean Gram of real images."""
    total = targets.new_zeros(targets.shape[0])
    for name, gbar in mean_grams.items():
        g = gram(maps[name])  # (B, C, C)
        want = torch.einsum("bk,kcd->bcd", targets, gbar)  # (B, C, C)
        total = total + (g - want).pow(2).sum(dim=(1, 2)) / g.shape[1] ** 2
    return total


def class_log_likelihood(
    logits: torch.Tensor, targets: torch.Tensor, term: ClassTerm = "log_softmax"
) -> torch.Tensor:
    """The class term per chain (B,) (module docstring); t covers the K real classes."""
    k = targets.shape[1]
    if term == "log_softmax":
        return (targets * F.log_softmax(logits, dim=1)[:, :k]).sum(dim=1)
    if term == "logit":
        return (targets * logits[:, :k]).sum(dim=1)
    return torch.logsumexp(logits[:, :k], dim=1)


def log_density(
    model: torch.nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    cfg: SamplerConfig,
    term: ClassTerm,
    mean_grams: Mapping[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """log pi(x) per chain (B,) (up to its normalising constant)."""
    latent, maps = model.forward_features(x)
    logp = class_log_likelihood(model.head(latent), targets, term)
    if cfg.gram_weight > 0:
        if not mean_grams:
            raise ValueError("gram_weight > 0 needs the per-class mean Gram matrices")
        logp = logp - cfg.gram_weight * gram_distance(maps, targets, mean_grams)
    return logp / cfg.temperature


def classifier_density(
    model: torch.nn.Module,
    targets: torch.Tensor,
    cfg: SamplerConfig,
    term: ClassTerm,
    mean_grams: Mapping[str, torch.Tensor] | None = None,
) -> LogDensityFn:
    """The target as a LogDensityFn (log pi and its gradient with respect to x)."""
    grams = None
    if cfg.gram_weight > 0:
        if mean_grams is None:
            raise ValueError("gram_weight > 0 needs the per-class mean Gram matrices")
        missing = [n for n in cfg.gram_layers if n not in mean_grams]
        if missing:
            raise ConfigError(f"sampler.gram_layers: no mean Gram for {missing}")
        grams = {n: mean_grams[n] for n in cfg.gram_layers}

    def fn(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            logp = log_density(model, x, targets, cfg, term, grams)
            (grad,) = torch.autograd.grad(logp.sum(), x)  # chains are independent
        return logp.detach(), grad

    return fn


def null_density(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A flat target (gradient zero): the null sampler, a reference for what noise scores."""
    return x.new_zeros(x.shape[0]), torch.zeros_like(x)
