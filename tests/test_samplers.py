"""GRMALA: properties of the MALA step, the boundary fold, the target density and its Gram term."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from pipeline.samplers import (
    GRMALAConfig,
    class_log_likelihood,
    classifier_density,
    fold,
    gram,
    gram_distance,
    init_canvas,
    log_density,
    mala_step,
    run_chains,
    sample,
)
from pipeline.train import NumericalError

CFG = GRMALAConfig(steps=4, burn_in=1, gram_weight=0.0)


def gaussian(mu: torch.Tensor, sigma: torch.Tensor):
    """log N(x; mu, diag sigma^2) up to a constant and its exact gradient, per chain."""

    def fn(x):
        z = (x - mu) / sigma
        return -(z**2).sum(1) / 2, -(x - mu) / sigma**2

    return fn


def test_zero_step_and_no_noise_keeps_the_input(tiny_classifier):
    model, _ = tiny_classifier
    targets = torch.eye(3)[[0, 1, 2, 0]]
    fn = classifier_density(model, targets, CFG)
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    cfg = replace(CFG, steps=5, step_size=1e-12, noise_scale=0.0, mh=False, adapt=False)
    out, trace = run_chains(fn, x, cfg, torch.Generator().manual_seed(0))
    assert torch.allclose(out, x, atol=1e-7)
    assert trace.acceptance == [1.0] * 5
    moved, _ = run_chains(fn, x, replace(cfg, step_size=1e3), torch.Generator().manual_seed(0))
    assert (moved - x).abs().max() > 1e-2  # the same call with a real step does move


def _moments(step: float, mh: bool, bounds=None, mu=0.5, sigma=1.0, chains=4000, steps=150):
    fn = gaussian(torch.tensor([mu]), torch.tensor([sigma]))
    cfg = GRMALAConfig(steps=steps, step_size=step, mh=mh, adapt=False, burn_in=0, gram_weight=0)
    x0 = torch.zeros(chains, 1) if bounds else torch.randn(chains, 1) * sigma + mu
    x, trace = run_chains(fn, x0, cfg, torch.Generator().manual_seed(1), bounds=bounds)
    return x.mean().item(), x.var().item(), trace


def test_gaussian_target_moments_match():
    mean, var, trace = _moments(step=0.2, mh=True)
    assert abs(mean - 0.5) < 0.06
    assert abs(var - 1.0) < 0.1
    assert 0.5 < sum(trace.acceptance) / len(trace.acceptance) < 1.0


def test_mh_correction_helps_at_a_large_step():
    # unadjusted Langevin at eps on N(0, 1) has stationary variance 1 / (1 - eps/2): 2 at eps=1
    _, var_ula, _ = _moments(step=1.0, mh=False)
    _, var_mala, trace = _moments(step=1.0, mh=True)
    assert abs(var_ula - 1.0) > 0.6
    assert abs(var_mala - 1.0) < 0.15
    assert min(trace.acceptance) < 1.0  # MH did reject something


def test_box_boundary_targets_the_truncated_gaussian():
    # N(0.8, 0.5^2) restricted to [-1, 1]: much of its mass sits beyond the upper edge
    grid = torch.linspace(-1, 1, 200001, dtype=torch.float64)
    dens = torch.exp(-((grid - 0.8) ** 2) / (2 * 0.25))
    dens = dens / dens.sum()
    true_mean = (grid * dens).sum().item()
    true_var = ((grid - true_mean) ** 2 * dens).sum().item()
    mean, var, _ = _moments(step=0.1, mh=True, bounds=(-1.0, 1.0), mu=0.8, sigma=0.5, steps=200)
    assert abs(mean - true_mean) < 0.03
    assert abs(var - true_var) < 0.1 * true_var


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
    cfg = replace(CFG, gram_weight=0.5, canvas="noise", steps=6, burn_in=3)

    def draw(seed):
        return sample(
            model,
            targets,
            cfg,
            torch.Generator().manual_seed(seed),
            image_shape=(1, 8, 8),
            mean_grams=grams,
        )

    (a, ta), (b, tb), (c, _) = draw(7), draw(7), draw(8)
    assert torch.equal(a, b) and ta.acceptance == tb.acceptance
    assert not torch.equal(a, c)
    assert a.min() >= -1 and a.max() <= 1


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
    # and it is zero exactly at the target statistics
    same = {
        n: torch.randn(1, *m.shape[1:], generator=gen).repeat(2, 1, 1, 1) for n, m in maps.items()
    }
    at = {n: gram(v[:1]).repeat(2, 1, 1) for n, v in same.items()}
    assert torch.allclose(gram_distance(same, torch.eye(2), at), torch.zeros(2), atol=1e-5)


def test_class_term_uses_the_softmax_over_all_outputs():
    targets = torch.tensor([[1.0, 0.0]])
    real_only = class_log_likelihood(torch.tensor([[2.0, 0.0]]), targets)
    with_fake = class_log_likelihood(torch.tensor([[2.0, 0.0, 5.0]]), targets)  # fake class K=2
    assert torch.allclose(real_only, torch.log_softmax(torch.tensor([2.0, 0.0]), 0)[:1])
    assert with_fake < real_only - 2.0


def test_log_density_terms_and_temperature(tiny_classifier):
    model, _ = tiny_classifier
    x = torch.rand(2, 1, 8, 8) * 2 - 1
    t = torch.eye(3)[:2]
    grams = {"block1": torch.rand(3, 4, 4)}
    plain = log_density(model, x, t, CFG)
    hot = log_density(model, x, t, replace(CFG, temperature=2.0))
    assert torch.allclose(hot, plain / 2)
    with_gram = log_density(
        model, x, t, replace(CFG, gram_weight=1.0, gram_layers=("block1",)), grams
    )
    with_prior = log_density(model, x, t, replace(CFG, prior_weight=1.0))
    assert (with_gram < plain).all() and (with_prior < plain).all()


def test_non_finite_density_raises_naming_step():
    calls = {"n": 0}

    def fn(x):
        calls["n"] += 1
        value = torch.full((x.shape[0],), math.nan if calls["n"] == 3 else 0.0)
        return value, torch.zeros_like(x)

    cfg = GRMALAConfig(steps=5, burn_in=0, gram_weight=0)
    with pytest.raises(NumericalError, match=r"r7, step 2: non-finite log-density nan"):
        run_chains(fn, torch.zeros(2, 3), cfg, torch.Generator().manual_seed(0), where="r7")


def test_mala_step_rejected_chains_keep_their_state():
    fn = gaussian(torch.zeros(1), torch.ones(1))
    x = torch.zeros(500, 1)
    logp, grad = fn(x)
    s = mala_step(
        x, logp, grad, fn, torch.full((500,), 4.0), torch.Generator().manual_seed(0), bounds=None
    )
    assert 0 < s.accepted.sum() < 500
    assert torch.equal(s.x[~s.accepted], x[~s.accepted])
    assert torch.equal(s.logp[~s.accepted], logp[~s.accepted])


@pytest.mark.parametrize("kind", ["blank", "noise", "buffer"])
def test_canvas(kind):
    cfg = replace(CFG, canvas=kind, canvas_value=-1.0, canvas_noise=0.05, buffer_reinit=0.0)
    buffer = torch.full((3, 1, 4, 4), 0.25)
    x = init_canvas(cfg, (6, 1, 4, 4), torch.Generator().manual_seed(0), buffer)
    assert x.shape == (6, 1, 4, 4) and x.min() >= -1 and x.max() <= 1
    if kind == "blank":
        assert (x + 1).abs().max() < 0.3 and x.std() > 0
    elif kind == "buffer":
        assert torch.equal(x, torch.full_like(x, 0.25))
    else:
        assert x.std() > 0.4
