"""Classifier training: real data + mixup (vicinal risk), optionally + STIC fakes.

One loop serves the judge, the baseline (round r0) and every STIC retraining round:
  loss = CE(real) + beta_mix * softCE(mixup) + beta_fake * fake_term          (PAPERS.md, sec. 1)
with fake_term = CE(hard fakes -> fake class) + CE(soft fakes -> fake class) in `extra_class` mode,
or JEM's contrastive energy term mean E(x_real) - mean E(x_fake) in `energy` mode.

Resumable: every `checkpoint_every` epochs the full training state goes to `resume_path`
(atomically); a restart with the same fingerprint continues from there and, because every epoch
reseeds from (seed, epoch), ends bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from tqdm import tqdm

from pipeline.config import ConfigError
from pipeline.data import ImageSet
from pipeline.resume import Snapshots
from pipeline.runtime import derive_seed

log = logging.getLogger(__name__)

FakeMode = Literal["extra_class", "energy"]


class NumericalError(RuntimeError):
    """A NaN/inf appeared; the message names where (stage/round, epoch, step) and the value."""


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    batch_size: int
    lr: float
    optimizer: Literal["adam", "sgd"] = "adam"
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    lr_schedule: Literal["constant", "cosine"] = "cosine"
    mixup_alpha: float = 0.2  # lambda ~ Beta(alpha, alpha) (Zhang et al. 2018); 0 turns mixup off
    mixup_weight: float = 1.0  # beta_mix in the STIC loss
    checkpoint_every: int = 1  # epochs between resume checkpoints

    def validate(self) -> None:
        if self.epochs < 1:
            raise ConfigError("epochs: must be at least 1")
        if self.batch_size < 2:
            raise ConfigError("batch_size: must be at least 2")
        if self.lr <= 0:
            raise ConfigError("lr: must be positive")
        if self.mixup_alpha < 0 or self.mixup_weight < 0:
            raise ConfigError("mixup_alpha: and mixup_weight must be >= 0")
        if self.checkpoint_every < 1:
            raise ConfigError("checkpoint_every: must be at least 1")


@dataclass(frozen=True)
class Fakes:
    """Synthesized images used as negatives when retraining (STIC)."""

    images: torch.Tensor  # (N, C, H, W) float in [-1, 1]
    hard: torch.Tensor  # (N,) bool: True for one-hot-target fakes, False for mixed-class fakes

    def __len__(self) -> int:
        return int(self.hard.shape[0])


@dataclass(frozen=True)
class FakeLoss:
    mode: FakeMode
    weight: float  # beta_fake
    num_real_classes: int  # K; in extra_class mode the fake class is index K


def check_finite(value: torch.Tensor, where: str) -> None:
    if not torch.isfinite(value).all():
        bad = value[~torch.isfinite(value)].flatten()[0].item()
        raise NumericalError(f"{where}: non-finite value {bad}")


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -sum_k t_k log softmax(logits)_k; targets (B, K') padded to logits."""
    if targets.shape[1] < logits.shape[1]:
        targets = F.pad(targets, (0, logits.shape[1] - targets.shape[1]))
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def energy(logits: torch.Tensor, num_real_classes: int) -> torch.Tensor:
    """E(x) = -logsumexp_k f(x)_k over the real classes (JEM)."""
    return -torch.logsumexp(logits[:, :num_real_classes], dim=1)


def mixup(
    x: torch.Tensor, y: torch.Tensor, num_classes: int, alpha: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix each image with a random partner; returns (images, soft targets (B, K))."""
    lam = torch.distributions.Beta(alpha, alpha).sample((x.shape[0],)).to(x.device)  # (B,)
    perm = torch.randperm(x.shape[0], device=x.device)
    onehot = F.one_hot(y, num_classes).float()
    lx = lam.view(-1, 1, 1, 1)
    return lx * x + (1 - lx) * x[perm], lam[:, None] * onehot + (1 - lam[:, None]) * onehot[perm]


def fake_term(
    model: torch.nn.Module, real_logits: torch.Tensor, fakes: list[torch.Tensor], spec: FakeLoss
) -> torch.Tensor:
    """The fake part of the STIC loss for one batch (`fakes`: one tensor per kind, hard/soft)."""
    total = real_logits.new_zeros(())
    for x_fake in fakes:
        logits = model(x_fake)
        if spec.mode == "extra_class":
            target = torch.full((x_fake.shape[0],), spec.num_real_classes, device=x_fake.device)
            total = total + F.cross_entropy(logits, target)
        else:
            k = spec.num_real_classes
            total = total + energy(real_logits, k).mean() - energy(logits, k).mean()
    return spec.weight * total


@torch.no_grad()
def evaluate_classifier(
    model: torch.nn.Module, data: ImageSet, device: torch.device, batch_size: int = 256
) -> dict[str, float]:
    """Accuracy (argmax over the real classes only) and mean cross-entropy on `data`."""
    model.eval()
    k = data.num_classes
    correct, loss_sum = 0, 0.0
    for start in range(0, len(data), batch_size):
        x = data.float_images()[start : start + batch_size].to(device)
        y = data.labels[start : start + batch_size].to(device)
        logits = model(x)
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits[:, :k].argmax(1) == y).sum().item()
    return {"accuracy": correct / len(data), "loss": loss_sum / len(data)}


def _optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def _lr_factor(cfg: TrainConfig, epoch: int) -> float:
    if cfg.lr_schedule == "constant":
        return 1.0
    return 0.5 * (1 + math.cos(math.pi * epoch / cfg.epochs))


EpochCallback = Callable[[int, dict[str, float]], None]


def train_classifier(
    model: torch.nn.Module,
    train: ImageSet,
    cfg: TrainConfig,
    *,
    device: torch.device,
    seed: int,
    where: str,
    test: ImageSet | None = None,
    fakes: Fakes | None = None,
    fake_loss: FakeLoss | None = None,
    resume_path: Path | None = None,
    fingerprint: str = "",
    on_epoch: EpochCallback | None = None,
) -> list[dict[str, float]]:
    """Train `model` in place; returns per-epoch metrics. `where` names the run in errors."""
    model.to(device)
    opt = _optimizer(model, cfg)
    snapshots = Snapshots(resume_path, fingerprint, cfg.checkpoint_every, where)
    state = {"model": model, "optimizer": opt}
    start_epoch, history = snapshots.restore(state)

    k = train.num_classes
    x_all, y_all = train.float_images(), train.labels
    groups = []
    if fakes is not None and len(fakes) > 0:
        groups = [fakes.images[fakes.hard], fakes.images[~fakes.hard]]
        groups = [g for g in groups if len(g) > 0]
    steps = max(1, len(train) // cfg.batch_size)
    bar = tqdm(
        range(start_epoch, cfg.epochs),
        desc=where,
        initial=start_epoch,
        total=cfg.epochs,
        unit="epoch",
        leave=False,
        mininterval=1.0,
        disable=None,
    )
    for epoch in bar:
        # Every epoch reseeds from (seed, epoch) so a resumed run replays the same randomness.
        torch.manual_seed(derive_seed(seed, "epoch", epoch))
        for group in opt.param_groups:
            group["lr"] = cfg.lr * _lr_factor(cfg, epoch)
        model.train()
        t0, sums = time.perf_counter(), {"loss": 0.0, "real_ce": 0.0, "mixup_ce": 0.0, "fake": 0.0}
        perm = torch.randperm(len(train))
        for step in range(steps):
            idx = perm[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            x, y = x_all[idx].to(device), y_all[idx].to(device)
            logits = model(x)
            real_ce = F.cross_entropy(logits, y)
            loss = real_ce
            mix_ce = torch.zeros(())
            if cfg.mixup_alpha > 0 and cfg.mixup_weight > 0:
                xm, tm = mixup(x, y, k, cfg.mixup_alpha)
                mix_ce = soft_cross_entropy(model(xm), tm)
                loss = loss + cfg.mixup_weight * mix_ce
            fterm = torch.zeros(())
            if groups and fake_loss is not None:
                per = max(1, cfg.batch_size // len(groups))
                batches = [g[torch.randint(len(g), (per,))].to(device) for g in groups]
                fterm = fake_term(model, logits, batches, fake_loss)
                loss = loss + fterm
            check_finite(loss.detach(), f"{where}: training loss at epoch {epoch + 1}, step {step}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sums["loss"] += loss.item()
            sums["real_ce"] += real_ce.item()
            sums["mixup_ce"] += float(mix_ce.detach())
            sums["fake"] += float(fterm.detach())
        row = {f"train_{k_}": v / steps for k_, v in sums.items()}
        row["epoch_seconds"] = time.perf_counter() - t0
        if test is not None:
            row.update(
                {f"test_{k_}": v for k_, v in evaluate_classifier(model, test, device).items()}
            )
        history.append(row)
        bar.set_postfix(
            {k_: f"{v:.3f}" for k_, v in row.items() if k_ in ("train_loss", "test_accuracy")}
        )
        (log.info if bar.disable else log.debug)(
            "%s epoch %d/%d %s",
            where,
            epoch + 1,
            cfg.epochs,
            " ".join(f"{k_}={v:.4f}" for k_, v in row.items()),
        )
        if on_epoch is not None:
            on_epoch(epoch, row)
        snapshots.save(epoch + 1, cfg.epochs, state, history)
    bar.close()
    model.eval()
    snapshots.finish()
    return history
