"""Wang & Torr: resolution schedule, views, losses, variants, sampling."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from pipeline.config import ConfigError, from_dict
from pipeline.methods import wang_torr as wt
from pipeline.params import parse_params


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


def test_views_shape_and_identity_when_switched_to_nothing():
    x = torch.rand(5, 1, 8, 8) * 2 - 1
    cfg = wt.WangTorrConfig(num_views=3, mask_prob=0.0, max_shift=0)
    v = wt.stochastic_views(x, cfg, torch.Generator().manual_seed(0))
    assert v.shape == (15, 1, 8, 8) and torch.equal(v, x.repeat(3, 1, 1, 1))


def test_views_mask_whole_patches_with_the_fill_value():
    x = torch.ones(2, 1, 8, 8)
    cfg = wt.WangTorrConfig(num_views=4, mask_prob=0.5, mask_patch=4, mask_fill=-1.0, max_shift=0)
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


def test_override_changes_only_what_it_sets():
    base = wt.WangTorrConfig()
    over = from_dict(wt.WangTorrOverride, {"views": False, "distance_weight": 0.0})
    cfg = wt.apply_override(base, over)
    assert cfg == dataclasses.replace(base, views=False, distance_weight=0.0)
    with pytest.raises(ConfigError, match="mask_prob"):
        wt.apply_override(base, from_dict(wt.WangTorrOverride, {"mask_prob": 2.0}))
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(wt.WangTorrOverride, {"no_such_switch": 1})


@pytest.mark.parametrize(
    "variant,error",
    [
        ({"wang_torr_bad": {"lr": -1.0}}, "wang_torr_variants.wang_torr_bad.lr"),
        ({"Bad-Name": {}}, "wang_torr_variants.Bad-Name"),
        ({"acgan": {}}, "name taken"),
        ({}, "at least one variant"),
    ],
)
def test_params_refuse_bad_variants(real_params, variant, error):
    real_params["wang_torr_variants"] = variant
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
def test_sample_shapes_range_determinism(tiny_classifier, tiny_data, switches):
    model, _ = tiny_classifier
    cfg = wt.WangTorrConfig(**SMALL, **switches)
    stats = wt.class_feature_stats(model, tiny_data.float_images(), tiny_data.labels, 3)

    def run(seed):
        return wt.sample(
            model, cfg, stats, 3, (1, 8, 8), torch.Generator().manual_seed(seed), progress=False
        )

    x, y, losses = run(0)
    assert x.shape == (9, 1, 8, 8) and x.min() >= -1 and x.max() <= 1
    assert y.tolist() == [0] * 3 + [1] * 3 + [2] * 3
    assert set(losses) >= {"ce", "distance", "distribution", "total"}
    assert torch.equal(x, run(0)[0]) and not torch.equal(x, run(1)[0])
    assert all(p.grad is None for p in model.parameters())  # only the image is optimised


def test_optimisation_lowers_the_class_loss(tiny_classifier, tiny_data):
    model, _ = tiny_classifier
    stats = wt.class_feature_stats(model, tiny_data.float_images(), tiny_data.labels, 3)
    base = dict(SMALL, views=False, distance_weight=0.0, distribution_weight=0.0, lr=0.1)
    gen = torch.Generator
    _, _, before = wt.sample(
        model,
        wt.WangTorrConfig(**{**base, "steps_per_resolution": 0}),
        stats,
        3,
        (1, 8, 8),
        gen().manual_seed(0),
        progress=False,
    )
    _, _, after = wt.sample(
        model,
        wt.WangTorrConfig(**{**base, "steps_per_resolution": 20}),
        stats,
        3,
        (1, 8, 8),
        gen().manual_seed(0),
        progress=False,
    )
    assert after["ce_clean"] < before["ce_clean"]


def test_stage_writes_one_sample_set_per_variant(tiny_params, tiny_data, tiny_classifier, tmp_path):
    import json

    from pipeline.checkpoint import save_checkpoint
    from pipeline.data import save_image_set
    from pipeline.samples import load_samples
    from stages.wang_torr import run_wang_torr

    model, args = tiny_classifier
    tiny_params["tracking"]["enabled"] = False
    params = parse_params(tiny_params)
    save_checkpoint(tmp_path / "r0.pt", model, args, {}, round="r0")
    save_image_set(tiny_data, tmp_path / "train.pt")
    for name in params.wang_torr_variants:
        outs = [tmp_path / f"{name}{s}" for s in (".pt", "_m.json", "_t.json", "_grid.png")]
        run_wang_torr(params, name, tmp_path / "r0.pt", tmp_path / "train.pt", *outs)
        samples = load_samples(outs[0])
        assert samples.method == name and samples.images.shape == (9, 1, 8, 8)
        assert json.loads(outs[2].read_text())["seconds_per_sample"] > 0
    with pytest.raises(ConfigError, match="not a listed variant"):
        run_wang_torr(params, "nope", tmp_path / "r0.pt", tmp_path / "train.pt", *outs)
