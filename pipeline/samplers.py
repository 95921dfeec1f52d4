"""GRMALA: Metropolis-adjusted Langevin sampling from a classifier, regularised by Gram matrices.

The target of STIC (PAPERS.md sec. 1, "our reading") for a label distribution t over the K real
classes, per chain:

    log pi(x) = [ sum_k t_k log softmax(f(x))_k
                  - lambda_gram * sum_l ||G_l(x) - sum_k t_k Gbar_l^k||_F^2 / C_l^2
                  - lambda_prior * ||x||^2 / 2 ] / T

The softmax runs over ALL outputs of the classifier (K, or K+1 with STIC's extra "fake" class), and
only the K real-class terms are weighted by t, so a sample the classifier recognises as fake loses
density. G_l(x) = F_l F_l^T / (H_l W_l) is the Gram matrix of feature map l (C_l channels).

One MALA step per chain: x' = x + eps * grad log pi(x) + s * sqrt(2 eps) * xi, xi ~ N(0, I), with
s = `noise_scale` (1 is textbook MALA), accepted with probability
min(1, pi(x') q(x | x') / (pi(x) q(x' | x))). With `mh` off every proposal is taken: plain
(unadjusted) Langevin.

The [-1, 1] boundary: the Gaussian proposal is *reflected* (folded) back into the box, and the MH
ratio uses the density of that folded Gaussian (sum over the mirror images of the point, see
`log_q`), so the adjusted chain targets pi restricted to the box exactly. Without MH the fold
simply keeps pixels in range (reflected Langevin).

Non-finite values: a NaN/inf in the log-density or its gradient, at the canvas or at any proposal,
raises `pipeline.train.NumericalError` naming the run (`where`, e.g. the round), the step and the
value; it is never counted as a rejection, because a classifier that diverges on an image in the
box is a bug to see, not a region to avoid.

Everything random draws from an explicit `torch.Generator` (on the CPU, so the same seed gives the
same samples bit for bit on any device).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F

from pipeline.config import ConfigError
from pipeline.train import NumericalError

Canvas = Literal["blank", "noise", "buffer"]
BOUNDS = (-1.0, 1.0)  # images are float in [-1, 1] inside the code (pipeline.data.to_float)

# x -> (log pi(x) per chain (B,), grad_x log pi(x) (B, ...))
LogDensityFn = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class GRMALAConfig:
    steps: int = 60  # MALA steps per chain
    step_size: float = 0.01  # epsilon; the start value when `adapt` is on
    noise_scale: float = 1.0  # s: proposal std s*sqrt(2 eps); 1 = textbook MALA, 0 = ascent
    temperature: float = 1.0  # T: log pi is divided by T
    gram_weight: float = 1.0  # lambda_gram; 0 turns the Gram term off
    gram_layers: tuple[str, ...] = ("block1", "block2")  # names from the model's `map_names`
    prior_weight: float = 0.0  # lambda_prior of a N(0, I) prior on pixels; 0 = none
    mh: bool = True  # Metropolis-Hastings correction; false = unadjusted (plain) Langevin
    adapt: bool = True  # adapt each chain's eps toward `target_accept` during the burn-in
    burn_in: int = 20  # steps of adaptation; acceptance_rate is measured after them
    target_accept: float = 0.57  # optimal MALA acceptance (Roberts & Rosenthal 1998)
    adapt_rate: float = 0.5  # Robbins-Monro gain on log eps per step
    canvas: Canvas = "blank"  # blank: constant + small noise; noise: U(-1, 1); buffer: replay
    canvas_value: float = 0.0  # the blank canvas's constant (in [-1, 1])
    canvas_noise: float = 0.05  # std of the noise added to the blank canvas
    buffer_reinit: float = 0.05  # buffer canvas: share of chains started from U(-1, 1) (JEM: 5%)

    def validate(self) -> None:
        if self.steps < 1:
            raise ConfigError("steps: must be at least 1")
        if self.step_size <= 0:
            raise ConfigError("step_size: must be positive")
        if self.noise_scale < 0:
            raise ConfigError("noise_scale: must be >= 0")
        if self.mh and self.noise_scale == 0:
            raise ConfigError("noise_scale: 0 (no noise) needs mh: false (MH ratio undefined)")
        if self.temperature <= 0:
            raise ConfigError("temperature: must be positive")
        if self.gram_weight < 0 or self.prior_weight < 0:
            raise ConfigError("gram_weight: and prior_weight must be >= 0")
        if self.gram_weight > 0 and not self.gram_layers:
            raise ConfigError("gram_layers: needs at least one layer when gram_weight > 0")
        if not 0 <= self.burn_in < self.steps:
            raise ConfigError("burn_in: must be in [0, steps)")
        if not 0 < self.target_accept < 1:
            raise ConfigError("target_accept: must be in (0, 1)")
        if self.adapt_rate < 0:
            raise ConfigError("adapt_rate: must be >= 0")
        if not -1 <= self.canvas_value <= 1:
            raise ConfigError("canvas_value: must be in [-1, 1]")
        if self.canvas_noise < 0:
            raise ConfigError("canvas_noise: must be >= 0")
        if not 0 <= self.buffer_reinit <= 1:
            raise ConfigError("buffer_reinit: must be in [0, 1]")


@dataclass
class Trace:
    """Per-step records of one sampling run (means over chains)."""

    acceptance: list[float] = field(default_factory=list)  # share of chains that moved
    log_density: list[float] = field(default_factory=list)  # mean log pi after the step
    step_size: list[float] = field(default_factory=list)  # mean eps used at the step

    def summary(self, burn_in: int) -> dict[str, float]:
        """Acceptance and log-density after the burn-in (all steps when burn_in is 0)."""
        acc = self.acceptance[burn_in:] or self.acceptance
        return {
            "acceptance_rate": sum(acc) / len(acc),
            "burn_in_acceptance_rate": (
                sum(self.acceptance[:burn_in]) / burn_in if burn_in else float("nan")
            ),
            "mean_log_density": self.log_density[-1],
            "final_step_size": self.step_size[-1],
        }


# ---------------------------------------------------------------- target density


def gram(maps: torch.Tensor) -> torch.Tensor:
    """Gram matrix F F^T / (H W) of feature maps (B, C, H, W) -> (B, C, C)."""
    b, c, h, w = maps.shape
    flat = maps.reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (h * w)


def gram_distance(
    maps: Mapping[str, torch.Tensor], targets: torch.Tensor, mean_grams: Mapping[str, torch.Tensor]
) -> torch.Tensor:
    """sum_l ||G_l(x) - sum_k t_k Gbar_l^k||_F^2 / C_l^2 per chain (B,).

    `targets` (B, K); `mean_grams[l]` (K, C_l, C_l): per-class mean Gram of real images.
    """
    total = targets.new_zeros(targets.shape[0])
    for name, gbar in mean_grams.items():
        g = gram(maps[name])  # (B, C, C)
        want = torch.einsum("bk,kcd->bcd", targets, gbar)  # (B, C, C)
        total = total + (g - want).pow(2).sum(dim=(1, 2)) / g.shape[1] ** 2
    return total


def class_log_likelihood(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """sum_k t_k log softmax(f(x))_k per chain; softmax over ALL outputs (K or K+1), t over K."""
    k = targets.shape[1]
    return (targets * F.log_softmax(logits, dim=1)[:, :k]).sum(dim=1)


def log_density(
    model: torch.nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    cfg: GRMALAConfig,
    mean_grams: Mapping[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """log pi(x) of PAPERS.md sec. 1 per chain (B,) (up to its normalising constant)."""
    latent, maps = model.forward_features(x)
    logp = class_log_likelihood(model.head(latent), targets)
    if cfg.gram_weight > 0:
        if not mean_grams:
            raise ValueError("gram_weight > 0 needs the per-class mean Gram matrices")
        logp = logp - cfg.gram_weight * gram_distance(maps, targets, mean_grams)
    if cfg.prior_weight > 0:
        logp = logp - cfg.prior_weight * x.flatten(1).pow(2).sum(1) / 2
    return logp / cfg.temperature


def classifier_density(
    model: torch.nn.Module,
    targets: torch.Tensor,
    cfg: GRMALAConfig,
    mean_grams: Mapping[str, torch.Tensor] | None = None,
) -> LogDensityFn:
    """The GRMALA target as a LogDensityFn (log pi and its gradient with respect to x)."""
    grams = None
    if cfg.gram_weight > 0:
        if mean_grams is None:
            raise ValueError("gram_weight > 0 needs the per-class mean Gram matrices")
        missing = [n for n in cfg.gram_layers if n not in mean_grams]
        if missing:
            raise ConfigError(f"stic.sampler.gram_layers: no mean Gram for {missing}")
        grams = {n: mean_grams[n] for n in cfg.gram_layers}

    def fn(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            logp = log_density(model, x, targets, cfg, grams)
            (grad,) = torch.autograd.grad(logp.sum(), x)  # chains are independent
        return logp.detach(), grad

    return fn


# ---------------------------------------------------------------- MALA with a reflecting box


def fold(z: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Reflect z into [low, high] as often as needed (a periodic fold of period 2 (high - low))."""
    width = high - low
    y = torch.remainder(z - low, 2 * width)
    return low + torch.where(y > width, 2 * width - y, y)


MIRRORS = 2  # fold images per side kept in log_q; the next ones lie > 8 widths/std away


def log_q(
    to: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, bounds: tuple[float, float] | None
) -> torch.Tensor:
    """log density per chain (B,) of `to` under N(mean, std^2 I), folded into `bounds` if given.

    The folded density at y is the sum of the Gaussian density over every point z that folds to y:
    z = y + 2nW and z = 2 low - y + 2nW (W the box width); constants that cancel in the MH ratio
    are dropped. `std` is (B,) (one step size per chain).
    """
    s = std.view(-1, *([1] * (to.dim() - 1)))
    if bounds is None:
        return (-((to - mean) ** 2) / (2 * s**2)).flatten(1).sum(1) - _log_norm(to, std)
    low, high = bounds
    width = high - low
    terms = []
    for n in range(-MIRRORS, MIRRORS + 1):
        for z in (to + 2 * n * width, 2 * low - to + 2 * n * width):
            terms.append(-((z - mean) ** 2) / (2 * s**2))
    per_pixel = torch.logsumexp(torch.stack(terms), dim=0)
    return per_pixel.flatten(1).sum(1) - _log_norm(to, std)


def _log_norm(to: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """log of the Gaussian normaliser per chain: D log std (the 2 pi part cancels)."""
    return to[0].numel() * torch.log(std)


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
    noise_scale: float = 1.0,
    mh: bool = True,
    bounds: tuple[float, float] | None = BOUNDS,
    where: str = "sampler",
) -> Step:
    """One MALA (or, with mh=False, unadjusted Langevin) step for every chain.

    `logp`, `grad`: log pi and its gradient at `x` (carried over, so a step costs one
    forward/backward pass, at the proposal). `eps` (B,) is each chain's step size.
    """
    e = eps.view(-1, *([1] * (x.dim() - 1)))
    std = noise_scale * torch.sqrt(2 * eps)  # (B,)
    mean_fwd = x + e * grad
    xi = torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)
    prop = mean_fwd + std.view_as(e) * xi
    if bounds is not None:
        prop = fold(prop, *bounds)
    logp_new, grad_new = fn(prop)
    _check(logp_new, grad_new, where)
    if not mh:
        ones = torch.ones_like(logp)
        return Step(prop, logp_new, grad_new, ones, ones.bool())
    mean_bwd = prop + e * grad_new
    log_ratio = (
        logp_new - logp + log_q(x, mean_bwd, std, bounds) - log_q(prop, mean_fwd, std, bounds)
    )
    u = torch.rand(logp.shape, generator=gen, dtype=logp.dtype).to(logp.device)
    accepted = torch.log(u) < log_ratio
    keep = accepted.view_as(e)
    return Step(
        x=torch.where(keep, prop, x),
        logp=torch.where(accepted, logp_new, logp),
        grad=torch.where(keep, grad_new, grad),
        accept_prob=log_ratio.clamp(max=0).exp(),
        accepted=accepted,
    )


def _check(logp: torch.Tensor, grad: torch.Tensor, where: str) -> None:
    for name, value in (("log-density", logp), ("gradient", grad)):
        bad = ~torch.isfinite(value)
        if bad.any():
            raise NumericalError(f"{where}: non-finite {name} {value[bad].flatten()[0].item()}")


def init_canvas(
    cfg: GRMALAConfig,
    shape: tuple[int, ...],
    gen: torch.Generator,
    buffer: torch.Tensor | None = None,
) -> torch.Tensor:
    """Starting images (B, C, H, W) in [-1, 1].

    blank: `canvas_value` plus N(0, canvas_noise^2) (folded into the box); noise: U(-1, 1);
    buffer: random images of `buffer` (e.g. the previous round's fakes), a `buffer_reinit` share
    replaced by U(-1, 1) (JEM's persistent chains); an empty buffer falls back to U(-1, 1).
    """
    uniform = torch.rand(shape, generator=gen) * 2 - 1
    if cfg.canvas == "noise":
        return uniform
    if cfg.canvas == "blank":
        return fold(
            cfg.canvas_value + cfg.canvas_noise * torch.randn(shape, generator=gen), *BOUNDS
        )
    if buffer is None or len(buffer) == 0:
        return uniform
    if tuple(buffer.shape[1:]) != tuple(shape[1:]):
        raise ValueError(f"buffer images {tuple(buffer.shape[1:])} do not match {shape[1:]}")
    pick = buffer[torch.randint(len(buffer), (shape[0],), generator=gen)].float()
    fresh = torch.rand(shape[0], generator=gen) < cfg.buffer_reinit
    return torch.where(fresh.view(-1, *([1] * (len(shape) - 1))), uniform, pick)


def run_chains(
    fn: LogDensityFn,
    x0: torch.Tensor,
    cfg: GRMALAConfig,
    gen: torch.Generator,
    *,
    bounds: tuple[float, float] | None = BOUNDS,
    where: str = "sampler",
    trace: Trace | None = None,
) -> tuple[torch.Tensor, Trace]:
    """Run `cfg.steps` MALA steps from `x0` for every chain; returns (final x, trace).

    During the first `burn_in` steps, with `adapt` on, each chain's log eps moves by
    adapt_rate * (accept_prob - target_accept) (Robbins-Monro), using the acceptance probability
    rather than the 0/1 outcome so the adaptation is smooth.
    """
    trace = trace if trace is not None else Trace()
    x = x0
    logp, grad = fn(x)
    _check(logp, grad, f"{where}, step 0 (canvas)")
    log_eps = torch.full((x.shape[0],), math.log(cfg.step_size), dtype=x.dtype, device=x.device)
    for step in range(1, cfg.steps + 1):
        eps = log_eps.exp()
        s = mala_step(
            x,
            logp,
            grad,
            fn,
            eps,
            gen,
            noise_scale=cfg.noise_scale,
            mh=cfg.mh,
            bounds=bounds,
            where=f"{where}, step {step}",
        )
        x, logp, grad = s.x, s.logp, s.grad
        if cfg.adapt and cfg.mh and step <= cfg.burn_in:
            log_eps = log_eps + cfg.adapt_rate * (s.accept_prob - cfg.target_accept)
        trace.acceptance.append(s.accepted.float().mean().item())
        trace.log_density.append(logp.mean().item())
        trace.step_size.append(eps.mean().item())
    return x, trace


def sample(
    model: torch.nn.Module,
    targets: torch.Tensor,
    cfg: GRMALAConfig,
    gen: torch.Generator,
    *,
    image_shape: tuple[int, int, int],
    mean_grams: Mapping[str, torch.Tensor] | None = None,
    buffer: torch.Tensor | None = None,
    where: str = "sampler",
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, Trace]:
    """GRMALA samples (B, C, H, W) in [-1, 1] for targets (B, K), one chain each."""
    model.eval()
    x0 = init_canvas(cfg, (targets.shape[0], *image_shape), gen, buffer).to(device)
    grams = {k: v.to(device) for k, v in mean_grams.items()} if mean_grams else None
    fn = classifier_density(model, targets.to(device), cfg, grams)
    return run_chains(fn, x0, cfg, gen, where=where)
