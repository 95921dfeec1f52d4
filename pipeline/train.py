"""Classifier training: real data + mixup (vicinal risk), optionally + synthesized fakes.

One loop serves the judge, the baseline (round r0), every STIC round and JEM:
  loss = CE(real) + beta_mix * softCE(mixup) + beta_fake * fake_term    (docs/methods.md: STIC, JEM)
Fakes come from a `FakeSource` (pipeline.chains: persistent chains advanced at every batch, or a
fixed pool drawn once per round) and enter through `fake_term`:
- `extra_class` (STIC): the classifier has K+1 outputs; every fake is labelled "fake" (index K):
  CE(f(x_fake), K). Its sampler target is log softmax over the K+1 outputs.
- `energy` (JEM): -(mean E_real - mean E_fake) with E = -f(x)[y] (`energy: class`, JEM's
  log p(x, y)) or E = -logsumexp_k f(x)_k (`energy: logsumexp`, JEM's log p(x)); a soft fake's
  energy is -sum_k t_k f(x)_k. `energy_l2` adds l2 * (mean E_real^2 + mean E_fake^2), which bounds
  the loss below (IGEBM, Du & Mordatch 2019); the real term is counted once per batch.

Resumable through `pipeline.loop.run_epochs`; the fake source is part of the snapshot.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

import torch
import torch.nn.functional as F

from pipeline import numerics
from pipeline.accel import OFF, Accel, autocast, training_net
from pipeline.data import ImageSet
from pipeline.densities import ClassTerm
from pipeline.dist import mean_over_ranks, reseed_rank, rows
from pipeline.errors import ConfigError, check_finite
from pipeline.infer import logits_of
from pipeline.loop import Budget, EpochCallback, run_epochs
from pipeline.models import ModelConfig
from pipeline.resume import Snapshots

FakeMode = Literal["extra_class", "energy"]
EnergyKind = Literal["class", "logsumexp"]
SamplerTarget = Literal["matched", "logit"]


@dataclass(frozen=True)
class TrainConfig:
    steps: int  # optimizer steps in all (a budget that does not grow with the training set)
    batch_size: int
    lr: float
    optimizer: Literal["adam", "sgd"]
    weight_decay: float
    momentum: float  # sgd only
    lr_schedule: Literal["constant", "cosine"]
    mixup_alpha: float  # lambda ~ Beta(alpha, alpha) (Zhang et al. 2018); 0 turns mixup off
    mixup_weight: float  # beta_mix in the STIC loss
    data_noise: float  # std of Gaussian noise added to real images (JEM: 0.03); 0 = none
    checkpoint_every: int  # passes over the training set between resume snapshots

    def validate(self) -> None:
        if self.steps < 1:
            raise ConfigError("steps: must be at least 1")
        if self.batch_size < 2:
            raise ConfigError("batch_size: must be at least 2")
        if self.lr <= 0:
            raise ConfigError("lr: must be positive")
        if self.mixup_alpha < 0 or self.mixup_weight < 0:
            raise ConfigError("mixup_alpha: and mixup_weight must be >= 0")
        if self.data_noise < 0:
            raise ConfigError("data_noise: must be >= 0")
        if self.weight_decay < 0:
            raise ConfigError("weight_decay: must be >= 0")
        if not 0 <= self.momentum < 1:
            raise ConfigError("momentum: must be in [0, 1)")
        if self.checkpoint_every < 1:
            raise ConfigError("checkpoint_every: must be at least 1")


@dataclass(frozen=True)
class ClassifierConfig:
    """A classifier trained on real data: architecture + recipe (the baseline r0, the judges)."""

    model: ModelConfig
    train: TrainConfig


@dataclass(frozen=True)
class JudgeConfig:
    """An evaluation classifier: never used for synthesis, with its own seed."""

    seed: int  # apart from runtime.seed: a judge must not share the synthesizer's randomness
    model: ModelConfig
    train: TrainConfig


@dataclass(frozen=True)
class LossConfig:
    fake_mode: FakeMode  # extra_class: K+1 outputs, fakes -> class K (STIC); energy: JEM's term
    fake_weight: float  # beta_fake; 0 trains like the baseline loop while the chains still run
    energy: EnergyKind  # energy mode: class-conditional logit (p(x, y)) or logsumexp (p(x))
    energy_l2: float  # energy mode: weight of the squared energies (bounds the loss); 0 = JEM
    target: SamplerTarget  # matched: the sampler ascends the term the loss shapes | logit: the
    # class logit whatever the loss (STIC: "gradient ascent with respect to the class logits")

    def validate(self) -> None:
        if self.fake_weight < 0 or self.energy_l2 < 0:
            raise ConfigError("fake_weight: and energy_l2 must be >= 0")

    def outputs(self, num_classes: int) -> int:
        """Outputs the classifier needs: K + 1 with the extra fake class, else K."""
        return num_classes + 1 if self.fake_mode == "extra_class" else num_classes

    @property
    def class_term(self) -> ClassTerm:
        """What the sampler ascends: with `target: matched`, what the loss shapes (log softmax
        over K+1 for the fake class, the logit or logsumexp for energies); else the class logit."""
        if self.target == "logit":
            return "logit"
        if self.fake_mode == "extra_class":
            return "log_softmax"
        return "logit" if self.energy == "class" else "logsumexp"


class FakeSource(Protocol):
    """Where a training batch's fakes come from (pipeline.chains)."""

    def draw(
        self, model: torch.nn.Module, x_real: torch.Tensor, y_real: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """(fakes (B, C, H, W) detached, their targets (B, K), diagnostics to average)."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: Mapping) -> None: ...


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -sum_k t_k log softmax(logits)_k; targets (B, K') padded to logits."""
    if targets.shape[1] < logits.shape[1]:
        targets = F.pad(targets, (0, logits.shape[1] - targets.shape[1]))
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def mixup(
    x: torch.Tensor, y: torch.Tensor, num_classes: int, alpha: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix each image with a random partner; returns (images, soft targets (B, K))."""
    lam = torch.distributions.Beta(alpha, alpha).sample((x.shape[0],)).to(x.device)  # (B,)
    perm = torch.randperm(x.shape[0], device=x.device)
    onehot = F.one_hot(y, num_classes).float()
    lx = lam.view(-1, 1, 1, 1)
    return lx * x + (1 - lx) * x[perm], lam[:, None] * onehot + (1 - lam[:, None]) * onehot[perm]


def energies(logits: torch.Tensor, targets: torch.Tensor, kind: EnergyKind) -> torch.Tensor:
    """-E per image (B,): sum_k t_k f(x)_k over the K = targets.shape[1] real classes, or
    logsumexp_k f(x)_k."""
    k = targets.shape[1]
    if kind == "logsumexp":
        return torch.logsumexp(logits[:, :k], dim=1)
    return (targets * logits[:, :k]).sum(dim=1)


def fake_term(
    model: torch.nn.Module,
    real_logits: torch.Tensor,
    real_targets: torch.Tensor,
    x_fake: torch.Tensor,
    t_fake: torch.Tensor,
    cfg: LossConfig,
) -> torch.Tensor:
    """beta_fake times the fake part of the loss for one batch (module docstring)."""
    logits = model(x_fake)
    k = t_fake.shape[1]
    if cfg.fake_mode == "extra_class":
        target = torch.full((x_fake.shape[0],), k, device=x_fake.device)
        return cfg.fake_weight * F.cross_entropy(logits, target)
    neg_real = energies(real_logits, real_targets, cfg.energy)  # -E(x_real)
    neg_fake = energies(logits, t_fake, cfg.energy)  # -E(x_fake)
    term = -(neg_real.mean() - neg_fake.mean())
    if cfg.energy_l2 > 0:
        term = term + cfg.energy_l2 * (neg_real.pow(2).mean() + neg_fake.pow(2).mean())
    return cfg.fake_weight * term


def evaluate_classifier(
    model: torch.nn.Module, data: ImageSet, batch_size: int = 256
) -> dict[str, float]:
    """Accuracy (argmax over the real classes only) and mean cross-entropy on `data`."""
    logits = logits_of(model, data.float_images(), batch_size)
    k = data.num_classes
    loss_sum = sum(
        F.cross_entropy(
            logits[i : i + batch_size], data.labels[i : i + batch_size], reduction="sum"
        ).item()
        for i in range(0, len(data), batch_size)
    )
    correct = (logits[:, :k].argmax(1) == data.labels).sum().item()
    return {"accuracy": correct / len(data), "loss": loss_sum / len(data)}


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    return numerics.adam(model.parameters(), cfg.lr, weight_decay=cfg.weight_decay)


def lr_factor(cfg: TrainConfig, progress: float) -> float:
    """The learning rate's factor at `progress` (share of the budget done, 0..1)."""
    if cfg.lr_schedule == "constant":
        return 1.0
    return 0.5 * (1 + math.cos(math.pi * progress))


def train_classifier(
    model: torch.nn.Module,
    train: ImageSet,
    cfg: TrainConfig,
    *,
    device: torch.device,
    seed: int,
    where: str,
    test: ImageSet | None = None,
    fakes: FakeSource | None = None,
    loss: LossConfig | None = None,
    snapshots: Snapshots | None = None,
    on_epoch: EpochCallback | None = None,
    accel: Accel = OFF,
) -> list[dict[str, float]]:
    """Train `model` in place; returns per-epoch metrics. `where` names the run in errors;
    `accel` the GPU-path options of its forward passes (pipeline.accel).

    Each epoch reseeds the global RNG (mixup, data noise, dropout, shuffling) from (seed, epoch);
    the fake source draws from its own generator, so switching it on changes nothing else.
    Under torchrun (pipeline.dist) each rank trains a DDP replica on its share of every batch."""
    if (fakes is None) != (loss is None):
        raise ValueError("fakes and loss go together")
    model.to(device)
    net = training_net(model, accel)  # DDP, channels-last, compiled when asked (pipeline.accel)
    opt = make_optimizer(model, cfg)
    state = {"model": model, "optimizer": opt} | ({"fakes": fakes} if fakes is not None else {})
    k = train.num_classes
    x_all, y_all = train.float_images(), train.labels
    budget = Budget(cfg.steps, cfg.batch_size, len(train))

    def epoch_fn(epoch: int) -> dict[str, float]:
        for group in opt.param_groups:
            group["lr"] = cfg.lr * lr_factor(cfg, budget.progress(epoch))
        model.train()
        sums = {"loss": 0.0, "real_ce": 0.0, "mixup_ce": 0.0, "fake": 0.0}
        steps = budget.batches(epoch, torch.randperm(len(train)))
        reseed_rank(seed, epoch)
        for step, idx in enumerate(steps):
            idx = idx[rows(len(idx))]  # this rank's share of the batch
            x, y = x_all[idx].to(device), y_all[idx].to(device)
            if cfg.data_noise > 0:
                x = x + cfg.data_noise * torch.randn_like(x)
            with autocast(device, accel):  # bf16 when runtime.precision asks (pipeline.accel)
                logits = net(x)
                real_ce = F.cross_entropy(logits, y)
                total = real_ce
                mix_ce = torch.zeros(())
                if cfg.mixup_alpha > 0 and cfg.mixup_weight > 0:
                    xm, tm = mixup(x, y, k, cfg.mixup_alpha)
                    mix_ce = soft_cross_entropy(net(xm), tm)
                    total = total + cfg.mixup_weight * mix_ce
            fterm = torch.zeros(())
            if fakes is not None and loss is not None:
                x_fake, t_fake, diag = fakes.draw(model, x, y)  # the sampler runs in fp32
                model.train()
                onehot = F.one_hot(y, k).float()
                with autocast(device, accel):
                    fterm = fake_term(net, logits, onehot, x_fake, t_fake.to(device), loss)
                total = total + fterm
                for key, v in diag.items():
                    sums[key] = sums.get(key, 0.0) + v
            check_finite(
                total.detach(), f"{where}: training loss at epoch {epoch + 1}, step {step}"
            )
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            sums["loss"] += total.item()
            sums["real_ce"] += real_ce.item()
            sums["mixup_ce"] += float(mix_ce.detach())
            sums["fake"] += float(fterm.detach())
        row = mean_over_ranks({f"train_{key}": v / len(steps) for key, v in sums.items()})
        if test is not None:
            row |= {f"test_{key}": v for key, v in evaluate_classifier(model, test).items()}
        return row

    history = run_epochs(
        epoch_fn,
        budget=budget,
        desc=where,
        state=state,
        snapshots=snapshots,
        reseed=seed,
        on_epoch=on_epoch,
        show=("train_loss", "test_accuracy"),
    )
    model.eval()
    return history
