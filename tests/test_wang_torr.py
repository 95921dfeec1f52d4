"""Wang & Torr: resolution schedule, views, losses, variants, sampling."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from pipeline.errors import ConfigError
from pipeline.methods import wang_torr as wt
from pipeline.params import parse_params


def base_config(real_params, **changes) -> wt.WangTorrConfig:
    return dataclasses.replace(parse_params(real_params).wang_torr.sampler, **changes)


@pytest.mark.parametrize(
    "start,final,steps,progressive,expected",
    [
        (4, 16, 10, True, [(4, 10), (8, 10), (16, 10)]),
        (4, 16, 10, False, [(16, 30)]),  # the same step budget at full size
        (3, 16, 5, True, [(3, 5), (6, 5), (12, 5), (16, 5)]),  # the last level snaps to the size
        (16, 16, 7, True, [(16, 7)]),
        (32, 16, 7, True, [(16, 7)]),  # a start above the size is the size
        (8, 32, 0, True, [(8, 0), (16, 0), (32, 0)]),
    ],
)
def test_resolution_schedule(start, final, steps, progressive, expected):
    assert wt.resolution_schedule(start, final, steps, progressive) == expected


def test_views_shape_and_identity_when_switched_to_nothing(real_params):
    x = torch.rand(5, 1, 8, 8) * 2 - 1
    cfg = base_config(real_params, num_views=3, mask_prob=0.0, max_shift=0)
    v = wt.stochastic_views(x, cfg, torch.Generator().manual_seed(0))
    assert v.shape == (15, 1, 8, 8) and torch.equal(v, x.repeat(3, 1, 1, 1))


def test_views_mask_whole_patches_with_the_fill_value(real_params):
    x = torch.ones(2, 1, 8, 8)
    cfg = base_config(
        real_params, num_views=4, mask_prob=0.5, mask_patch=4, mask_fill=-1.0, max_shift=0
    )
    v = wt.stochastic_views(x, cfg, torch.Generator().manual_seed(0))
    patches = v.unfold(2, 4, 4).unfold(3, 4, 4)  # (8, 1, 2, 2, 4, 4)
    flat = patches.reshape(*patches.shape[:4], 16)
    assert ((flat == 1).all(-1) | (flat == -1).all(-1)).all()  # each patch kept or masked whole
    assert (v == -1).any() and (v == 1).any()


def test_losses_on_known_values():
    feats = torch.tensor([[1.0, 2.0], [3.0, 0.0], [0.0, 0.0]])
    labels = torch.tensor([0, 0, 1])
    means = torch.tensor([[2.0, 1.0], [1.0, 1.0]])
    # (||(-1, 1)||^2 + ||(1, -1)||^2 + ||(-1, -1)||^2) / D / B = (2 + 2 + 2) / 2 / 3
    assert float(wt.distance_loss(feats, labels, means)) == pytest.approx(1.0)
    covs = torch.stack([torch.cov(feats[:2].T), torch.eye(2)])
    # class 0 matches its mean and covariance exactly; class 1 has one sample and is skipped
    assert float(wt.distribution_loss(feats, labels, means, covs)) == pytest.approx(0.0, abs=1e-6)
    off = wt.distribution_loss(feats, labels, means + 1.0, covs)
    assert float(off) == pytest.approx(1.0)  # ||(1, 1)||^2 / 2


def test_variant_changes_only_what_it_sets(real_params):
    method = parse_params(real_params).wang_torr
    assert method.variant("wang_torr") == method.sampler
    assert method.variant("wang_torr_no_views") == dataclasses.replace(method.sampler, views=False)
    with pytest.raises(ConfigError, match="not a listed variant"):
        method.variant("nope")


@pytest.mark.parametrize(
    "variant,error",
    [
        ({"wang_torr_bad": {"lr": -1.0}}, "wang_torr.variants.wang_torr_bad"),
        ({"wang_torr_x": {"mask_prob": 2.0}}, "mask_prob"),
        ({"wang_torr_y": {"no_such_switch": 1}}, "unknown key"),
        ({"Bad-Name": {}}, "Bad-Name"),
        ({"acgan": {}}, "also made by"),
        ({}, "at least one variant"),
    ],
)
def test_params_refuse_bad_variants(real_params, variant, error):
    real_params["wang_torr"]["variants"] = variant
    real_params["eval"]["methods"] = [
        m for m in real_params["eval"]["methods"] if not m.startswith("wang_torr")
    ]
    with pytest.raises(ConfigError, match=error):
        parse_params(real_params)


SMALL = dict(steps_per_resolution=3, start_resolution=4, samples_per_class=3, num_views=2)


@pytest.mark.parametrize(
    "switches",
    [
        {},  # all on
        {"views": False, "distance_weight": 0.0, "distribution_weight": 0.0, "progressive": False},
    ],
)
def test_sample_shapes_range_determinism(real_params, tiny_classifier, tiny_data, switches):
    model, _ = tiny_classifier
    cfg = base_config(real_params, **SMALL, **switches)
    stats = wt.class_feature_stats(model, tiny_data.float_images(), tiny_data.labels, 3)

    def run(seed):
        return wt.sample(model, cfg, stats, 3, (1, 8, 8), torch.Generator().manual_seed(seed))

    x, y, losses = run(0)
    assert x.shape == (9, 1, 8, 8) and x.min() >= -1 and x.max() <= 1
    assert y.tolist() == [0] * 3 + [1] * 3 + [2] * 3
    assert set(losses) >= {"ce", "distance", "distribution", "total"}
    assert torch.equal(x, run(0)[0]) and not torch.equal(x, run(1)[0])
    assert all(p.grad is None for p in model.parameters())  # only the image is optimised


def test_optimisation_lowers_the_class_loss(real_params, tiny_classifier, tiny_data):
    model, _ = tiny_classifier
    stats = wt.class_feature_stats(model, tiny_data.float_images(), tiny_data.labels, 3)
    base = dict(SMALL, views=False, distance_weight=0.0, distribution_weight=0.0, lr=0.1)
    gen = torch.Generator
    _, _, before = wt.sample(
        model,
        base_config(real_params, **{**base, "steps_per_resolution": 0}),
        stats,
        3,
        (1, 8, 8),
        gen().manual_seed(0),
    )
    _, _, after = wt.sample(
        model,
        base_config(real_params, **{**base, "steps_per_resolution": 20}),
        stats,
        3,
        (1, 8, 8),
        gen().manual_seed(0),
    )
    assert after["ce_clean"] < before["ce_clean"]
