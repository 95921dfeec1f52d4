"""Langevin samplers: GRMALA and its relatives (docs/methods.md: STIC, JEM, the Score-STIC and
Attentive-STIC readings), as kernels over any target density (`pipeline.densities` makes the
targets a classifier defines).

One step per chain, with a diagonal preconditioner M in [0, 1] per pixel (1 everywhere for a
full-image step; a window for Attentive-STIC's glimpses, 0 outside it, so those pixels never move):
    x' = x + eps * M * grad log pi(x) + sqrt(2 eps M) * xi,   xi ~ N(0, I)
accepted with probability min(1, pi(x') q(x | x') / (pi(x) q(x' | x))) when `mh` is on; without MH
every proposal is taken (unadjusted Langevin). JEM's SGLD, x <- clamp(x + a grad f + s xi), is this
step without MH at eps = s^2 / 2 and T = s^2 / (2 a): a = 1, s = 0.01 give eps = T = 5e-5.

The [-1, 1] box: `reflect` folds the proposal back into the box and the MH ratio uses the density
of that folded Gaussian (a sum over the mirror images of the point, `log_q`), so the adjusted
chain targets pi restricted to the box exactly; `clamp` (JEM) clips pixels, which is only allowed
without MH (a clipped Gaussian has point masses the ratio cannot use).

Step sizes: each chain carries its own log eps; with `adapt`, after each adapting step it moves by
adapt_rate * (accept_prob - target_accept) (Robbins-Monro on the acceptance probability, smooth),
kept within [step_min, step_max]. Persistent training chains adapt at every step and keep their
eps in the buffer; evaluation chains start from the eps the training chains learned or from a new
chain's (`pipeline.chains.EvalChainsConfig.eps_start`) and adapt only during a burn-in, so the chain
after it is a fixed MALA kernel.

Non-finite values raise `NumericalError` naming the run, the step and the value. Every random draw
comes from an explicit CPU `torch.Generator`, so the same seed gives the same samples anywhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch

from pipeline import numerics
from pipeline.dist import Rows, gather_rows, sum_over_ranks
from pipeline.errors import ConfigError, check_finite

Box = Literal["reflect", "clamp"]
BOUNDS = (-1.0, 1.0)  # images are float in [-1, 1] inside the code (pipeline.data.to_float)

# x -> (log pi(x) per chain (B,), grad_x log pi(x) (B, ...))
LogDensityFn = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class SamplerConfig:
    temperature: float  # T: the target is exp(class term / T); JEM's SGLD is T = 5e-5
    step_size: float  # eps of a new chain (textbook MALA; JEM's SGLD is eps = 5e-5)
    mh: bool  # Metropolis-Hastings correction; false = unadjusted Langevin (JEM)
    box: Box  # reflect (exact with MH) or clamp (JEM; only without MH)
    adapt: bool  # adapt each chain's eps toward target_accept (needs mh)
    target_accept: float  # 0.57: optimal MALA acceptance (Roberts & Rosenthal 1998)
    adapt_rate: float  # Robbins-Monro gain on log eps per step
    step_min: float  # adaptation keeps eps in [step_min, step_max]
    step_max: float
    gram_weight: float  # lambda_gram; 0 turns the Gram term off
    gram_layers: tuple[str, ...]  # names from the model's `map_names`

    def validate(self) -> None:
        if self.temperature <= 0:
            raise ConfigError("temperature: must be positive")
        if not 0 < self.step_min <= self.step_size <= self.step_max:
            raise ConfigError("step_size: needs 0 < step_min <= step_size <= step_max")
        if self.mh and self.box == "clamp":
            raise ConfigError("box: clamp needs mh: false (a clipped proposal has no MH ratio)")
        if self.adapt and not self.mh:
            raise ConfigError("adapt: step adaptation needs mh: true (it tracks acceptance)")
        if not 0 < self.target_accept < 1:
            raise ConfigError("target_accept: must be in (0, 1)")
        if self.adapt_rate < 0:
            raise ConfigError("adapt_rate: must be >= 0")
        if self.gram_weight < 0:
            raise ConfigError("gram_weight: must be >= 0")
        if self.gram_weight > 0 and not self.gram_layers:
            raise ConfigError("gram_layers: needs at least one layer when gram_weight > 0")


def draw_rows(
    fn: Callable[..., torch.Tensor], shape: tuple[int, ...], rows: Rows | None, **kw
) -> torch.Tensor:
    """fn(shape, **kw) (torch.randn / torch.rand with a generator); with `rows`, this process's
    rows of the draw for the whole batch, so a chain's noise does not depend on the sharding."""
    if rows is None:
        return fn(shape, **kw)
    return fn((rows.total, *shape[1:]), **kw)[rows.start : rows.stop]


def initial_log_eps(cfg: SamplerConfig, n: int) -> torch.Tensor:
    """(n,) log step sizes of new chains: log cfg.step_size."""
    return torch.full((n,), math.log(cfg.step_size))


@dataclass
class Trace:
    """Per-step records of one sampling run (means over chains)."""

    acceptance: list[float] = field(default_factory=list)  # share of chains that moved
    log_density: list[float] = field(default_factory=list)  # mean log pi after the step
    step_size: list[float] = field(default_factory=list)  # mean eps used at the step

    def summary(self, skip: int = 0) -> dict[str, float]:
        """Acceptance after the first `skip` steps (a burn-in), final log-density and eps."""
        acc = self.acceptance[skip:] or self.acceptance
        return {
            "acceptance_rate": sum(acc) / len(acc),
            "mean_log_density": self.log_density[-1],
            "final_step_size": self.step_size[-1],
        }

    def rows(self) -> list[dict[str, float]]:
        return [
            {"acceptance": a, "log_density": d, "step_size": s}
            for a, d, s in zip(self.acceptance, self.log_density, self.step_size, strict=True)
        ]

    def extend(self, other: Trace) -> None:
        self.acceptance += other.acceptance
        self.log_density += other.log_density
        self.step_size += other.step_size


# ---------------------------------------------------------------- MALA with a box


def fold(z: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Reflect z into [low, high] as often as needed (a periodic fold of period 2 (high - low))."""
    width = high - low
    y = torch.remainder(z - low, 2 * width)
    return low + torch.where(y > width, 2 * width - y, y)


MIRRORS = 2  # fold images per side kept in log_q; the next ones lie > 8 widths/std away


def log_q(
    to: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, box: Box | None, moving: torch.Tensor
) -> torch.Tensor:
    """log density per chain (B,) of `to` under N(mean, std^2) per pixel, folded into the box
    when `box` is reflect, summed over the `moving` pixels (bool, broadcast to `to`).

    The folded density at y is the sum of the Gaussian density over every point z that folds to
    y: z = y + 2nW and z = 2 low - y + 2nW (W the box width); constants that cancel in the MH
    ratio are dropped. `std` broadcasts to `to` (one per chain, or per pixel)."""
    std = std.expand_as(to)
    if box == "reflect":
        low, high = BOUNDS
        width = high - low
        terms = [
            -((z - mean) ** 2) / (2 * std**2)
            for n in range(-MIRRORS, MIRRORS + 1)
            for z in (to + 2 * n * width, 2 * low - to + 2 * n * width)
        ]
        per_pixel = torch.logsumexp(torch.stack(terms), dim=0)
    else:
        per_pixel = -((to - mean) ** 2) / (2 * std**2)
    per_pixel = per_pixel - torch.log(std)
    return torch.where(moving.expand_as(to), per_pixel, 0.0).flatten(1).sum(1)


@dataclass
class Step:
    x: torch.Tensor  # (B, ...) the chains after the step
    logp: torch.Tensor  # (B,)
    grad: torch.Tensor  # (B, ...)
    accept_prob: torch.Tensor  # (B,) min(1, MH ratio); 1 without MH
    accepted: torch.Tensor  # (B,) bool


def mala_step(
    x: torch.Tensor,
    logp: torch.Tensor,
    grad: torch.Tensor,
    fn: LogDensityFn,
    eps: torch.Tensor,
    gen: torch.Generator,
    *,
    mh: bool,
    box: Box,
    precond: torch.Tensor | None = None,
    where: str = "sampler",
    rows: Rows | None = None,
) -> Step:
    """One (preconditioned) MALA step, or with mh=False an unadjusted Langevin step, per chain.

    `logp`, `grad`: log pi and its gradient at `x` (carried over, so a step costs one
    forward/backward pass, at the proposal). `eps` (B,) is each chain's step size; `precond`
    (B, 1 or C, H, W) in [0, 1] scales it per pixel (pixels at 0 never move). `rows`: these
    chains are a share of a larger batch (its noise is drawn whole and sliced)."""
    e = eps.view(-1, *([1] * (x.dim() - 1)))
    if precond is not None:
        e = e * precond
    moving = e > 0
    std = numerics.sqrt(2 * e).clamp_min(1e-30)  # the same on every CPU (pipeline.numerics)
    mean_fwd = x + e * grad
    xi = draw_rows(torch.randn, x.shape, rows, generator=gen, dtype=x.dtype).to(x.device)
    prop = mean_fwd + std * xi
    prop = fold(prop, *BOUNDS) if box == "reflect" else prop.clamp(*BOUNDS)
    prop = torch.where(moving, prop, x)  # pixels outside a window stay bit for bit
    logp_new, grad_new = fn(prop)
    check_finite(logp_new, where, "log-density")
    check_finite(grad_new, where, "gradient")
    if not mh:
        ones = torch.ones_like(logp)
        return Step(prop, logp_new, grad_new, ones, ones.bool())
    mean_bwd = prop + e * grad_new
    log_ratio = (
        logp_new
        - logp
        + log_q(x, mean_bwd, std, box, moving)
        - log_q(prop, mean_fwd, std, box, moving)
    )
    u = draw_rows(torch.rand, logp.shape, rows, generator=gen, dtype=logp.dtype).to(logp.device)
    accepted = torch.log(u) < log_ratio
    keep = accepted.view(-1, *([1] * (x.dim() - 1)))
    return Step(
        x=torch.where(keep, prop, x),
        logp=torch.where(accepted, logp_new, logp),
        grad=torch.where(keep, grad_new, grad),
        accept_prob=log_ratio.clamp(max=0).exp(),
        accepted=accepted,
    )


@dataclass
class ChainRun:
    x: torch.Tensor  # (B, C, H, W) final states
    log_eps: torch.Tensor  # (B,) each chain's log step size after the run
    accepted: torch.Tensor  # (B,) accepted proposals per chain
    trace: Trace


def run_chains(
    fn: LogDensityFn,
    x: torch.Tensor,
    log_eps: torch.Tensor,
    cfg: SamplerConfig,
    gen: torch.Generator,
    *,
    steps: int,
    adapt_steps: int | None = None,
    precond: torch.Tensor | None = None,
    where: str = "sampler",
    rows: Rows | None = None,
) -> ChainRun:
    """`steps` steps from `x` with per-chain step sizes exp(log_eps) (B,).

    With cfg.adapt, each chain's log eps adapts during the first `adapt_steps` steps (all steps
    when None: persistent training chains), within [step_min, step_max]. `rows`: `x` is this
    process's share of a larger batch (pipeline.dist); its trace is over its own chains."""
    trace = Trace()
    logp, grad = fn(x)
    check_finite(logp, f"{where}, step 0 (start)", "log-density")
    log_eps = log_eps.to(x.device, x.dtype).clone()
    lo, hi = math.log(cfg.step_min), math.log(cfg.step_max)
    accepted = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    for step in range(1, steps + 1):
        eps = log_eps.exp()
        s = mala_step(
            x, logp, grad, fn, eps, gen, mh=cfg.mh, box=cfg.box, precond=precond,
            where=f"{where}, step {step}", rows=rows,
        )  # fmt: skip
        x, logp, grad = s.x, s.logp, s.grad
        accepted += s.accepted.long()
        if cfg.adapt and (adapt_steps is None or step <= adapt_steps):
            log_eps = (log_eps + cfg.adapt_rate * (s.accept_prob - cfg.target_accept)).clamp(lo, hi)
        trace.acceptance.append(s.accepted.float().mean().item())
        trace.log_density.append(logp.mean().item())
        trace.step_size.append(eps.mean().item())
    return ChainRun(x, log_eps, accepted, trace)


def gather_run(run: ChainRun, rows: Rows | None) -> ChainRun:
    """The whole batch's run from every process's share (`rows`), on every process: states,
    step sizes and acceptances concatenated in chain order, the trace's per-step means
    re-weighted over all chains. One process (`rows` None): `run` itself."""
    if rows is None:
        return run
    share = (rows.stop - rows.start) / rows.total
    t = run.trace
    series = [sum_over_ranks([v * share for v in seq]) for seq in (t.acceptance, t.log_density,
                                                                   t.step_size)]  # fmt: skip
    return ChainRun(
        gather_rows(run.x), gather_rows(run.log_eps), gather_rows(run.accepted), Trace(*series)
    )


# ---------------------------------------------------------------- canvases


@dataclass(frozen=True)
class CanvasConfig:
    """Where a chain starts: `noise` U(-1, 1) (JEM); `blank` value + N(0, noise^2) folded into
    the box (STIC's blank canvas)."""

    kind: Literal["noise", "blank"]
    value: float  # blank: the constant (digits: -1, their black background)
    noise: float  # blank: std of the noise added to it

    def validate(self) -> None:
        if not -1 <= self.value <= 1 or self.noise < 0:
            raise ConfigError("value: must be in [-1, 1] and noise >= 0")

    def draw(
        self, shape: tuple[int, ...], gen: torch.Generator, rows: Rows | None = None
    ) -> torch.Tensor:
        if self.kind == "noise":
            return draw_rows(torch.rand, shape, rows, generator=gen) * 2 - 1
        noise = draw_rows(torch.randn, shape, rows, generator=gen)
        return fold(self.value + self.noise * noise, *BOUNDS)


# ---------------------------------------------------------------- annealed Langevin (Score-STIC)


def annealed_levels(sigma_max: float, sigma_min: float, levels: int) -> list[float]:
    """Noise levels sigma_1 > ... > sigma_L, geometric from sigma_max to sigma_min."""
    if levels == 1:
        return [sigma_min]
    ratio = (sigma_min / sigma_max) ** (1 / (levels - 1))
    return [sigma_max * ratio**i for i in range(levels)]


def run_annealed(
    density_at: Callable[[float], LogDensityFn],
    x: torch.Tensor,
    sigmas: list[float],
    cfg: SamplerConfig,
    gen: torch.Generator,
    *,
    steps_per_level: int,
    where: str = "annealed",
    rows: Rows | None = None,
) -> ChainRun:
    """Annealed Langevin (Song & Ermon 2019): `steps_per_level` steps at each level, from the
    largest sigma to the smallest, with step eps_i = step_size * (sigma_i / sigma_L)^2;
    `density_at(sigma)` is the target at that level. MH and adaptation follow `cfg` within a
    level (each level restarts from the scaled step)."""
    trace, accepted = Trace(), torch.zeros(x.shape[0], dtype=torch.long)
    log_eps = torch.zeros(x.shape[0])
    for i, sigma in enumerate(sigmas):
        eps_i = cfg.step_size * (sigma / sigmas[-1]) ** 2
        log_eps = torch.full((x.shape[0],), math.log(eps_i))
        level_cfg = _scaled(cfg, eps_i)
        run = run_chains(
            density_at(sigma), x, log_eps, level_cfg, gen, steps=steps_per_level,
            where=f"{where}, level {i + 1} (sigma {sigma:.3g})", rows=rows,
        )  # fmt: skip
        x, log_eps = run.x, run.log_eps
        accepted += run.accepted.cpu()
        trace.extend(run.trace)
    return ChainRun(x, log_eps, accepted, trace)


def _scaled(cfg: SamplerConfig, eps: float) -> SamplerConfig:
    """cfg with step_size eps and the adaptation bounds moved with it (same ratios)."""
    import dataclasses

    ratio = eps / cfg.step_size
    return dataclasses.replace(
        cfg, step_size=eps, step_min=cfg.step_min * ratio, step_max=cfg.step_max * ratio
    )
