"""A chain-trained classifier's evaluation set (STIC's rounds, JEM, the SGLD control, the null
samplers): fresh chains from the canvas, never a training chain, for hard and soft targets, each
starting from the step size `eps_start` says and adapting during a burn-in; and what the sampler
did (acceptance, step sizes, the share of chains that never moved, p(fake) of the samples).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from pipeline.chains import ChainBuffer, Drawing, GramMeans, chain_targets, exact_grams
from pipeline.data import ImageSet, to_uint8
from pipeline.densities import classifier_density, null_density
from pipeline.dist import Rows, chain_rows, share
from pipeline.errors import ConfigError
from pipeline.infer import agreement, logits_of
from pipeline.samplers import (
    CanvasConfig,
    ChainRun,
    LogDensityFn,
    SamplerConfig,
    Trace,
    gather_run,
    initial_log_eps,
    run_chains,
)
from pipeline.samples import SampleSet


@dataclass(frozen=True)
class EvalChainsConfig:
    """How a chain-trained classifier's evaluation set is drawn: fresh chains from the canvas."""

    hard_per_class: int  # one-hot targets per class
    soft: int  # two-or-more-class mixes in all (interpolation); 0 = none
    steps: int  # sampler steps from the canvas
    burn_in: int  # first steps during which each chain's step size adapts (with sampler.adapt)
    # learned: a chain starts at the median eps its class's training chains learned;
    # initial: at sampler.step_size, as a new training chain does (then adapts in the burn-in)
    eps_start: Literal["learned", "initial"]

    def validate(self) -> None:
        if self.hard_per_class < 1 or self.soft < 0 or self.steps < 1:
            raise ConfigError("hard_per_class: and steps must be >= 1, soft >= 0")
        if not 0 <= self.burn_in <= self.steps:
            raise ConfigError("burn_in: must be in [0, steps]")


def eval_start_log_eps(
    cfg: EvalChainsConfig, buffer: ChainBuffer, sampler: SamplerConfig
) -> torch.Tensor:
    """(K,) log step size each class's evaluation chains start from (`cfg.eps_start`)."""
    if cfg.eps_start == "learned":
        return buffer.learned_log_eps()
    return initial_log_eps(sampler, buffer.targets.shape[1])


def eval_targets(
    num_classes: int, cfg: EvalChainsConfig, drawing: Drawing, gen: torch.Generator
) -> torch.Tensor:
    """(N, K): hard_per_class one-hot rows per class, grouped by class, then `soft` mixes."""
    hard = F.one_hot(
        torch.arange(num_classes).repeat_interleave(cfg.hard_per_class), num_classes
    ).float()
    if cfg.soft == 0:
        return hard
    soft = chain_targets(cfg.soft, num_classes, 1.0, drawing.soft_classes, drawing.soft_alpha, gen)
    return torch.cat([hard, soft])


@dataclass
class FreshDraw:
    images: torch.Tensor  # (N, C, H, W) float in [-1, 1]
    run: ChainRun
    stuck: float  # share of chains that accepted (almost) no proposal: they never left the start


def draw_fresh(
    fn: LogDensityFn,
    n: int,
    shape: tuple[int, int, int],
    sampler: SamplerConfig,
    start: CanvasConfig,
    cfg: EvalChainsConfig,
    start_log_eps: torch.Tensor,
    gen: torch.Generator,
    *,
    device: torch.device,
    where: str,
    rows: Rows | None = None,
) -> FreshDraw:
    """`n` new chains from the canvas on the target `fn`, each starting from its own step size
    (`start_log_eps` (n,): what the training chains learned), adapting during the burn-in only.
    `rows`: this process runs its share of the n chains (`fn` is its share's target); the draw
    returned is all n chains, on every process."""
    x0 = start.draw((n, *shape), gen, rows).to(device)
    run = run_chains(
        fn, x0, start_log_eps[share(rows)], sampler, gen, steps=cfg.steps, adapt_steps=cfg.burn_in,
        where=where, rows=rows,
    )  # fmt: skip
    run = gather_run(run, rows)
    moved = run.accepted.float() / cfg.steps
    stuck = float((moved < 0.01).float().mean()) if sampler.mh else 0.0
    return FreshDraw(run.x.cpu(), run, stuck)


def target_fn(
    model: torch.nn.Module,
    targets: torch.Tensor,
    drawing: Drawing,
    grams: GramMeans | None,
    device: torch.device,
) -> LogDensityFn:
    """The density a classifier is sampled on for `targets` (N, K)."""
    model.eval()
    means = grams.means if grams is not None else None
    return classifier_density(model, targets.to(device), drawing.sampler, drawing.term, means)


def evaluation_set(
    classifier: torch.nn.Module | None,
    data: ImageSet,
    drawing: Drawing,
    cfg: EvalChainsConfig,
    start_log_eps: torch.Tensor,
    gen_targets: torch.Generator,
    gen_chains: torch.Generator,
    *,
    method: str,
    device: torch.device,
    where: str,
) -> tuple[SampleSet, dict[str, float | None], Trace]:
    """A classifier's evaluation set: fresh chains for hard and soft targets, each starting from
    its class's step size (`start_log_eps` (K,): what the training chains learned), and what the
    sampler did. No classifier: the same sampler on a flat target (the null reference)."""
    k = data.num_classes
    targets = eval_targets(k, cfg, drawing, gen_targets)
    part = chain_rows(len(targets))  # under DDP each rank runs its share of the chains
    if classifier is None:
        fn: LogDensityFn = null_density
    else:
        grams = exact_grams(classifier, data, drawing.sampler)
        fn = target_fn(classifier, targets[share(part)], drawing, grams, device)
    drawn = draw_fresh(
        fn,
        len(targets),
        data.shape,
        drawing.sampler,
        drawing.canvas,
        cfg,
        start_log_eps[targets.argmax(1)],
        gen_chains,
        device=device,
        where=where,
        rows=part,
    )
    summary = drawn.run.trace.summary(cfg.burn_in)
    metrics = {
        "acceptance_rate": summary["acceptance_rate"],
        "final_step_size": summary["final_step_size"],
        "median_step_size": float(drawn.run.log_eps.median().exp()),
        "stuck_share": drawn.stuck,
        "passes_per_sample": 0 if classifier is None else cfg.steps + 1,
    }
    if classifier is not None:
        metrics["p_fake"] = p_fake(classifier, drawn.images, k)
        metrics["classifier_agreement"] = agreement(classifier, drawn.images, targets, k)
    samples = SampleSet(to_uint8(drawn.images), targets, method, data.class_names)
    return samples, metrics, drawn.run.trace


@torch.no_grad()
def p_fake(model: torch.nn.Module, images: torch.Tensor, num_classes: int) -> float | None:
    """Mean softmax mass on the extra "fake" output (index K), None without one."""
    logits = logits_of(model, images)
    if logits.shape[1] <= num_classes:
        return None
    return float(logits.softmax(1)[:, num_classes].mean())


def null_evaluation_set(
    drawing: Drawing,
    cfg: EvalChainsConfig,
    data: ImageSet,
    gen_targets: torch.Generator,
    gen_chains: torch.Generator,
    *,
    name: str,
    device: torch.device,
) -> tuple[SampleSet, dict[str, float | None]]:
    """A chain-trained method's evaluation sampler on a flat target (its null sampler): the same
    canvas, sampler, steps and targets, each chain from a new chain's step size."""
    samples, metrics, _ = evaluation_set(
        None, data, drawing, cfg, initial_log_eps(drawing.sampler, data.num_classes),
        gen_targets, gen_chains, method=name, device=device, where=name,
    )  # fmt: skip
    return samples, metrics
