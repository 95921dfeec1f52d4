"""Sampler chains a classifier trains against: persistent ones advanced at every batch (STIC per
step, JEM) or a pool drawn once per round (STIC per round). Evaluation draws fresh chains
instead (`pipeline.eval_sets`).

A `ChainBuffer` holds N chains, each with its image, its target (one-hot for a hard chain, a
Dirichlet mix of `soft_classes` classes for a soft one), its own step size and its age (steps
since its last restart). `PersistentChains` is the `FakeSource` of per-step training: at every
training batch it draws `batch` chains, restarts a `restart` share of them from the canvas (JEM's
5% re-initialisation), runs `steps` sampler steps on the current classifier and writes them back
(JEM's replay buffer). `FixedPool` is the per-round reading: chains run once on the frozen
previous classifier, and the round trains on those fixed states.

The Gram term needs per-class mean Gram matrices of real images under the *current* classifier;
during training they are an exponential moving average over the real batches (`GramMeans`).
Everything random draws from the source's own generator, which is part of its state: a training
run resumed from a snapshot continues the chains bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from pipeline.accel import OFF, Accel
from pipeline.data import ImageSet
from pipeline.densities import ClassTerm, classifier_density, gram
from pipeline.dist import chain_rows, gather_rows, share
from pipeline.draws import dirichlet, distinct_choices
from pipeline.errors import ConfigError
from pipeline.loop import EpochCallback
from pipeline.resume import Snapshots
from pipeline.runtime import derive_seed, generator
from pipeline.samplers import (
    CanvasConfig,
    SamplerConfig,
    Trace,
    gather_run,
    run_chains,
)
from pipeline.train import FakeSource, LossConfig, TrainConfig, train_classifier


@dataclass(frozen=True)
class ChainsConfig:
    size: int  # persistent chains (JEM: 10,000 on CIFAR-10)
    batch: int  # chains drawn and advanced per training batch (the fakes of that batch)
    steps: int  # sampler steps per training batch (JEM: 20)
    restart: float  # share of drawn chains restarted from the canvas (JEM: 0.05)
    canvas: CanvasConfig  # where a new or restarted chain starts
    soft_share: float  # share of chains with soft (mixed-class) targets; 0 = hard fakes only
    soft_classes: int  # classes mixed in a soft target
    soft_alpha: float  # Dirichlet concentration of the mixing weights (1 = uniform simplex)
    gram_momentum: float  # EMA momentum of the per-class mean Gram matrices during training

    def validate(self) -> None:
        if not 0 <= self.gram_momentum < 1:
            raise ConfigError("gram_momentum: must be in [0, 1)")
        if self.size < 1 or self.batch < 1 or self.batch > self.size:
            raise ConfigError("batch: needs 1 <= batch <= size")
        if self.steps < 0:
            raise ConfigError("steps: must be >= 0")
        if not 0 <= self.restart <= 1 or not 0 <= self.soft_share < 1:
            raise ConfigError("restart: must be in [0, 1] and soft_share in [0, 1)")

        if self.soft_classes < 2 or self.soft_alpha <= 0:
            raise ConfigError("soft_classes: must be >= 2 and soft_alpha > 0")


def chain_targets(
    n: int, num_classes: int, soft_share: float, soft_classes: int, soft_alpha: float,
    gen: torch.Generator,
) -> torch.Tensor:  # fmt: skip
    """(n, K) targets: round(n * (1 - soft_share)) one-hot rows cycling through the classes, then
    soft rows, each a Dirichlet(soft_alpha) mix of `soft_classes` distinct random classes."""
    n_soft = round(n * soft_share)
    hard = F.one_hot(torch.arange(n - n_soft) % num_classes, num_classes).float()
    if n_soft == 0:
        return hard
    if soft_classes > num_classes:
        raise ConfigError(f"soft_classes: {soft_classes} > the {num_classes} classes")
    classes = distinct_choices(n_soft, num_classes, soft_classes, gen)  # (n_soft, m)
    soft = torch.zeros(n_soft, num_classes)
    soft.scatter_(1, classes, dirichlet(soft_alpha, n_soft, soft_classes, gen))
    return torch.cat([hard, soft])


class ChainBuffer:
    """N chains: images (N, C, H, W) in [-1, 1], targets (N, K), log step sizes (N,), ages (N,)."""

    def __init__(self, images, targets, log_eps, age):
        self.images, self.targets, self.log_eps, self.age = images, targets, log_eps, age

    @staticmethod
    def new(
        cfg: ChainsConfig,
        num_classes: int,
        shape: tuple[int, int, int],
        step_size: float,
        gen: torch.Generator,
    ) -> ChainBuffer:
        targets = chain_targets(
            cfg.size, num_classes, cfg.soft_share, cfg.soft_classes, cfg.soft_alpha, gen
        )
        log_eps = torch.full((cfg.size,), math.log(step_size))
        return ChainBuffer(
            cfg.canvas.draw((cfg.size, *shape), gen), targets, log_eps, torch.zeros(cfg.size).long()
        )

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {
            "images": self.images,
            "targets": self.targets,
            "log_eps": self.log_eps,
            "age": self.age,
        }

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.images, self.targets = state["images"].clone(), state["targets"].clone()
        self.log_eps, self.age = state["log_eps"].clone(), state["age"].clone()

    @property
    def hard(self) -> torch.Tensor:
        """(N,) bool: chains with one-hot targets."""
        return self.targets.max(1).values > 1 - 1e-6

    def learned_log_eps(self) -> torch.Tensor:
        """(K,) median log step size of the hard chains of each class (the whole buffer's
        median for a class with none): what evaluation chains start from."""
        k = self.targets.shape[1]
        labels, hard = self.targets.argmax(1), self.hard
        overall = self.log_eps.median()
        return torch.stack(
            [
                self.log_eps[hard & (labels == c)].median() if (hard & (labels == c)).any()
                else overall
                for c in range(k)
            ]
        )  # fmt: skip


class GramMeans:
    """Per-class mean Gram matrices {layer: (K, C, C)} of real images under the current
    classifier, as an exponential moving average over training batches (momentum m: the new
    batch's class means get weight 1 - m; a class absent from a batch keeps its value)."""

    def __init__(self, layers: tuple[str, ...], num_classes: int, momentum: float):
        self.layers, self.k, self.m = layers, num_classes, momentum
        self.means: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def update(self, maps: Mapping[str, torch.Tensor], labels: torch.Tensor) -> None:
        onehot = F.one_hot(labels, self.k).float()  # (B, K)
        counts = onehot.sum(0)  # (K,)
        present = (counts > 0).view(-1, 1, 1)
        for name in self.layers:
            g = gram(maps[name].float())  # (B, C, C)
            batch = torch.einsum("bk,bcd->kcd", onehot, g) / counts.clamp_min(1).view(-1, 1, 1)
            old = self.means.get(name)
            new = (
                batch
                if old is None
                else torch.where(present, self.m * old + (1 - self.m) * batch, old)
            )
            self.means[name] = new

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.means)

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.means = {k: v.clone() for k, v in state.items()}


@torch.no_grad()
def class_mean_grams(
    model: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    layers: tuple[str, ...],
    batch_size: int = 256,
) -> dict[str, torch.Tensor]:
    """Exact per-class mean Gram matrices {layer: (K, C_l, C_l)} of real images (float, [-1, 1])."""
    unknown = [n for n in layers if n not in model.map_names]
    if unknown:
        raise ConfigError(
            f"sampler.gram_layers: {unknown} not among the model's maps {model.map_names}"
        )
    model.eval()
    device = next(model.parameters()).device
    counts = torch.bincount(labels, minlength=num_classes).double()
    if (counts == 0).any():
        raise ValueError("every class needs real images for its mean Gram matrix")
    onehot = F.one_hot(labels, num_classes).double()  # (N, K)
    sums: dict[str, torch.Tensor] = {}
    for start in range(0, len(images), batch_size):
        _, maps = model.forward_features(images[start : start + batch_size].to(device))
        for name in layers:
            g = gram(maps[name]).double().cpu()  # (B, C, C)
            part = torch.einsum("bk,bcd->kcd", onehot[start : start + batch_size], g)
            sums[name] = sums[name] + part if name in sums else part
    return {name: (s / counts.view(-1, 1, 1)).float() for name, s in sums.items()}


class PersistentChains:
    """The per-step `FakeSource`: a replay buffer of chains advanced at every training batch."""

    def __init__(
        self,
        buffer: ChainBuffer,
        chains: ChainsConfig,
        sampler: SamplerConfig,
        term: ClassTerm,
        gen: torch.Generator,
        grams: GramMeans | None = None,
        where: str = "chains",
    ):
        self.buffer, self.chains, self.sampler, self.term = buffer, chains, sampler, term
        self.gen, self.grams, self.where = gen, grams, where
        self.draws = 0
        self.initial_log_eps = math.log(sampler.step_size)

    def draw(self, model, x_real, y_real):
        """Advance a batch of chains one draw; under DDP each rank advances its share of the batch
        (the buffer stays the same on every rank) and returns its share of the fakes."""
        device = x_real.device
        if self.grams is not None:  # the whole batch's real images, on every rank
            x_all, y_all = gather_rows(x_real), gather_rows(y_real)
            model.eval()
            with torch.no_grad():
                _, maps = model.forward_features(x_all)
            self.grams.update(maps, y_all)
        idx = torch.randperm(len(self.buffer), generator=self.gen)[: self.chains.batch]
        fresh = torch.rand(len(idx), generator=self.gen) < self.chains.restart
        b = self.buffer
        if fresh.any():
            n, shape = int(fresh.sum()), tuple(b.images.shape[1:])
            b.images[idx[fresh]] = self.chains.canvas.draw((n, *shape), self.gen)
            b.log_eps[idx[fresh]] = self.initial_log_eps
            b.age[idx[fresh]] = 0
        part = chain_rows(len(idx))
        mine = share(part)
        targets = b.targets[idx]
        model.eval()
        fn = classifier_density(
            model,
            targets[mine].to(device),
            self.sampler,
            self.term,
            self.grams.means if self.grams is not None else None,
        )
        self.draws += 1
        run = run_chains(
            fn,
            b.images[idx[mine]].to(device),
            b.log_eps[idx[mine]],
            self.sampler,
            self.gen,
            steps=self.chains.steps,
            where=f"{self.where}, draw {self.draws}",
            rows=part,
        )
        whole = gather_run(run, part)
        b.images[idx], b.log_eps[idx] = whole.x.detach().cpu(), whole.log_eps.cpu()
        b.age[idx] += self.chains.steps
        diag = {
            "chain_acceptance": whole.accepted.float().mean().item() / max(1, self.chains.steps),
            "chain_step_size": whole.log_eps.exp().mean().item(),
        }
        return run.x.detach(), targets[mine], diag

    def state_dict(self) -> dict:
        state = {"buffer": self.buffer.state_dict(), "gen": self.gen.get_state()}
        if self.grams is not None:
            state["grams"] = self.grams.state_dict()
        return state

    def load_state_dict(self, state: Mapping) -> None:
        self.buffer.load_state_dict(state["buffer"])
        self.gen.set_state(state["gen"])
        if self.grams is not None:
            self.grams.load_state_dict(state["grams"])


class FixedPool:
    """The per-round `FakeSource`: fixed fakes (drawn once, before the round), sampled at random."""

    def __init__(
        self, images: torch.Tensor, targets: torch.Tensor, batch: int, gen: torch.Generator
    ):
        self.images, self.targets, self.batch, self.gen = images, targets, batch, gen

    def draw(self, model, x_real, y_real):
        idx = torch.randint(len(self.images), (self.batch,), generator=self.gen)
        idx = idx[share(chain_rows(self.batch))]  # this rank's share of the batch
        return self.images[idx].to(x_real.device), self.targets[idx], {}

    def state_dict(self) -> dict:
        return {"gen": self.gen.get_state()}

    def load_state_dict(self, state: Mapping) -> None:
        self.gen.set_state(state["gen"])


# ---------------------------------------------------------------- training against chains


Synthesis = Literal["per_step", "per_round"]


@dataclass(frozen=True)
class Drawing:
    """How an evaluation set is drawn from a classifier: sampler, target, canvas, soft mixes."""

    sampler: SamplerConfig
    term: ClassTerm
    canvas: CanvasConfig
    soft_classes: int
    soft_alpha: float


@dataclass(frozen=True)
class ChainTraining:
    """Everything a classifier trained against its own sampler's chains needs (STIC, JEM)."""

    train: TrainConfig
    loss: LossConfig
    chains: ChainsConfig
    sampler: SamplerConfig

    @property
    def drawing(self) -> Drawing:
        """Evaluation draws as training did: same sampler, target and canvas."""
        c = self.chains
        return Drawing(self.sampler, self.loss.class_term, c.canvas, c.soft_classes, c.soft_alpha)


def exact_grams(model: torch.nn.Module, data: ImageSet, sampler: SamplerConfig) -> GramMeans | None:
    """Exact per-class mean Grams of `data` under `model` (None when the Gram term is off)."""
    return start_grams(model, data, sampler, momentum=0.0)


def start_grams(
    model: torch.nn.Module, data: ImageSet, sampler: SamplerConfig, momentum: float
) -> GramMeans | None:
    """Gram means initialised exactly under `model` (None when the Gram term is off)."""
    if sampler.gram_weight == 0:
        return None
    grams = GramMeans(sampler.gram_layers, data.num_classes, momentum)
    grams.means = class_mean_grams(
        model, data.float_images(), data.labels, data.num_classes, sampler.gram_layers
    )
    return grams


def advance_all(
    buffer: ChainBuffer,
    model: torch.nn.Module,
    setting: ChainTraining,
    steps: int,
    gen: torch.Generator,
    grams: GramMeans | None,
    where: str,
    device: torch.device,
) -> Trace:
    """Every chain of `buffer` runs `steps` steps on a fixed `model` (per-round synthesis)."""
    model.eval()
    trace = Trace()
    for start in range(0, len(buffer), setting.chains.batch):
        idx = torch.arange(start, min(start + setting.chains.batch, len(buffer)))
        part = chain_rows(len(idx))
        mine = idx[share(part)]
        fn = classifier_density(
            model,
            buffer.targets[mine].to(device),
            setting.sampler,
            setting.loss.class_term,
            grams.means if grams is not None else None,
        )
        run = run_chains(
            fn, buffer.images[mine].to(device), buffer.log_eps[mine], setting.sampler, gen,
            steps=steps, where=f"{where}, chains {start}..{int(idx[-1])}", rows=part,
        )  # fmt: skip
        run = gather_run(run, part)
        buffer.images[idx], buffer.log_eps[idx] = run.x.cpu(), run.log_eps.cpu()
        buffer.age[idx] += steps
        trace.extend(run.trace)
    return trace


def train_against_chains(
    model: torch.nn.Module,
    train: ImageSet,
    setting: ChainTraining,
    synthesis: Synthesis,
    *,
    device: torch.device,
    seed: int,
    where: str,
    test: ImageSet | None = None,
    buffer: ChainBuffer | None = None,
    per_round_steps: int = 0,
    snapshots: Snapshots | None = None,
    on_epoch: EpochCallback | None = None,
    accel: Accel = OFF,
) -> tuple[list[dict[str, float]], ChainBuffer]:
    """Train `model` in place against its own chains; returns (history, the chains after it).

    `buffer`: chains to continue (a previous round's), else new ones from the canvas.
    per_step: the chains advance `chains.steps` steps at every batch on the current classifier.
    per_round: before training, every chain runs `per_round_steps` steps on the classifier as it
    is (the previous round's), and the round trains on those fixed states."""
    gen = generator(seed, "chains")
    if buffer is None:
        buffer = ChainBuffer.new(
            setting.chains, train.num_classes, train.shape, setting.sampler.step_size, gen
        )
    model.to(device)
    grams = start_grams(model, train, setting.sampler, setting.chains.gram_momentum)
    source: FakeSource
    if synthesis == "per_step":
        source = PersistentChains(
            buffer, setting.chains, setting.sampler, setting.loss.class_term, gen, grams, where
        )
    else:
        advance_all(buffer, model, setting, per_round_steps, gen, grams, where, device)
        source = FixedPool(buffer.images, buffer.targets, setting.chains.batch, gen)
    history = train_classifier(
        model,
        train,
        setting.train,
        device=device,
        seed=derive_seed(seed, "train"),
        where=where,
        test=test,
        fakes=source,
        loss=setting.loss,
        snapshots=snapshots,
        on_epoch=on_epoch,
        accel=accel,
    )
    return history, buffer


def train_passes(
    setting: ChainTraining, n_train: int, synthesis: Synthesis, per_round_steps: int
) -> float:
    """Forward passes of one image through the classifier (each with its backward) per training
    image over a whole run: real batch, mixup batch, fakes, and every sampler step of every chain
    (per step), or the per-round synthesis of every chain. A machine-independent cost."""
    t, c = setting.train, setting.chains
    mix = 1 if t.mixup_alpha > 0 and t.mixup_weight > 0 else 0
    fakes = c.batch * (1 + (c.steps if synthesis == "per_step" else 0))
    total = t.steps * (t.batch_size * (1 + mix) + fakes)
    if synthesis == "per_round":
        total += c.size * per_round_steps
    return total / n_train
