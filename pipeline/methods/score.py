"""Score-STIC (our reading, docs/methods.md#score-stic): synthesis with a class-conditional score
classifier.

A noise-conditional classifier g(x, sigma) (`pipeline.models.ScoreCNN`) over L noise levels
sigma_1 > ... > sigma_L (geometric from sigma_max to sigma_min) is trained on noised real images
x~ = x + sigma xi, xi ~ N(0, I), with
  (a) cross-entropy on g(x~, sigma), so that it classifies at every level, and
  (b) denoising score matching on the class logit (Vincent 2011; Song & Ermon 2019 weight
      sigma^2):  sigma^2 || grad s(x~, sigma)[y] + (x~ - x) / sigma^2 ||^2
                 = || grad_x~ g(x~, sigma)[y] + xi ||^2,
      with the class score s = g / sigma, so that grad_x s(x, sigma)[y] is the score of the
      noised class-conditional density p_sigma(x | y).
Sampling is annealed Langevin from sigma_1 down to sigma_L on
log pi_i(x) = sum_k t_k s(x, sigma_i)[k] (soft targets mix the class scores): a few steps per
level (MH and the Gram term are the switches of `SamplerConfig`) with eps_i proportional to
sigma_i^2, from the canvas, then one denoising step x + sigma_L^2 grad log p (Tweedie).
Real-test accuracy is measured at sigma_L. Term (b) needs the gradient of an input gradient
(double backward): about three times the cost of a plain classifier step per image.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import get_type_hints

import torch
import torch.nn as nn
import torch.nn.functional as F

from pipeline.accel import OFF, Accel, autocast, training_net
from pipeline.chains import Drawing, class_mean_grams
from pipeline.config import Overrides, variant
from pipeline.data import ImageSet, to_uint8
from pipeline.densities import classifier_density, null_density
from pipeline.dist import chain_rows, mean_over_ranks, reseed_rank, rows, share
from pipeline.errors import ConfigError, check_finite
from pipeline.eval_sets import eval_targets
from pipeline.infer import batched
from pipeline.loop import Budget, EpochCallback, run_epochs
from pipeline.models import ModelConfig, ScoreCNN
from pipeline.resume import Snapshots
from pipeline.samplers import (
    CanvasConfig,
    ChainRun,
    SamplerConfig,
    annealed_levels,
    gather_run,
    run_annealed,
)
from pipeline.samples import SampleSet
from pipeline.train import TrainConfig, lr_factor, make_optimizer

NAME = "score_stic"


@dataclass(frozen=True)
class NoiseConfig:
    sigma_max: float  # largest noise level (on images in [-1, 1])
    sigma_min: float  # smallest: samples and accuracy are read here
    levels: int  # L, geometric in between

    def validate(self) -> None:
        if not 0 < self.sigma_min < self.sigma_max or self.levels < 2:
            raise ConfigError("sigma_min: needs 0 < sigma_min < sigma_max and levels >= 2")

    @property
    def sigmas(self) -> list[float]:
        return annealed_levels(self.sigma_max, self.sigma_min, self.levels)


@dataclass(frozen=True)
class ScoreSamplingConfig:
    steps_per_level: int  # Langevin/MALA steps at each noise level
    denoise: bool  # a last Tweedie step x + sigma_L^2 * score (NCSNv2)
    canvas: CanvasConfig  # blank (STIC's canvas) or noise
    hard_per_class: int
    soft: int  # two-class mixes (interpolation); 0 = none
    soft_alpha: float

    def validate(self) -> None:
        if self.steps_per_level < 1 or self.hard_per_class < 1 or self.soft < 0:
            raise ConfigError("steps_per_level: and hard_per_class must be >= 1, soft >= 0")
        if self.soft_alpha <= 0:
            raise ConfigError("soft_alpha: must be positive (a Dirichlet concentration)")


# Network passes (forward and backward) per image in a training step: the forward, the input
# gradient the DSM term compares (a backward kept in the graph) and the backward through both,
# about three times a plain step's forward-and-backward.
TRAIN_PASSES = 3.0


@dataclass(frozen=True)
class ScoreTraining:
    """What training reads (stage score_train), so a sampler setting reruns sampling only."""

    model: ModelConfig  # arch score_cnn
    noise: NoiseConfig
    train: TrainConfig
    dsm_weight: float  # weight of the denoising score matching term (b)


# the params sections of score_stic that ScoreTraining is made of
TRAINING_SECTIONS = {f"{NAME}.{k}": tp for k, tp in get_type_hints(ScoreTraining).items()}


@dataclass(frozen=True)
class ScoreVariant:
    """A sample set of its own, drawn from the one trained score classifier: overrides of
    score_stic.sampler / score_stic.sampling."""

    sampler: Overrides | None = None
    sampling: Overrides | None = None


@dataclass(frozen=True)
class ScoreDrawing:
    """What drawing reads (stage score_sample, the null sampler): the noise levels, the sampler
    and its schedule."""

    noise: NoiseConfig
    sampler: SamplerConfig  # temperature and step_size are read at sigma_L (scaled per level)
    sampling: ScoreSamplingConfig


@dataclass(frozen=True)
class ScoreStiCConfig:
    model: ModelConfig  # arch score_cnn
    noise: NoiseConfig
    train: TrainConfig
    dsm_weight: float  # weight of the denoising score matching term (b)
    sampler: SamplerConfig  # temperature and step_size are read at sigma_L (scaled per level)
    sampling: ScoreSamplingConfig
    variants: dict[str, ScoreVariant]  # sample-set name -> overrides ({} = the sections as is)

    def training(self) -> ScoreTraining:
        return ScoreTraining(self.model, self.noise, self.train, self.dsm_weight)

    def drawing(self, name: str | None = None) -> ScoreDrawing:
        """How variant `name` draws (None: the sections as they are, as the null sampler)."""
        return drawing_of(self.noise, self.sampler, self.sampling, self.variants, name)

    def validate(self) -> None:
        if self.model.arch != "score_cnn":
            raise ConfigError("model.arch: Score-STIC needs the noise-conditional score_cnn")
        if self.dsm_weight < 0:
            raise ConfigError("dsm_weight: must be >= 0")
        if not self.variants:
            raise ConfigError("variants: list at least one variant (e.g. score_stic: {})")
        for name in self.variants:
            self.drawing(name)

    # what the parameter gate asks of every method (pipeline.methods)
    def sample_sets(self) -> list[str]:
        return list(self.variants)

    def hard_counts(self) -> dict[str, int]:
        return {f"variants.{n}.sampling.hard_per_class": self.drawing(n).sampling.hard_per_class
                for n in self.variants}  # fmt: skip

    def models(self) -> dict:
        return {"model": self.model}


def drawing_of(
    noise: NoiseConfig,
    sampler: SamplerConfig,
    sampling: ScoreSamplingConfig,
    variants: dict[str, ScoreVariant],
    name: str | None,
) -> ScoreDrawing:
    """The sections with variant `name`'s overrides (None: as they are)."""
    if name is None:
        return ScoreDrawing(noise, sampler, sampling)
    return ScoreDrawing(
        noise,
        variant(SamplerConfig, sampler, variants, name, NAME, "sampler"),
        variant(ScoreSamplingConfig, sampling, variants, name, NAME, "sampling"),
    )


class Levels(nn.Module):
    """g(x, sigma) -> logits (B, K), one level per image, as one forward call: what a training
    loop wraps (pipeline.accel; DDP synchronises gradients through forward calls only)."""

    def __init__(self, net: ScoreCNN):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        latent, _ = self.net.features_at(x, sigma)
        return self.net.head(latent)


def dsm_loss(
    g: nn.Module, x: torch.Tensor, y: torch.Tensor, sigma: torch.Tensor, xi: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-image DSM loss (B,) = 0.5 ||grad_x~ g(x~, sigma)[y] + xi||^2, logits (B, K)) at
    x~ = x + sigma xi, with `g` a `Levels` (or its DDP wrapper); the graph is kept so the loss
    trains the network (double backward)."""
    noisy = (x + sigma.view(-1, 1, 1, 1) * xi).requires_grad_(True)
    logits = g(noisy, sigma)
    (grad,) = torch.autograd.grad(
        logits.gather(1, y[:, None]).sum(), noisy, create_graph=torch.is_grad_enabled()
    )
    return 0.5 * (grad + xi).pow(2).flatten(1).sum(1), logits


def train_score_classifier(
    model: ScoreCNN,
    train: ImageSet,
    cfg: ScoreTraining,
    *,
    device: torch.device,
    seed: int,
    test: ImageSet | None = None,
    snapshots: Snapshots | None = None,
    on_epoch: EpochCallback | None = None,
    accel: Accel = OFF,
) -> list[dict[str, float]]:
    """CE + dsm_weight * DSM at a level drawn uniformly per image; returns per-epoch metrics."""
    model.to(device)
    net = training_net(Levels(model), accel, compile_ok=False)  # DSM: double backward, no compile
    opt = make_optimizer(model, cfg.train)
    sigmas = torch.tensor(cfg.noise.sigmas)
    x_all, y_all = train.float_images(), train.labels
    budget = Budget(cfg.train.steps, cfg.train.batch_size, len(train))

    def epoch_fn(epoch: int) -> dict[str, float]:
        for group in opt.param_groups:
            group["lr"] = cfg.train.lr * lr_factor(cfg.train, budget.progress(epoch))
        model.train()
        sums = {"loss": 0.0, "ce": 0.0, "dsm": 0.0}
        steps = budget.batches(epoch, torch.randperm(len(train)))
        reseed_rank(seed, epoch)
        for step, idx in enumerate(steps):
            idx = idx[rows(len(idx))]  # this rank's share of the batch
            x, y = x_all[idx].to(device), y_all[idx].to(device)
            sigma = sigmas[torch.randint(len(sigmas), (len(idx),))].to(device)
            with autocast(device, accel):  # bf16 when runtime.precision asks (pipeline.accel)
                dsm, logits = dsm_loss(net, x, y, sigma, torch.randn_like(x))
                ce = F.cross_entropy(logits, y)
                total = ce + cfg.dsm_weight * dsm.mean()
            check_finite(total.detach(), f"{NAME}: loss at epoch {epoch + 1}, step {step}")
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            sums["loss"] += total.item()
            sums["ce"] += ce.item()
            sums["dsm"] += dsm.mean().item()
        row = mean_over_ranks({f"train_{k}": v / len(steps) for k, v in sums.items()})
        if test is not None:
            row["test_accuracy"] = accuracy_at(model, test, cfg.noise.sigma_min)
        return row

    history = run_epochs(
        epoch_fn,
        budget=budget,
        desc=NAME,
        state={"model": model, "optimizer": opt},
        snapshots=snapshots,
        reseed=seed,
        on_epoch=on_epoch,
        show=("train_loss", "test_accuracy"),
    )
    model.eval()
    return history


def train_passes_per_image(train: TrainConfig, n_train: int) -> float:
    """Network passes per training image over the whole training run (TRAIN_PASSES a step)."""
    return TRAIN_PASSES * Budget(train.steps, train.batch_size, n_train).passes_per_image


def accuracy_at(model: ScoreCNN, data: ImageSet, sigma: float) -> float:
    """Real-test accuracy of g(x, sigma) on clean images (the classifier at its lowest level)."""
    model.eval()
    at = model.at(sigma)
    logits = batched(at, data.float_images(), 256, next(model.parameters()).device)
    return float((logits.argmax(1) == data.labels).float().mean())


def evaluation_draw(
    model: ScoreCNN | None,
    cfg: ScoreDrawing,
    data: ImageSet,
    gen_targets: torch.Generator,
    gen_chains: torch.Generator,
    *,
    device: torch.device,
) -> tuple[torch.Tensor, ChainRun]:
    """Score-STIC's evaluation set: its targets (hard per class, then soft mixes) and the
    annealed run. With no model, the same draw on a flat target: its null sampler."""
    s = cfg.sampling
    drawing = Drawing(cfg.sampler, "logit", s.canvas, 2, s.soft_alpha)
    targets = eval_targets(data.num_classes, s, drawing, gen_targets)
    run = sample(model, targets, cfg, gen_chains, shape=data.shape, real=data, device=device)
    return targets, run


def passes_per_sample(cfg: ScoreDrawing) -> int:
    """Network passes (forward and backward) per sample: one per annealed step and per level's
    start, plus the denoising step."""
    s = cfg.sampling
    return s.steps_per_level * cfg.noise.levels + int(s.denoise) + cfg.noise.levels


def sample(
    model: ScoreCNN | None,
    targets: torch.Tensor,
    cfg: ScoreDrawing,
    gen: torch.Generator,
    *,
    shape: tuple[int, int, int],
    real: ImageSet | None,
    device: torch.device,
) -> ChainRun:
    """Annealed Langevin samples (N, C, H, W) for targets (N, K); `real` gives the per-level
    class-mean Gram matrices (noised real images) when the Gram term is on. No model: a flat
    target at every level (the null sampler). Under torchrun each rank runs its share of the
    chains (pipeline.dist); every rank gets all N."""
    if model is not None:
        model.eval()
    s = cfg.sampling
    part = chain_rows(len(targets))
    x0 = s.canvas.draw((len(targets), *shape), gen, part).to(device)
    targets = targets[share(part)].to(device)
    noise_gen = torch.Generator().manual_seed(int(torch.randint(2**62, (1,), generator=gen)))

    def density_at(sigma: float):
        if model is None:
            return null_density
        at = model.at(sigma)
        grams = None
        if cfg.sampler.gram_weight > 0 and real is not None:
            noisy = real.float_images()
            noisy = noisy + sigma * torch.randn(noisy.shape, generator=noise_gen)
            grams = class_mean_grams(
                at, noisy, real.labels, real.num_classes, cfg.sampler.gram_layers
            )
        # log pi_i = class score s = g / sigma: the temperature carries the 1 / sigma
        level = dataclasses.replace(cfg.sampler, temperature=cfg.sampler.temperature * sigma)
        return classifier_density(at, targets, level, "logit", grams)

    sigmas = cfg.noise.sigmas
    run = run_annealed(
        density_at, x0, sigmas, cfg.sampler, gen, steps_per_level=s.steps_per_level, where=NAME,
        rows=part,
    )  # fmt: skip
    if s.denoise and model is not None:  # Tweedie: E[x | x~] = x~ + sigma^2 * score
        _, grad = density_at(sigmas[-1])(run.x)
        run.x = (run.x + sigmas[-1] ** 2 * cfg.sampler.temperature * grad).clamp(-1, 1)
    run = gather_run(run, part)
    run.x = run.x.cpu()
    return run


def null_set(cfg: ScoreStiCConfig, data, gen_targets, gen_chains, *, name: str, device):
    """Score-STIC's own evaluation draw (`evaluation_draw`, the sections as they are) on a flat
    target."""
    targets, run = evaluation_draw(None, cfg.drawing(), data, gen_targets, gen_chains,
                                   device=device)  # fmt: skip
    samples = SampleSet(to_uint8(run.x), targets, name, data.class_names)
    return samples, {"acceptance_rate": run.trace.summary()["acceptance_rate"]}
