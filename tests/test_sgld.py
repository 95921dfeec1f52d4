"""Classifier + SGLD (JEM-style) control: the chain, the buffer sampler, the stage outputs."""

from __future__ import annotations

import json

import pytest
import torch

from pipeline.checkpoint import save_checkpoint
from pipeline.config import ConfigError, from_dict
from pipeline.data import save_image_set
from pipeline.methods import sgld
from pipeline.params import parse_params
from pipeline.samples import load_samples

SMALL = dict(steps=3, buffer_per_class=6, rounds=2, batch_per_class=4, samples_per_class=5)


def test_zero_step_zero_noise_returns_input(tiny_classifier):
    model, _ = tiny_classifier
    x = torch.rand(6, 1, 8, 8) * 2 - 1
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    out = sgld.sgld_chain(
        model, x, y, steps=5, step_size=0.0, noise=0.0, gen=torch.Generator().manual_seed(0)
    )
    assert torch.equal(out, x)


def test_one_step_follows_the_class_logit_gradient(tiny_classifier):
    model, _ = tiny_classifier
    x = (torch.rand(4, 1, 8, 8) * 2 - 1).requires_grad_(True)
    y = torch.tensor([2, 1, 0, 2])
    (grad,) = torch.autograd.grad(model(x).gather(1, y[:, None]).sum(), x)
    out = sgld.sgld_chain(
        model,
        x,
        y,
        steps=1,
        step_size=0.7,
        noise=0.0,
        gen=torch.Generator().manual_seed(0),
        clamp=False,
    )
    torch.testing.assert_close(out, x.detach() + 0.7 * grad)
    assert grad.abs().sum() > 0  # a zero gradient would make the check vacuous


def test_sample_shapes_range_and_grouping(tiny_classifier):
    model, _ = tiny_classifier
    cfg = sgld.SGLDConfig(**SMALL)
    x, y = sgld.sample(model, cfg, 3, (1, 8, 8), torch.Generator().manual_seed(0), progress=False)
    assert x.shape == (15, 1, 8, 8) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    assert y.tolist() == [0] * 5 + [1] * 5 + [2] * 5


def test_same_seed_same_samples_other_seed_differs(tiny_classifier):
    model, _ = tiny_classifier
    cfg = sgld.SGLDConfig(**SMALL)

    def run(seed):
        return sgld.sample(
            model, cfg, 3, (1, 8, 8), torch.Generator().manual_seed(seed), progress=False
        )[0]

    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))


def test_config_refuses_buffer_smaller_than_batch():
    with pytest.raises(ConfigError, match="buffer_per_class"):
        from_dict(sgld.SGLDConfig, {"buffer_per_class": 3, "batch_per_class": 4})
    with pytest.raises(ConfigError, match="sgld.reinit_prob"):
        from_dict(sgld.SGLDConfig, {"reinit_prob": 1.5}, "sgld")


def test_stage_writes_the_evaluation_contract(tiny_params, tiny_data, tiny_classifier, tmp_path):
    from stages.sgld import run_sgld

    model, args = tiny_classifier
    params = parse_params(tiny_params)
    save_checkpoint(tmp_path / "r0.pt", model, args, {}, round="r0")
    save_image_set(tiny_data, tmp_path / "train.pt")
    out = {k: tmp_path / f"{k}" for k in ("samples.pt", "m.json", "t.json", "grid.png")}
    run_sgld(
        params,
        tmp_path / "r0.pt",
        tmp_path / "train.pt",
        out["samples.pt"],
        out["m.json"],
        out["t.json"],
        out["grid.png"],
    )
    samples = load_samples(out["samples.pt"])
    assert samples.method == "sgld" and samples.images.shape == (9, 1, 8, 8)
    assert samples.class_names == tiny_data.class_names and bool(samples.hard.all())
    assert json.loads(out["t.json"].read_text())["seconds_per_sample"] > 0
    assert 0 <= json.loads(out["m.json"].read_text())["synth_classifier_accuracy"] <= 1
    assert out["grid.png"].stat().st_size > 0
