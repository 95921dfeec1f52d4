"""STIC rounds (PAPERS.md sec. 1): synthesize hard and soft fakes with GRMALA, retrain on them.

Round rK (K >= 1) reads round `prev`'s classifier: it computes the per-class mean Gram matrices of
real training images with that classifier, draws hard fakes (one-hot targets, every class) and soft
fakes (random convex mixes of `soft_classes` classes), and then retrains a copy of the classifier on
real + mixup + fakes (`pipeline.train.train_classifier` with `Fakes`/`FakeLoss`). The rounds form a
chain declared in params (`rounds: {r1: {prev: r0}, r2: {prev: r1}}`); `validate_rounds` refuses a
broken one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch

from pipeline.config import ConfigError, from_dict, to_dict
from pipeline.data import ImageSet, to_float, to_uint8
from pipeline.models import Classifier, expand_outputs
from pipeline.samplers import GRMALAConfig, Trace, gram, sample
from pipeline.samples import SampleSet
from pipeline.train import FakeLoss, FakeMode, Fakes, TrainConfig

FakeHistory = Literal["last", "all"]
ROUND_NAME = re.compile(r"^r[1-9][0-9]*$")
BASE_ROUND = "r0"  # the baseline classifier (stage `baseline`)
METHOD = "stic"

# per-round override values: the value types a GRMALAConfig field can take (bool first, so that
# true stays a bool and 3 stays an int when coerced; the merged result is re-checked strictly)
OverrideValue = bool | int | float | str | tuple[str, ...]


@dataclass(frozen=True)
class SynthesisConfig:
    hard_per_class: int = 20  # hard fakes (one-hot targets) per class
    soft: int = 100  # soft fakes in all (random mixes of classes); 0 turns soft fakes off
    soft_classes: int = 2  # classes mixed in each soft target
    soft_alpha: float = 1.0  # Dirichlet concentration of the mixing weights (1 = uniform simplex)
    chains: int = 512  # chains sampled at once (memory bound; results do not depend on it)

    def validate(self) -> None:
        if self.hard_per_class < 1:
            raise ConfigError("hard_per_class: must be at least 1")
        if self.soft < 0:
            raise ConfigError("soft: must be >= 0")
        if self.soft_classes < 2:
            raise ConfigError("soft_classes: must be at least 2 (a mix of classes)")
        if self.soft_alpha <= 0:
            raise ConfigError("soft_alpha: must be positive")
        if self.chains < 1:
            raise ConfigError("chains: must be at least 1")


@dataclass(frozen=True)
class StiCConfig:
    sampler: GRMALAConfig
    synthesis: SynthesisConfig
    retrain: TrainConfig  # each round starts from the previous round's weights
    fake_mode: FakeMode = "extra_class"  # extra_class: K+1 outputs, fakes -> class K; energy: JEM
    fake_weight: float = 1.0  # beta_fake
    fake_history: FakeHistory = "last"  # fakes of the last round only, or of all earlier rounds

    def validate(self) -> None:
        if self.fake_weight < 0:
            raise ConfigError("fake_weight: must be >= 0")


@dataclass(frozen=True)
class RoundConfig:
    prev: str  # the round whose classifier this round starts from (r0 = baseline)
    sampler: dict[str, OverrideValue] | None = None  # overrides of stic.sampler for this round


def validate_rounds(rounds: Mapping[str, RoundConfig], sampler: GRMALAConfig) -> None:
    """Refuse a broken chain: bad names, a missing predecessor, a cycle, bad overrides."""
    if not rounds:
        raise ConfigError("rounds: needs at least one round, e.g. {r1: {prev: r0}}")
    for key, cfg in rounds.items():
        if not ROUND_NAME.match(key):
            raise ConfigError(f"rounds.{key}: round names are r1, r2, ... (r0 is the baseline)")
        if cfg.prev != BASE_ROUND and cfg.prev not in rounds:
            raise ConfigError(
                f"rounds.{key}.prev: '{cfg.prev}' is neither {BASE_ROUND} nor a listed round"
            )
    for key in rounds:
        seen = [key]
        while seen[-1] != BASE_ROUND:
            nxt = rounds[seen[-1]].prev
            if nxt in seen:
                chain = " -> ".join([*seen[seen.index(nxt) :], nxt])
                raise ConfigError(f"rounds.{key}.prev: cycle {chain}; a chain must reach r0")
            seen.append(nxt)
        round_sampler(sampler, rounds[key], key)


def round_sampler(base: GRMALAConfig, cfg: RoundConfig, key: str) -> GRMALAConfig:
    """The sampler of round `key`: stic.sampler with the round's overrides (checked strictly)."""
    if not cfg.sampler:
        return base
    return from_dict(GRMALAConfig, {**to_dict(base), **cfg.sampler}, f"rounds.{key}.sampler")


def chain(n: int) -> dict[str, dict[str, str]]:
    """A well-formed chain of n rounds: {r1: {prev: r0}, ..., rn: {prev: r(n-1)}}."""
    if n < 1:
        raise ConfigError("rounds: needs at least one round")
    return {f"r{i}": {"prev": f"r{i - 1}"} for i in range(1, n + 1)}


# ---------------------------------------------------------------- targets


def make_targets(num_classes: int, cfg: SynthesisConfig, gen: torch.Generator) -> torch.Tensor:
    """(N, K) targets: hard_per_class one-hot rows per class (class by class), then `soft` rows,
    each a Dirichlet(soft_alpha) mix of `soft_classes` distinct random classes."""
    if cfg.soft_classes > num_classes and cfg.soft > 0:
        raise ConfigError(
            f"stic.synthesis.soft_classes: {cfg.soft_classes} > the {num_classes} classes"
        )
    labels = torch.arange(num_classes).repeat_interleave(cfg.hard_per_class)
    hard = torch.nn.functional.one_hot(labels, num_classes).float()
    soft = torch.zeros(cfg.soft, num_classes)
    if cfg.soft:
        classes = torch.rand(cfg.soft, num_classes, generator=gen).argsort(1)[:, : cfg.soft_classes]
        conc = torch.full((cfg.soft, cfg.soft_classes), cfg.soft_alpha)
        # Dirichlet via normalised Gamma draws, from the explicit generator
        gam = _gamma(conc, gen)
        weights = gam / gam.sum(1, keepdim=True)
        soft.scatter_(1, classes, weights)
    return torch.cat([hard, soft])


def _gamma(conc: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Gamma(conc, 1) draws from `gen` (Marsaglia-Tsang for conc >= 1, boosted below 1)."""
    boost = conc < 1
    a = torch.where(boost, conc + 1, conc)
    d = a - 1 / 3
    c = 1 / torch.sqrt(9 * d)
    out = torch.empty_like(a)
    todo = torch.ones_like(a, dtype=torch.bool)
    while todo.any():
        z = torch.randn(a.shape, generator=gen)
        u = torch.rand(a.shape, generator=gen)
        v = (1 + c * z) ** 3
        ok = (v > 0) & (
            torch.log(u.clamp_min(1e-30))
            < 0.5 * z**2 + d - d * v + d * torch.log(v.clamp_min(1e-30))
        )
        take = todo & ok
        out[take] = (d * v)[take]
        todo &= ~ok
    u = torch.rand(a.shape, generator=gen)
    return torch.where(boost, out * u.clamp_min(1e-30) ** (1 / conc), out)


# ---------------------------------------------------------------- Gram statistics


@torch.no_grad()
def class_mean_grams(
    model: Classifier,
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    layers: tuple[str, ...],
    batch_size: int = 256,
) -> dict[str, torch.Tensor]:
    """Per-class mean Gram matrices {layer: (K, C_l, C_l)} of real images (float, [-1, 1])."""
    unknown = [n for n in layers if n not in model.map_names]
    if unknown:
        raise ConfigError(
            f"stic.sampler.gram_layers: {unknown} not among the model's maps {model.map_names}"
        )
    model.eval()
    device = next(model.parameters()).device
    sums: dict[str, torch.Tensor] = {}
    counts = torch.bincount(labels, minlength=num_classes).double()
    if (counts == 0).any():
        raise ValueError("every class needs real images for its mean Gram matrix")
    onehot = torch.nn.functional.one_hot(labels, num_classes).double()  # (N, K)
    for start in range(0, len(images), batch_size):
        _, maps = model.forward_features(images[start : start + batch_size].to(device))
        for name in layers:
            g = gram(maps[name]).double().cpu()  # (B, C, C)
            part = torch.einsum("bk,bcd->kcd", onehot[start : start + batch_size], g)
            sums[name] = sums[name] + part if name in sums else part
    return {name: (s / counts.view(-1, 1, 1)).float() for name, s in sums.items()}


# ---------------------------------------------------------------- synthesis and pools


def merge_traces(traces: list[tuple[Trace, int]]) -> Trace:
    """Chain-count-weighted per-step mean of the traces of several batches of chains."""
    total = sum(n for _, n in traces)
    out = Trace()
    for attr in ("acceptance", "log_density", "step_size"):
        steps = len(getattr(traces[0][0], attr))
        setattr(
            out,
            attr,
            [sum(getattr(t, attr)[i] * n for t, n in traces) / total for i in range(steps)],
        )
    return out


def synthesize(
    model: Classifier,
    targets: torch.Tensor,
    sampler: GRMALAConfig,
    synthesis: SynthesisConfig,
    gen: torch.Generator,
    *,
    image_shape: tuple[int, int, int],
    mean_grams: Mapping[str, torch.Tensor] | None,
    buffer: torch.Tensor | None = None,
    where: str = "stic",
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, Trace]:
    """GRMALA samples for every target row, `synthesis.chains` at a time: (uint8 (N, C, H, W),
    the merged trace)."""
    images, traces = [], []
    for start in range(0, len(targets), synthesis.chains):
        t = targets[start : start + synthesis.chains]
        x, trace = sample(
            model,
            t,
            sampler,
            gen,
            image_shape=image_shape,
            mean_grams=mean_grams,
            buffer=buffer,
            where=where,
            device=device,
        )
        images.append(to_uint8(x.cpu()))
        traces.append((trace, len(t)))
    return torch.cat(images), merge_traces(traces)


def next_pool(prev_pool: SampleSet, new: SampleSet, history: FakeHistory) -> SampleSet:
    """The fakes a round trains on: its own (`last`) or all earlier rounds' too (`all`)."""
    if history == "last" or len(prev_pool) == 0:
        return SampleSet(new.images, new.targets, METHOD, new.class_names)
    if prev_pool.class_names != new.class_names:
        raise ValueError("fake pools of different class sets cannot be merged")
    return SampleSet(
        torch.cat([prev_pool.images, new.images]),
        torch.cat([prev_pool.targets, new.targets]),
        METHOD,
        new.class_names,
    )


def pool_fakes(pool: SampleSet) -> Fakes:
    """A fake pool as training negatives (float images, hard/soft flags)."""
    return Fakes(images=to_float(pool.images), hard=pool.hard)


def retrain_model(
    model: Classifier, args: dict, num_classes: int, mode: FakeMode
) -> tuple[Classifier, dict]:
    """The classifier a round starts from: `extra_class` needs K+1 outputs (fake = index K), so a
    K-output classifier (the baseline) gets a zero-initialised extra head row."""
    outputs = model.num_outputs
    want = num_classes + 1 if mode == "extra_class" else num_classes
    if outputs == want:
        return model, args
    if mode == "extra_class" and outputs == num_classes:
        return expand_outputs(model, args, want)
    raise ValueError(
        f"previous classifier has {outputs} outputs; fake_mode {mode} with {num_classes} classes "
        f"needs {want}"
    )


def fake_loss(cfg: StiCConfig, num_classes: int) -> FakeLoss:
    return FakeLoss(mode=cfg.fake_mode, weight=cfg.fake_weight, num_real_classes=num_classes)


def check_images(data: ImageSet, shape: tuple[int, ...]) -> None:
    if tuple(data.shape) != tuple(shape):
        raise ValueError(f"images {data.shape} do not match {shape}")
