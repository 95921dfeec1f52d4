"""Langevin samplers: the MALA step (full and masked), the box, the target density, its Gram term,
step adaptation, annealed Langevin, and the canvases."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from pipeline.densities import (
    class_log_likelihood,
    classifier_density,
    gram,
    gram_distance,
    log_density,
    null_density,
)
from pipeline.errors import NumericalError
from pipeline.samplers import (
    CanvasConfig,
    SamplerConfig,
    annealed_levels,
    fold,
    initial_log_eps,
    mala_step,
    run_annealed,
    run_chains,
)

CFG = SamplerConfig(
    temperature=1.0,
    step_size=0.1,
    mh=True,
    box="reflect",
    adapt=False,
    target_accept=0.57,
    adapt_rate=0.5,
    step_min=1e-6,
    step_max=10.0,
    gram_weight=0.0,
    gram_layers=("block1", "block2"),
)


def gaussian(mu: torch.Tensor, sigma: torch.Tensor):
    """log N(x; mu, diag sigma^2) up to a constant and its exact gradient, per chain."""

    def fn(x):
        z = (x - mu) / sigma
        return -(z**2).flatten(1).sum(1) / 2, -(x - mu) / sigma**2

    return fn


def chains(cfg, fn, x0, steps, seed=1, **kw):
    log_eps = torch.full((x0.shape[0],), math.log(cfg.step_size))
    return run_chains(fn, x0, log_eps, cfg, torch.Generator().manual_seed(seed), steps=steps, **kw)


def test_zero_step_keeps_the_input(tiny_classifier):
    model, _ = tiny_classifier
    fn = classifier_density(model, torch.eye(3)[[0, 1, 2, 0]], CFG, "log_softmax")
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    tiny = replace(CFG, step_size=1e-14, step_min=1e-14, mh=False, box="clamp")
    run = chains(tiny, fn, x, 5)
    assert torch.allclose(run.x, x, atol=1e-6)
    assert run.trace.acceptance == [1.0] * 5
    moved = chains(replace(tiny, step_size=1.0, step_max=1.0), fn, x, 5)
    assert (moved.x - x).abs().max() > 1e-2  # the same call with a real step does move


def _moments(step, mh, box="reflect", mu=0.5, sigma=1.0, n=4000, steps=150, start=None):
    fn = gaussian(torch.tensor([mu]), torch.tensor([sigma]))
    cfg = replace(CFG, step_size=step, mh=mh, box=box)
    x0 = start if start is not None else torch.randn(n, 1) * sigma + mu
    run = chains(cfg, fn, x0, steps)
    return run.x.mean().item(), run.x.var().item(), run


def test_gaussian_target_moments_match():
    # the box [-1, 1] is far wider than needed here? no: N(0.5, 1) is cut by it, so use the
    # truncated moments; a narrow Gaussian stays inside the box and keeps its own moments
    mean, var, run = _moments(step=0.02, mh=True, mu=0.1, sigma=0.2)
    assert abs(mean - 0.1) < 0.02 and abs(var - 0.04) < 0.006
    assert 0.5 < sum(run.trace.acceptance) / len(run.trace.acceptance) < 1.0


def test_mh_correction_helps_at_a_large_step():
    # unadjusted Langevin at eps on N(0, s^2) has stationary variance s^2 / (1 - eps / (2 s^2))
    _, var_ula, _ = _moments(step=0.04, mh=False, mu=0.0, sigma=0.2, box="clamp")
    _, var_mala, run = _moments(step=0.04, mh=True, mu=0.0, sigma=0.2)
    assert abs(var_ula - 0.04) > 0.02
    assert abs(var_mala - 0.04) < 0.006
    assert min(run.trace.acceptance) < 1.0  # MH did reject something


def test_box_boundary_targets_the_truncated_gaussian():
    # N(0.8, 0.5^2) restricted to [-1, 1]: much of its mass sits beyond the upper edge
    grid = torch.linspace(-1, 1, 200001, dtype=torch.float64)
    dens = torch.exp(-((grid - 0.8) ** 2) / (2 * 0.25))
    dens = dens / dens.sum()
    true_mean = (grid * dens).sum().item()
    true_var = ((grid - true_mean) ** 2 * dens).sum().item()
    mean, var, _ = _moments(step=0.1, mh=True, mu=0.8, sigma=0.5, steps=200,
                            start=torch.zeros(4000, 1))  # fmt: skip
    assert abs(mean - true_mean) < 0.03
    assert abs(var - true_var) < 0.1 * true_var


def test_masked_step_never_moves_pixels_outside_the_window():
    fn = gaussian(torch.zeros(1, 4, 4), torch.full((1, 4, 4), 0.3))
    x0 = torch.rand(500, 1, 4, 4) * 2 - 1
    window = torch.zeros(500, 1, 4, 4)
    window[:, :, 1:3, 1:3] = 1.0
    run = chains(replace(CFG, step_size=0.05), fn, x0, 30, precond=window)
    inside = window.bool().expand_as(x0)
    assert torch.equal(run.x[~inside], x0[~inside])
    assert (run.x[inside] - x0[inside]).abs().max() > 0.1
    assert run.accepted.sum() > 0


def test_masked_mala_keeps_a_gaussian_invariant_inside_the_window():
    """Chains started exactly from the target stay distributed as the target: the masked
    proposal and its MH ratio leave N(mu, s^2) invariant on the window (a Gibbs block)."""
    mu, s = torch.tensor([0.2, -0.1]), torch.tensor([0.15, 0.25])
    fn = gaussian(mu, s)
    gen = torch.Generator().manual_seed(3)
    x0 = mu + s * torch.randn(20000, 2, generator=gen)
    window = torch.tensor([[1.0, 0.0]]).expand(20000, 2)  # only the first coordinate moves
    run = chains(replace(CFG, step_size=0.02), fn, x0, 40, precond=window)
    assert abs(run.x[:, 0].mean() - 0.2) < 0.01 and abs(run.x[:, 0].std() - 0.15) < 0.01
    assert torch.equal(run.x[:, 1], x0[:, 1])
    # a Gaussian (soft) window: per-pixel step scales, still invariant
    soft = torch.tensor([[1.0, 0.3]]).expand(20000, 2)
    run = chains(replace(CFG, step_size=0.02), fn, x0, 40, precond=soft)
    assert abs(run.x[:, 1].std() - 0.25) < 0.015 and abs(run.x[:, 1].mean() + 0.1) < 0.015


def test_step_adaptation_moves_toward_the_target_acceptance():
    fn = gaussian(torch.zeros(1, 8), torch.full((1, 8), 0.1))
    x0 = torch.randn(300, 8) * 0.1
    cfg = replace(CFG, step_size=0.5, adapt=True)  # far too large: almost everything rejected
    run = chains(cfg, fn, x0, 200)
    late = sum(run.trace.acceptance[-50:]) / 50
    assert run.trace.acceptance[0] < 0.2 and 0.4 < late < 0.75
    assert run.log_eps.exp().max() < 0.5
    frozen = chains(cfg, fn, x0, 200, adapt_steps=0)  # adaptation off after 0 steps
    assert torch.allclose(frozen.log_eps, torch.full((300,), math.log(0.5)))


def test_fold_reflects_into_the_box():
    z = torch.tensor([-3.5, -1.2, -1.0, 0.3, 1.0, 1.2, 2.5, 5.0])
    y = fold(z, -1.0, 1.0)
    assert torch.allclose(y, torch.tensor([0.5, -0.8, -1.0, 0.3, 1.0, 0.8, -0.5, 1.0]))
    inside = torch.rand(100) * 2 - 1
    assert torch.equal(fold(inside, -1.0, 1.0), inside)


def test_same_seed_gives_bit_identical_samples(tiny_classifier):
    model, _ = tiny_classifier
    targets = torch.tensor([[1.0, 0, 0], [0, 0.3, 0.7], [0, 1, 0]])
    grams = {"block1": torch.rand(3, 4, 4), "block2": torch.rand(3, 8, 8)}
    cfg = replace(CFG, gram_weight=0.5, adapt=True)
    x0 = torch.rand(3, 1, 8, 8) * 2 - 1

    def draw(seed):
        fn = classifier_density(model, targets, cfg, "log_softmax", grams)
        return chains(cfg, fn, x0, 6, seed=seed)

    a, b, c = draw(7), draw(7), draw(8)
    assert torch.equal(a.x, b.x) and a.trace.acceptance == b.trace.acceptance
    assert not torch.equal(a.x, c.x)
    assert a.x.min() >= -1 and a.x.max() <= 1


def test_gram_term_decreases_under_its_own_gradient():
    gen = torch.Generator().manual_seed(0)
    maps = {
        "a": torch.randn(4, 5, 6, 6, generator=gen),
        "b": torch.randn(4, 3, 3, 3, generator=gen),
    }
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.2, 0.8]])
    means = {n: gram(torch.randn(2, *m.shape[1:], generator=gen)) for n, m in maps.items()}
    leaves = {n: m.clone().requires_grad_(True) for n, m in maps.items()}
    before = gram_distance(leaves, targets, means)
    before.sum().backward()
    with torch.no_grad():
        after = gram_distance({n: v - 1e-3 * v.grad for n, v in leaves.items()}, targets, means)
    assert (after < before).all()
    same = {
        n: torch.randn(1, *m.shape[1:], generator=gen).repeat(2, 1, 1, 1) for n, m in maps.items()
    }
    at = {n: gram(v[:1]).repeat(2, 1, 1) for n, v in same.items()}
    assert torch.allclose(gram_distance(same, torch.eye(2), at), torch.zeros(2), atol=1e-5)


def test_class_terms():
    targets = torch.tensor([[1.0, 0.0]])
    logits = torch.tensor([[2.0, 0.0, 5.0]])  # fake class K = 2
    real_only = class_log_likelihood(torch.tensor([[2.0, 0.0]]), targets)
    with_fake = class_log_likelihood(logits, targets)
    assert torch.allclose(real_only, torch.log_softmax(torch.tensor([2.0, 0.0]), 0)[:1])
    assert with_fake < real_only - 2.0  # the softmax runs over the fake output too
    assert class_log_likelihood(logits, targets, "logit").item() == 2.0
    soft = torch.tensor([[0.25, 0.75]])
    assert class_log_likelihood(logits, soft, "logit").item() == 0.5
    lse = class_log_likelihood(logits, targets, "logsumexp").item()
    assert abs(lse - math.log(math.exp(2) + 1)) < 1e-6  # over the real classes only


def test_log_density_terms_and_temperature(tiny_classifier):
    model, _ = tiny_classifier
    x = torch.rand(2, 1, 8, 8) * 2 - 1
    t = torch.eye(3)[:2]
    grams = {"block1": torch.rand(3, 4, 4)}
    plain = log_density(model, x, t, CFG, "log_softmax")
    hot = log_density(model, x, t, replace(CFG, temperature=2.0), "log_softmax")
    assert torch.allclose(hot, plain / 2)
    cfg = replace(CFG, gram_weight=1.0, gram_layers=("block1",))
    assert (log_density(model, x, t, cfg, "log_softmax", grams) < plain).all()


def test_non_finite_density_raises_naming_step():
    calls = {"n": 0}

    def fn(x):
        calls["n"] += 1
        value = torch.full((x.shape[0],), math.nan if calls["n"] == 3 else 0.0)
        return value, torch.zeros_like(x)

    with pytest.raises(NumericalError, match=r"r7, step 2: non-finite log-density nan"):
        chains(CFG, fn, torch.zeros(2, 3), 5, where="r7")


def test_mala_step_rejected_chains_keep_their_state():
    fn = gaussian(torch.zeros(1), torch.full((1,), 0.2))
    x = torch.zeros(500, 1)
    logp, grad = fn(x)
    eps = torch.full((500,), 0.5)
    s = mala_step(x, logp, grad, fn, eps, torch.Generator().manual_seed(0), mh=True, box="reflect")
    assert 0 < s.accepted.sum() < 500
    assert torch.equal(s.x[~s.accepted], x[~s.accepted])
    assert torch.equal(s.logp[~s.accepted], logp[~s.accepted])


def test_null_density_is_flat_and_mh_accepts_everything():
    x0 = torch.rand(50, 1, 4, 4) * 2 - 1
    run = chains(replace(CFG, step_size=0.01), null_density, x0, 10)
    assert run.trace.acceptance == [1.0] * 10 and not torch.equal(run.x, x0)


def test_clamped_box_needs_unadjusted_langevin():
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match="clamp needs mh: false"):
        replace(CFG, box="clamp").validate()
    with pytest.raises(ConfigError, match="adaptation needs mh: true"):
        replace(CFG, mh=False, box="clamp", adapt=True).validate()


def test_annealed_levels_are_geometric():
    sigmas = annealed_levels(1.0, 0.01, 3)
    assert sigmas == pytest.approx([1.0, 0.1, 0.01])


def test_annealed_sampling_recovers_a_gaussian_class_conditional():
    """On N(mu_y, s^2) noised at sigma (score -(x - mu_y) / (s^2 + sigma^2)), annealed Langevin
    from a blank canvas ends with the class mean and variance of the smallest level."""
    mu = torch.tensor([[-0.4, 0.1], [0.3, -0.2]])  # two classes, two pixels
    s = 0.15
    targets = torch.tensor([[1.0, 0.0]] * 3000 + [[0.0, 1.0]] * 3000)

    def density_at(sigma):
        var = s**2 + sigma**2

        def fn(x):
            m = targets @ mu
            return -((x - m) ** 2).sum(1) / (2 * var), -(x - m) / var

        return fn

    sigmas = annealed_levels(1.0, 0.01, 8)
    cfg = replace(CFG, step_size=0.002, adapt=True)
    run = run_annealed(density_at, torch.zeros(6000, 2), sigmas, cfg,
                       torch.Generator().manual_seed(0), steps_per_level=40)  # fmt: skip
    for c in (0, 1):
        part = run.x[c * 3000 : (c + 1) * 3000]
        assert torch.allclose(part.mean(0), mu[c], atol=0.01)
        assert torch.allclose(part.std(0), torch.full((2,), math.sqrt(s**2 + 0.01**2)), atol=0.01)


@pytest.mark.parametrize("kind", ["blank", "noise"])
def test_canvas(kind):
    x = CanvasConfig(kind, -1.0, 0.05).draw((6, 1, 4, 4), torch.Generator().manual_seed(0))
    assert x.shape == (6, 1, 4, 4) and x.min() >= -1 and x.max() <= 1
    if kind == "blank":
        assert (x + 1).abs().max() < 0.3 and x.std() > 0
    else:
        assert x.std() > 0.4


def test_initial_log_eps():
    assert torch.allclose(initial_log_eps(CFG, 3).exp(), torch.full((3,), 0.1))


def test_jem_sgld_is_unadjusted_langevin_at_eps_equal_t():
    """JEM's x <- clamp(x + a grad f + s xi) is the unadjusted step at eps = s^2 / 2 on f / T
    with T = s^2 / (2 a): the same numbers, draw for draw."""
    a, s = 1.0, 0.01
    cfg = replace(CFG, temperature=s**2 / (2 * a), step_size=s**2 / 2, mh=False, box="clamp")
    f_grad = torch.tensor([[0.3, -0.2, 5.0]])

    def fn(x):  # f(x) = <g, x>: gradient g everywhere
        return (x * f_grad).sum(1) / cfg.temperature, f_grad.expand_as(x) / cfg.temperature

    x = torch.tensor([[0.1, -0.4, 0.9]])
    logp, grad = fn(x)
    step = mala_step(x, logp, grad, fn, torch.tensor([cfg.step_size]),
                     torch.Generator().manual_seed(4), mh=False, box="clamp")  # fmt: skip
    xi = torch.randn(x.shape, generator=torch.Generator().manual_seed(4))
    assert torch.allclose(step.x, (x + a * f_grad + s * xi).clamp(-1, 1), atol=1e-6)


@pytest.mark.parametrize("step_size, steps, reaches", [(2e-5, 10, False), (2.5e-4, 100, True)])
def test_annealed_chains_leave_the_canvas_only_with_enough_langevin_time(step_size, steps, reaches):
    """A level runs for steps * eps_L / sigma_L^2 in units of sigma_i^2: 0.08 (Score-STIC's
    earlier default) leaves the chains near the blank canvas; NCSN's 10 reaches the class mean
    (docs/stic.md, Score-STIC). MH on, adaptation off: the time is what the settings say."""
    mu = torch.tensor([-0.4, 0.1])
    s = 0.15

    def density_at(sigma):
        var = s**2 + sigma**2
        return lambda x: (-((x - mu) ** 2).sum(1) / (2 * var), -(x - mu) / var)

    sigmas = annealed_levels(1.0, 0.05, 10)
    cfg = replace(CFG, step_size=step_size, adapt=False)
    run = run_annealed(density_at, -torch.ones(2000, 2), sigmas, cfg,
                       torch.Generator().manual_seed(0), steps_per_level=steps)  # fmt: skip
    error = float((run.x.mean(0) - mu).abs().max())
    assert (error < 0.02) if reaches else (error > 0.2), error
