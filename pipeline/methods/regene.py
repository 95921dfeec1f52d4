"""ReGene, "Classify and Generate" (Gopalakrishnan, Singh et al., arXiv 2004.07543).

The encoder is a trained classifier up to its latent (frozen); a decoder learns to reconstruct
images from those latents; new images of class c decode convex combinations of latents of
correctly classified class-c images (Dirichlet weights over k of them). No prior is imposed.

Label guarantee (PAPERS.md sec. 3): with a linear head h(z) = W z + b, the set of latents predicted
as c, {z : (W z + b)_c >= (W z + b)_j for all j}, is an intersection of half-spaces, hence convex;
a convex combination of latents predicted c is predicted c. `label_kept` measures it (it must be
1.0 up to float rounding at a boundary). "Predicted" means the argmax over the K real classes, so
a STIC round's extra "fake" output does not enter (the argmax over K of the K+1 logits is still a
linear classifier, so the argument holds).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from pipeline.config import ConfigError
from pipeline.data import DataError
from pipeline.methods.common import class_labels, device_of
from pipeline.resume import Snapshots

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReGeneConfig:
    round: str = "r0"  # the classifier round whose latents are used (data/models/<round>.pt)
    width: int = 16  # decoder base channel count
    epochs: int = 40
    batch_size: int = 64
    lr: float = 0.002  # Adam
    k: int = 2  # latents per convex combination (ReGene combines pairs and more)
    dirichlet_alpha: float = 1.0  # symmetric Dirichlet; 1.0 = uniform on the simplex
    samples_per_class: int = 20

    def validate(self) -> None:
        if not self.round.startswith("r") or not self.round[1:].isdigit():
            raise ConfigError(f"round: expected a round id like r0, got '{self.round}'")
        if self.width < 1 or self.epochs < 1 or self.batch_size < 2:
            raise ConfigError("width: and epochs must be >= 1, batch_size >= 2")
        if self.lr <= 0 or self.dirichlet_alpha <= 0:
            raise ConfigError("lr: and dirichlet_alpha must be positive")
        if self.k < 1 or self.samples_per_class < 1:
            raise ConfigError("k: and samples_per_class must be at least 1")


class Decoder(nn.Module):
    """Latent (B, D) -> image (B, C, S, S) in [-1, 1]: linear to a small map, then upsamplings."""

    def __init__(self, latent_dim: int, channels: int, image_size: int, width: int):
        super().__init__()
        ups, size = 0, image_size
        while size > 4 and size % 2 == 0:
            size, ups = size // 2, ups + 1
        self.start, self.chans = size, width * 2**ups  # e.g. 16 -> 4x4 with 4*width channels
        self.fc = nn.Sequential(nn.Linear(latent_dim, self.chans * size * size), nn.ReLU())
        layers: list[nn.Module] = []
        c = self.chans
        for _ in range(ups):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1), nn.BatchNorm2d(c // 2), nn.ReLU()]
            c //= 2
        layers += [nn.Conv2d(c, channels, 3, padding=1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # z: (B, D)
        h = self.fc(z).view(-1, self.chans, self.start, self.start)  # (B, c, s, s)
        return self.net(h)  # (B, C, S, S)


def decoder_args(latent_dim: int, channels: int, image_size: int, cfg: ReGeneConfig) -> dict:
    return {
        "latent_dim": latent_dim,
        "channels": channels,
        "image_size": image_size,
        "width": cfg.width,
    }


def reconstruction_error(decoder: Decoder, latents: torch.Tensor, images: torch.Tensor) -> float:
    """Mean squared error per pixel in [-1, 1] units between decode(latents) and images."""
    decoder.eval()
    return float(F.mse_loss(decode(decoder, latents), images))


def train_decoder(
    decoder: Decoder,
    latents: torch.Tensor,
    images: torch.Tensor,
    cfg: ReGeneConfig,
    gen: torch.Generator,
    on_epoch=None,
    progress: bool = True,
    snapshots: Snapshots | None = None,
) -> list[dict[str, float]]:
    """Fit decoder(latents) ~ images (MSE) with Adam; latents are fixed (the encoder is frozen).

    With `snapshots`, the state is saved every few epochs and a restart resumes from it."""
    opt = torch.optim.Adam(decoder.parameters(), lr=cfg.lr)
    dev = device_of(decoder)
    steps = max(1, len(latents) // cfg.batch_size)
    state = {"decoder": decoder, "optimizer": opt}
    start, history = snapshots.restore(state, gen) if snapshots else (0, [])
    for epoch in tqdm(
        range(start, cfg.epochs),
        desc="regene decoder",
        initial=start,
        total=cfg.epochs,
        unit="epoch",
        leave=False,
        disable=not progress,
    ):
        decoder.train()
        perm = torch.randperm(len(latents), generator=gen)
        total = 0.0
        for step in range(steps):
            idx = perm[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            loss = F.mse_loss(decoder(latents[idx].to(dev)), images[idx].to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item()
        row = {"train_mse": total / steps}
        history.append(row)
        if on_epoch is not None:
            on_epoch(epoch, row)
        if snapshots:
            snapshots.save(epoch + 1, cfg.epochs, state, history, gen)
    if snapshots:
        snapshots.finish()
    decoder.eval()
    return history


def combine_latents(
    latents: torch.Tensor,
    predicted: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    cfg: ReGeneConfig,
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Convex combinations of k latents of correctly classified images, `samples_per_class` each.

    latents (N, D) of real images with true `labels` (N,) and classifier predictions `predicted`
    (N,). Returns combined latents (K * n, D) and their classes (K * n,), grouped by class.
    """
    # Dirichlet draws need gamma variates, which torch cannot draw from a Generator; a numpy
    # generator seeded from `gen` keeps the single explicit source of randomness.
    rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=gen)))
    n = cfg.samples_per_class
    out = []
    for c in range(num_classes):
        pool = torch.nonzero((labels == c) & (predicted == c)).flatten()  # correctly classified
        if len(pool) < cfg.k:
            raise DataError(
                f"regene.k is {cfg.k} but class {c} has only {len(pool)} correctly classified "
                "training images to combine; lower regene.k"
            )
        pick = torch.stack(
            [pool[torch.randperm(len(pool), generator=gen)[: cfg.k]] for _ in range(n)]
        )  # (n, k) distinct images per combination
        w = torch.from_numpy(rng.dirichlet([cfg.dirichlet_alpha] * cfg.k, size=n)).float()
        out.append((w[:, :, None] * latents[pick]).sum(1))  # (n, D)
    return torch.cat(out), class_labels(num_classes, n)


@torch.no_grad()
def label_kept(
    head: nn.Linear, latents: torch.Tensor, labels: torch.Tensor, num_classes: int
) -> float:
    """Fraction of latents whose argmax over the K real logits of the linear head is their label."""
    logits = head(latents.to(head.weight.device))[:, :num_classes].cpu()
    return float((logits.argmax(1) == labels).float().mean())


@torch.no_grad()
def decode(decoder: Decoder, latents: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Images (N, C, S, S) in [-1, 1] on the CPU from latents (N, D)."""
    decoder.eval()
    dev = device_of(decoder)
    return torch.cat(
        [
            decoder(latents[i : i + batch_size].to(dev)).cpu()
            for i in range(0, len(latents), batch_size)
        ]
    )
