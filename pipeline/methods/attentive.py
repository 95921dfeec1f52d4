"""Attentive-STIC (our reading, docs/methods.md#attentive-stic): drawing an image in glimpses
with attention.

The image is drawn in T glimpses. Each glimpse opens a window, a square or a Gaussian attention
mask of side `window` whose centre is where the saliency |grad_x log pi(x)| of the current canvas
(summed over channels, averaged over a window) is largest, and GRMALA moves only the pixels inside
it: a block update whose MH ratio uses the masked proposal (a diagonal preconditioner that is 0
outside the window, `pipeline.samplers.mala_step`), so each step leaves pi invariant. Because the
saliency window depends on the current state, the scan as a whole is adaptive and only
approximately exact. With `inhibition` h > 0 (inhibition of return) a pixel's saliency is
discounted by (1 - h) for every earlier window that covered it, so the windows move on to parts
of the canvas not yet drawn; `order: random` (uniform window centres, independent of the state)
is the exact control. `mask: none` is full-image GRMALA at the same pixel-update budget: round(T *
steps_per_glimpse * window pixels / image pixels) steps, split into T segments. The canvas after
each glimpse (or segment) is the drawing sequence.

Step sizes follow the rounds' evaluation protocol (`pipeline.eval_sets`): each chain starts at the
step size `stic.eval.eps_start` names and adapts toward the target acceptance during the first
`burn_in` steps of the drawing, counted across glimpses; its step size carries from one glimpse to
the next.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from pipeline.config import Overrides, variant
from pipeline.errors import ConfigError
from pipeline.samplers import LogDensityFn, SamplerConfig, Trace, run_chains

Mask = Literal["square", "gaussian", "none"]
Order = Literal["saliency", "random"]
GAUSSIAN_CUTOFF = 0.05  # a Gaussian window's pixels below this weight do not move


@dataclass(frozen=True)
class AttentiveConfig:
    glimpses: int  # T
    steps_per_glimpse: int  # GRMALA steps inside each window
    window: int  # side of the window, pixels
    mask: Mask  # square or gaussian window; none = full-image GRMALA at the same budget
    order: Order  # saliency (adaptive) or random (exact) window centres
    # saliency: inhibition of return, the share of a pixel's saliency each earlier window covering
    # it takes away (0 = none: the window may return to the same place; must be below 1)
    inhibition: float
    hard_per_class: int
    soft: int  # two-class mixes (interpolation); 0 = none

    def validate(self) -> None:
        if min(self.glimpses, self.steps_per_glimpse, self.window, self.hard_per_class) < 1:
            raise ConfigError("glimpses: steps_per_glimpse, window and hard_per_class must be >= 1")
        if self.soft < 0:
            raise ConfigError("soft: must be >= 0")
        if not 0 <= self.inhibition < 1:
            raise ConfigError(f"inhibition: {self.inhibition} must be in [0, 1)")

    def full_image_steps(self, size: int) -> int:
        """Full-image steps with the same number of pixel updates as the glimpses."""
        area = min(self.window, size) ** 2
        return max(self.glimpses, round(self.glimpses * self.steps_per_glimpse * area / size**2))


@dataclass(frozen=True)
class AttentiveMethodConfig:
    round: str  # the STIC round whose classifier (and learned step sizes) draws
    draw: AttentiveConfig  # what every variant shares
    variants: dict[str, Overrides]  # sample-set name -> overrides of `draw`

    def variant(self, name: str) -> AttentiveConfig:
        return variant(AttentiveConfig, self.draw, self.variants, name, "attentive_stic")

    def validate(self) -> None:
        for name in self.variants:
            self.variant(name)

    # what the parameter gate asks of every method (pipeline.methods)
    def sample_sets(self) -> list[str]:
        return list(self.variants)

    def hard_counts(self) -> dict[str, int]:
        return {f"variants.{n}.hard_per_class": self.variant(n).hard_per_class
                for n in self.variants}  # fmt: skip

    def models(self) -> dict:
        return {}  # it draws with a STIC round (`round`)


def window_mask(centres: torch.Tensor, size: int, window: int, mask: Mask) -> torch.Tensor:
    """(B, 1, S, S) preconditioner in [0, 1] for window centres (B, 2) (row, column)."""
    r = torch.arange(size).view(1, -1, 1).float()
    c = torch.arange(size).view(1, 1, -1).float()
    cy, cx = centres[:, 0].view(-1, 1, 1).float(), centres[:, 1].view(-1, 1, 1).float()
    if mask == "gaussian":
        sd = window / 2
        w = torch.exp(-((r - cy) ** 2 + (c - cx) ** 2) / (2 * sd**2))
        w = torch.where(w >= GAUSSIAN_CUTOFF, w, 0.0)
    else:
        half = window / 2
        top = (cy - half + 0.5).floor().clamp(0, size - window)
        left = (cx - half + 0.5).floor().clamp(0, size - window)
        w = ((r >= top) & (r < top + window) & (c >= left) & (c < left + window)).float()
    return w[:, None]


def saliency_centres(
    grad: torch.Tensor, window: int, visits: torch.Tensor | None = None, inhibition: float = 0.0
) -> torch.Tensor:
    """(B, 2) centre of the window with the largest mean |grad| (summed over channels), each
    pixel's saliency discounted by (1 - inhibition) per earlier window that covered it (`visits`
    (B, 1, S, S), counts)."""
    sal = grad.abs().sum(1, keepdim=True)  # (B, 1, S, S)
    if visits is not None and inhibition > 0:
        sal = sal * (1 - inhibition) ** visits.to(sal.device)
    pooled = F.avg_pool2d(sal, window, stride=1, padding=window // 2, count_include_pad=True)
    size = pooled.shape[-1]
    flat = pooled.flatten(1).argmax(1)
    return torch.stack([flat // size, flat % size], dim=1)


def random_centres(n: int, size: int, gen: torch.Generator) -> torch.Tensor:
    return torch.randint(size, (n, 2), generator=gen)


@dataclass
class Drawing:
    x: torch.Tensor  # (B, C, S, S) final canvases
    sequence: torch.Tensor  # (T + 1, B, C, S, S): the start, then the canvas after each glimpse
    accepted: torch.Tensor  # (B,) accepted proposals
    steps: int  # MALA steps per chain in all
    trace: Trace


def draw(
    fn: LogDensityFn,
    x: torch.Tensor,
    log_eps: torch.Tensor,
    sampler: SamplerConfig,
    cfg: AttentiveConfig,
    gen: torch.Generator,
    *,
    adapt_steps: int = 0,
    where: str = "attentive",
    progress: Callable[[int], None] | None = None,
) -> Drawing:
    """Draw canvases `x` (B, C, S, S) in cfg.glimpses glimpses (module docstring), each chain
    starting at step size exp(log_eps) (B,) and adapting it during the first `adapt_steps` steps
    of the whole drawing (with sampler.adapt)."""
    size = x.shape[-1]
    window = min(cfg.window, size)
    sequence, trace = [x.cpu()], Trace()
    accepted = torch.zeros(x.shape[0], dtype=torch.long)
    visits = torch.zeros(x.shape[0], 1, size, size)  # windows that covered each pixel so far
    per_segment = (
        cfg.steps_per_glimpse
        if cfg.mask != "none"
        else math.ceil(cfg.full_image_steps(size) / cfg.glimpses)
    )
    for t in range(cfg.glimpses):
        precond = None
        if cfg.mask != "none":
            if cfg.order == "saliency":
                _, grad = fn(x)
                centres = saliency_centres(grad, window, visits, cfg.inhibition)
            else:
                centres = random_centres(x.shape[0], size, gen)
            covered = window_mask(centres.cpu(), size, window, cfg.mask)
            visits += covered > 0
            precond = covered.to(x.device)
        adapt = min(per_segment, max(0, adapt_steps - t * per_segment))
        run = run_chains(
            fn, x, log_eps, sampler, gen, steps=per_segment, adapt_steps=adapt, precond=precond,
            where=f"{where}, glimpse {t + 1}",
        )  # fmt: skip
        x, log_eps = run.x, run.log_eps
        accepted += run.accepted.cpu()
        trace.extend(run.trace)
        sequence.append(x.cpu())
        if progress is not None:
            progress(t)
    return Drawing(x.cpu(), torch.stack(sequence), accepted, per_segment * cfg.glimpses, trace)


def passes_per_sample(cfg: AttentiveConfig, steps: int) -> int:
    """Network passes per sample: every sampler step, plus one saliency pass a glimpse when the
    windows follow the saliency, plus one pass a glimpse for its start."""
    saliency = cfg.mask != "none" and cfg.order == "saliency"
    return steps + cfg.glimpses * (1 + int(saliency))
