"""ReGene, "Classify and Generate" (Gopalakrishnan, Singh et al., arXiv 2004.07543).

The encoder is a trained classifier up to its latent (frozen); a decoder learns to reconstruct
images from those latents; new images of class c decode convex combinations of latents of
correctly classified class-c images (Dirichlet weights over k of them). No prior is imposed.

Label guarantee (docs/methods.md#regene): with a linear head h(z) = W z + b, the set of latents
predicted as c, {z : (W z + b)_c >= (W z + b)_j for all j}, is an intersection of half-spaces,
hence convex; a convex combination of latents predicted c is predicted c. `label_kept` measures it
(it must be 1.0 up to float rounding at a boundary). "Predicted" means the argmax over the K real
classes, so a STIC round's extra "fake" output does not enter (the argmax over K of the K+1 logits
is still a linear classifier, so the argument holds).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from pipeline import numerics
from pipeline.accel import OFF, Accel, autocast, training_net
from pipeline.dist import mean_over_ranks, rows
from pipeline.draws import dirichlet
from pipeline.errors import ConfigError, DataError
from pipeline.infer import batched, device_of
from pipeline.loop import Budget, EpochCallback, run_epochs
from pipeline.resume import Snapshots
from pipeline.samples import class_labels

log = logging.getLogger(__name__)
NAME = "regene"


@dataclass(frozen=True)
class DecoderConfig:
    width: int  # decoder base channel count
    steps: int  # optimizer steps in all
    batch_size: int
    lr: float  # Adam

    def validate(self) -> None:
        if self.width < 1 or self.steps < 1 or self.batch_size < 2:
            raise ConfigError("width: and steps must be >= 1, batch_size >= 2")
        if self.lr <= 0:
            raise ConfigError("lr: must be positive")


@dataclass(frozen=True)
class CombineConfig:
    k: int  # latents per convex combination (ReGene combines pairs and more)
    dirichlet_alpha: float  # symmetric Dirichlet; 1.0 = uniform on the simplex
    per_class: int  # samples of every class
    pool: Literal["correct", "labelled"]  # correct: ReGene's (correctly classified images)

    def validate(self) -> None:
        if self.k < 1 or self.per_class < 1:
            raise ConfigError("k: and per_class must be at least 1")
        if self.pool not in ("correct", "labelled"):
            raise ConfigError("pool: must be correct or labelled")
        if self.dirichlet_alpha <= 0:
            raise ConfigError("dirichlet_alpha: must be positive")


@dataclass(frozen=True)
class ReGeneConfig:
    round: str  # the classifier round whose latents are used (r0 = the baseline)
    decoder: DecoderConfig
    combine: CombineConfig

    # what the parameter gate asks of every method (pipeline.methods)
    def sample_sets(self) -> list[str]:
        return [NAME]

    def hard_counts(self) -> dict[str, int]:
        return {"combine.per_class": self.combine.per_class}

    def models(self) -> dict:
        return {}  # its encoder is a round's classifier (`round`)

    def check_data(self, facts) -> None:
        smallest = min(facts.train_per_class)
        if self.combine.k > smallest:
            raise ConfigError(
                f"combine.k: {self.combine.k} latents per combination but the smallest class "
                f"has {smallest} training images"
            )


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


def decoder_args(latent_dim: int, channels: int, image_size: int, cfg: DecoderConfig) -> dict:
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


def build_decoder(args: dict) -> Decoder:
    return Decoder(**args)


def train_decoder(
    decoder: Decoder,
    latents: torch.Tensor,
    images: torch.Tensor,
    cfg: DecoderConfig,
    gen: torch.Generator,
    on_epoch: EpochCallback | None = None,
    snapshots: Snapshots | None = None,
    accel: Accel = OFF,
) -> list[dict[str, float]]:
    """Fit decoder(latents) ~ images (MSE) with Adam; latents are fixed (the encoder is frozen)."""
    opt = numerics.adam(decoder.parameters(), cfg.lr)
    dev = device_of(decoder)
    net = training_net(decoder, accel)  # DDP, channels-last, compiled when asked (pipeline.accel)
    budget = Budget(cfg.steps, cfg.batch_size, len(latents))

    def epoch_fn(epoch: int) -> dict[str, float]:
        decoder.train()
        steps = budget.batches(epoch, torch.randperm(len(latents), generator=gen))
        total = 0.0
        for idx in steps:
            idx = idx[rows(len(idx))]  # this rank's share of the batch
            with autocast(dev, accel):  # bf16 when runtime.precision asks (pipeline.accel)
                loss = F.mse_loss(net(latents[idx].to(dev)), images[idx].to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item()
        return mean_over_ranks({"train_mse": total / len(steps)})

    history = run_epochs(
        epoch_fn,
        budget=budget,
        desc="regene decoder",
        state={"decoder": decoder, "optimizer": opt},
        snapshots=snapshots,
        gen=gen,
        on_epoch=on_epoch,
        show=("train_mse",),
    )
    decoder.eval()
    return history


def combine_latents(
    latents: torch.Tensor,
    predicted: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    cfg: CombineConfig,
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Convex combinations of k latents of correctly classified images, `per_class` each
    (`cfg.pool` labelled: of every image of the class, for a classifier too weak to get a class
    right, e.g. at toy sizes; the label guarantee then no longer holds by construction).

    latents (N, D) of real images with true `labels` (N,) and classifier predictions `predicted`
    (N,). Returns combined latents (K * n, D) and their classes (K * n,), grouped by class."""
    n = cfg.per_class
    out = []
    for c in range(num_classes):
        chosen = labels == c
        if cfg.pool == "correct":
            chosen &= predicted == c
        pool = torch.nonzero(chosen).flatten()
        if len(pool) < cfg.k:
            which = "correctly classified " if cfg.pool == "correct" else ""
            raise DataError(
                f"regene.combine.k is {cfg.k} but class {c} has only {len(pool)} {which}"
                "training images to combine; lower regene.combine.k or train the classifier longer"
            )
        pick = torch.stack(
            [pool[torch.randperm(len(pool), generator=gen)[: cfg.k]] for _ in range(n)]
        )  # (n, k) distinct images per combination
        w = dirichlet(cfg.dirichlet_alpha, n, cfg.k, gen)  # (n, k)
        out.append((w[:, :, None] * latents[pick]).sum(1))  # (n, D)
    return torch.cat(out), class_labels(num_classes, n)


@torch.no_grad()
def label_kept(
    head: nn.Linear, latents: torch.Tensor, labels: torch.Tensor, num_classes: int
) -> float:
    """Fraction of latents whose argmax over the K real logits of the linear head is their label."""
    logits = head(latents.to(head.weight.device))[:, :num_classes].cpu()
    return float((logits.argmax(1) == labels).float().mean())


def decode(decoder: Decoder, latents: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Images (N, C, S, S) in [-1, 1] on the CPU from latents (N, D)."""
    decoder.eval()
    return batched(decoder, latents, batch_size, device_of(decoder))


PASSES_PER_SAMPLE = 1  # one decoder pass a sample (the latents are the training set's)


def decoder_passes_per_image(cfg: DecoderConfig, n_train: int) -> float:
    """Decoder passes per training image over its training (its encoder's cost is the round's)."""
    return Budget(cfg.steps, cfg.batch_size, n_train).passes_per_image
