"""Attentive-STIC: windows, saliency, drawing in glimpses, the equal-budget full-image control."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from pipeline.errors import ConfigError
from pipeline.methods.attentive import (
    AttentiveConfig,
    draw,
    random_centres,
    saliency_centres,
    window_mask,
)
from pipeline.samplers import SamplerConfig

SAMPLER = SamplerConfig(
    temperature=1.0, step_size=0.01, mh=True, box="reflect", adapt=False, target_accept=0.57,
    adapt_rate=0.5, step_min=1e-6, step_max=1.0, gram_weight=0.0, gram_layers=(),
)  # fmt: skip
CFG = AttentiveConfig(glimpses=3, steps_per_glimpse=4, window=4, mask="square",
                      order="saliency", inhibition=0.0, hard_per_class=2, soft=0)  # fmt: skip


def pull_to(target: torch.Tensor):
    """A Gaussian target N(target, 0.3^2) per pixel: its gradient points at `target`."""

    def fn(x):
        return -((x - target) ** 2).flatten(1).sum(1) / 0.18, -(x - target) / 0.09

    return fn


def test_square_window_is_clipped_to_the_image():
    m = window_mask(torch.tensor([[0, 0], [7, 7], [4, 3]]), 8, 4, "square")
    assert m.shape == (3, 1, 8, 8) and (m.sum((1, 2, 3)) == 16).all()
    assert m[0, 0, :4, :4].all() and m[1, 0, 4:, 4:].all()


def test_gaussian_window_is_soft_and_cut():
    m = window_mask(torch.tensor([[4, 4]]), 9, 4, "gaussian")
    assert m.max() == 1 and m[0, 0, 4, 4] == 1 and (m > 0).sum() < 81 and 0 < m[0, 0, 4, 6] < 1


def test_saliency_picks_where_the_gradient_is_large():
    grad = torch.zeros(2, 1, 8, 8)
    grad[0, 0, 5:8, 0:3] = 1.0
    grad[0, 0, 6, 1] = 5.0  # the blob around (6, 1) is the most salient 3x3 window
    grad[1, 0, 1:4, 4:7] = -1.0
    centres = saliency_centres(grad, 3)
    assert centres.tolist() == [[6, 1], [2, 5]]  # |grad|: the sign does not matter
    r = random_centres(100, 8, torch.Generator().manual_seed(0))
    assert r.min() >= 0 and r.max() <= 7 and len(set(map(tuple, r.tolist()))) > 20


def test_inhibition_of_return_moves_the_window_on():
    """Without inhibition the window returns to the most salient place glimpse after glimpse;
    with it, a visited place loses saliency and the next window opens elsewhere."""
    grad = torch.zeros(1, 1, 8, 8)
    grad[0, 0, 0:3, 0:3] = 2.0  # the most salient 3x3 window, centre (1, 1)
    grad[0, 0, 5:8, 5:8] = 1.0  # the next, centre (6, 6)
    visits = window_mask(torch.tensor([[1, 1]]), 8, 3, "square")
    assert saliency_centres(grad, 3, visits, 0.0).tolist() == [[1, 1]]
    assert saliency_centres(grad, 3, visits, 0.8).tolist() == [[6, 6]]
    with pytest.raises(ConfigError, match="inhibition"):
        replace(CFG, inhibition=1.0).validate()


def test_a_drawing_with_inhibition_covers_more_of_the_canvas():
    """A target that pulls one corner hardest: saliency alone keeps drawing there; with
    inhibition of return the glimpses spread over the canvas."""
    target = torch.full((1, 1, 8, 8), 0.2)
    target[..., :4, :4] = 0.9
    x0 = -torch.ones(1, 1, 8, 8) + 0.01
    log_eps = torch.full((1,), math.log(0.01))
    cfg = replace(CFG, glimpses=4)
    moved = {}
    for h in (0.0, 0.9):
        out = draw(pull_to(target), x0, log_eps, SAMPLER, replace(cfg, inhibition=h),
                   torch.Generator().manual_seed(0))  # fmt: skip
        moved[h] = int((out.x != x0).sum())
    assert moved[0.9] > moved[0.0], moved


def test_drawing_moves_only_the_window_at_each_glimpse():
    target = torch.ones(2, 1, 8, 8) * 0.5
    x0 = -torch.ones(2, 1, 8, 8) + 0.01
    log_eps = torch.full((2,), math.log(0.01))
    out = draw(pull_to(target), x0, log_eps, SAMPLER, CFG, torch.Generator().manual_seed(0))
    assert out.sequence.shape == (CFG.glimpses + 1, 2, 1, 8, 8)
    assert torch.equal(out.sequence[0], x0)
    for t in range(CFG.glimpses):
        changed = (out.sequence[t + 1] != out.sequence[t]).flatten(1).sum(1)
        assert (changed <= 16).all() and (changed > 0).all()  # one 4x4 window per glimpse
    assert out.steps == CFG.glimpses * CFG.steps_per_glimpse


def test_full_image_control_has_the_same_pixel_budget():
    cfg = replace(CFG, mask="none", glimpses=4, steps_per_glimpse=8, window=4)
    # 4 glimpses x 8 steps x 16 pixels = 512 pixel updates = 8 full steps of 64 pixels
    assert cfg.full_image_steps(8) == 8
    target = torch.zeros(3, 1, 8, 8)
    out = draw(pull_to(target), torch.rand(3, 1, 8, 8) * 2 - 1, torch.full((3,), math.log(0.01)),
               SAMPLER, cfg, torch.Generator().manual_seed(0))  # fmt: skip
    assert out.steps == 8 and out.sequence.shape[0] == 5
    assert (out.sequence[1] != out.sequence[0]).flatten(1).sum(1).min() > 16  # whole image moves


def test_step_sizes_adapt_during_the_burn_in_and_carry_across_glimpses():
    sampler = replace(SAMPLER, adapt=True, step_max=10.0)
    target = torch.zeros(2, 1, 8, 8)
    x0 = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
    start = torch.full((2,), math.log(1e-3))  # far too small: nearly all accepted, it grows
    out = draw(pull_to(target), x0, start, sampler, CFG, torch.Generator().manual_seed(0),
               adapt_steps=6)  # fmt: skip
    eps = out.trace.step_size  # the mean eps used at each of the 12 steps
    assert len(eps) == CFG.glimpses * CFG.steps_per_glimpse
    assert eps[0] == pytest.approx(1e-3) and eps[4] > eps[3] > eps[0]  # adapting, and the second
    # glimpse (step 5) goes on from the first's eps instead of restarting at 1e-3
    assert len(set(eps[6:])) == 1  # fixed after the burn-in's six steps
    fixed = draw(pull_to(target), x0, start, sampler, CFG, torch.Generator().manual_seed(0))
    assert max(fixed.trace.step_size) == min(fixed.trace.step_size)  # adapt_steps=0: fixed eps
