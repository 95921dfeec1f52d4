"""STIC rounds: targets, the rounds chain, Gram statistics, fake pools, and one tiny round
end to end through the stage functions."""

from __future__ import annotations

import copy
import json
import re

import pytest
import torch
import yaml
from conftest import ROOT, make_image_set
from typer.testing import CliRunner

from pipeline import stic
from pipeline.checkpoint import load_classifier
from pipeline.config import ConfigError
from pipeline.data import save_image_set
from pipeline.params import parse_params
from pipeline.samplers import gram
from pipeline.samples import SampleSet, load_samples, save_samples


def test_hard_targets_one_hot_and_soft_targets_sum_to_one():
    cfg = stic.SynthesisConfig(hard_per_class=3, soft=50, soft_classes=3, soft_alpha=0.7)
    t = stic.make_targets(5, cfg, torch.Generator().manual_seed(0))
    hard, soft = t[:15], t[15:]
    assert t.shape == (65, 5)
    assert torch.equal(hard.sum(1), torch.ones(15)) and set(hard.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(hard.argmax(1), torch.arange(5).repeat_interleave(3))
    assert torch.allclose(soft.sum(1), torch.ones(50), atol=1e-6)
    assert ((soft > 0).sum(1) == 3).all() and (soft.max(1).values < 1).all()
    again = stic.make_targets(5, cfg, torch.Generator().manual_seed(0))
    assert torch.equal(t, again)
    samples = SampleSet(torch.zeros(65, 1, 2, 2, dtype=torch.uint8), t, "stic", tuple("abcde"))
    assert samples.hard.sum() == 15


def test_soft_fakes_can_be_switched_off():
    t = stic.make_targets(
        4, stic.SynthesisConfig(hard_per_class=2, soft=0), torch.Generator().manual_seed(0)
    )
    assert torch.equal(t, torch.eye(4).repeat_interleave(2, 0))


@pytest.mark.parametrize(
    ("rounds", "message"),
    [
        ({"r1": {"prev": "r0"}, "r2": {"prev": "r5"}}, r"rounds\.r2\.prev: 'r5'"),
        ({"r1": {"prev": "r2"}, "r2": {"prev": "r1"}}, r"rounds\.r1\.prev: cycle r1 -> r2 -> r1"),
        ({"r1": {"prev": "r1"}}, r"rounds\.r1\.prev: cycle r1 -> r1"),
        ({"round1": {"prev": "r0"}}, r"rounds\.round1: round names"),
        ({}, r"rounds: needs at least one round"),
        ({"r1": {"prev": "r0", "sampler": {"steps": 0}}}, r"rounds\.r1\.sampler\.steps"),
        ({"r1": {"prev": "r0", "sampler": {"stepz": 3}}}, r"rounds\.r1\.sampler\.stepz"),
    ],
)
def test_broken_rounds_chain_is_refused(real_params, rounds, message):
    p = copy.deepcopy(real_params)
    p["rounds"] = rounds
    with pytest.raises(ConfigError, match=message):
        parse_params(p)


def test_round_overrides_apply_to_that_round_only(real_params):
    p = copy.deepcopy(real_params)
    p["rounds"] = {
        "r1": {"prev": "r0"},
        "r2": {"prev": "r1", "sampler": {"steps": 70, "mh": False}},
    }
    params = parse_params(p)
    base = params.stic.sampler
    r2 = stic.round_sampler(base, params.rounds["r2"], "r2")
    assert (r2.steps, r2.mh) == (70, False) and r2.step_size == base.step_size
    assert stic.round_sampler(base, params.rounds["r1"], "r1") == base


def test_cgen_rounds_writes_a_valid_chain_keeping_the_rest(tmp_path):
    from stages.cli import app

    path = tmp_path / "params.yaml"
    text = (ROOT / "params.yaml").read_text()
    data = yaml.safe_load(text)
    data["rounds"]["r2"]["sampler"] = {"steps": 90}
    path.write_text(
        re.sub(
            r"(?ms)^rounds:.*?(?=^\S|\Z)",
            yaml.safe_dump({"rounds": data["rounds"]}, sort_keys=False),
            text,
        )
    )
    result = CliRunner().invoke(app, ["rounds", "5", "--params", str(path)])
    assert result.exit_code == 0, result.output
    new = yaml.safe_load(path.read_text())
    assert new["rounds"] == {
        "r1": {"prev": "r0"},
        "r2": {"prev": "r1", "sampler": {"steps": 90}},
        "r3": {"prev": "r2"},
        "r4": {"prev": "r3"},
        "r5": {"prev": "r4"},
    }
    assert {k: v for k, v in new.items() if k != "rounds"} == {
        k: v for k, v in data.items() if k != "rounds"
    }
    assert "# Default: the quick CPU run" in path.read_text()  # comments elsewhere kept
    parse_params(new)
    before = path.read_text()
    bad = CliRunner().invoke(app, ["rounds", "0", "--params", str(path)])
    assert bad.exit_code == 2 and path.read_text() == before  # refused, nothing written


def test_class_mean_grams_match_a_direct_computation(tiny_classifier):
    model, _ = tiny_classifier
    data = make_image_set(n_per_class=5)
    x = data.float_images()
    grams = stic.class_mean_grams(model, x, data.labels, 3, ("block1", "block3"), batch_size=4)
    _, maps = model.forward_features(x[data.labels == 1])
    assert grams["block1"].shape == (3, 4, 4) and grams["block3"].shape == (3, 16, 16)
    assert torch.allclose(grams["block3"][1], gram(maps["block3"]).mean(0), atol=1e-5)
    with pytest.raises(ConfigError, match="gram_layers"):
        stic.class_mean_grams(model, x, data.labels, 3, ("nope",))


def test_fake_pool_history():
    names = ("a", "b")

    def pool(n, value):
        return SampleSet(
            torch.full((n, 1, 2, 2), value, dtype=torch.uint8),
            torch.eye(2)[torch.arange(n) % 2],
            "stic",
            names,
        )

    prev, new = pool(3, 1), pool(2, 2)
    assert torch.equal(stic.next_pool(prev, new, "last").images, new.images)
    both = stic.next_pool(prev, new, "all")
    assert len(both) == 5 and torch.equal(both.images[:3], prev.images)
    fakes = stic.pool_fakes(both)
    assert fakes.images.dtype == torch.float32 and fakes.images.min() >= -1
    assert fakes.hard.all()


def test_extra_class_head_keeps_real_class_predictions(tiny_classifier):
    model, args = tiny_classifier
    new, new_args = stic.retrain_model(model, args, 3, "extra_class")
    assert new.num_outputs == 4 and new_args["num_outputs"] == 4
    x = torch.rand(5, 1, 8, 8) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(new(x)[:, :3], model(x), atol=1e-6)
    same, _ = stic.retrain_model(new, new_args, 3, "extra_class")
    assert same is new
    assert stic.retrain_model(model, args, 3, "energy")[0] is model


def _tiny_round_params(tiny_params: dict) -> dict:
    p = copy.deepcopy(tiny_params)
    p["tracking"]["enabled"] = False  # MLflow is covered by the tracking tests; keep this fast
    p["stic"]["sampler"].update(steps=4, burn_in=2)
    p["stic"]["synthesis"].update(hard_per_class=3, soft=4, chains=5)
    p["stic"]["retrain"].update(epochs=1, batch_size=16)
    p["rounds"] = {"r1": {"prev": "r0"}, "r2": {"prev": "r1", "sampler": {"canvas": "buffer"}}}
    return p


def test_one_tiny_round_end_to_end(tiny_params, tmp_path):
    from stages.classifier import train_stage
    from stages.stic import run_retrain, run_synthesize

    params = parse_params(_tiny_round_params(tiny_params))
    d = tmp_path
    train, test = make_image_set(n_per_class=16, seed=0), make_image_set(n_per_class=6, seed=1)
    save_image_set(train, d / "train.pt")
    save_image_set(test, d / "test.pt")
    train_stage(
        params,
        params.baseline,
        "baseline",
        0,
        d / "train.pt",
        d / "test.pt",
        d / "r0.pt",
        d / "r0.json",
        d / "t0.json",
        d / "r0.png",
        None,
        round_id="r0",
    )
    save_samples(
        SampleSet(
            torch.zeros(0, 1, 8, 8, dtype=torch.uint8), torch.zeros(0, 3), "stic", train.class_names
        ),
        d / "fakes_r0.pt",
    )

    def synth(key, prev, out):
        return run_synthesize(
            params,
            key,
            d / f"{prev}.pt",
            d / "train.pt",
            d / f"fakes_{prev}.pt",
            out,
            d / f"synth_{key}.json",
            d / f"synth_t_{key}.json",
            d / f"synth_{key}.png",
        )

    def retrain(key, prev):
        return run_retrain(
            params,
            key,
            d / f"{prev}.pt",
            d / f"samples_{key}.pt",
            d / f"fakes_{prev}.pt",
            d / "train.pt",
            d / "test.pt",
            d / f"{key}.pt",
            d / f"fakes_{key}.pt",
            d / f"{key}.json",
            d / f"t_{key}.json",
            d / f"{key}.png",
            d / f"resume_{key}.pt",
        )

    m = synth("r1", "r0", d / "samples_r1.pt")
    samples = load_samples(d / "samples_r1.pt")
    assert samples.images.dtype == torch.uint8 and samples.images.shape == (13, 1, 8, 8)
    assert samples.targets.shape == (13, 3) and int(samples.hard.sum()) == 9
    assert 0.0 <= m["acceptance_rate"] <= 1.0 and m["hard"] == 9 and m["soft"] == 4
    assert set(json.loads((d / "synth_t_r1.json").read_text())) >= {"seconds_per_sample"}
    assert (d / "synth_r1.png").stat().st_size > 0
    # rerun: bit-identical samples and metrics (only timing may differ)
    synth("r1", "r0", d / "again.pt")
    assert (d / "again.pt").read_bytes() == (d / "samples_r1.pt").read_bytes()
    assert json.loads((d / "synth_r1.json").read_text()) == {
        k: round(v, 6) if isinstance(v, float) else v for k, v in m.items()
    }

    r1 = retrain("r1", "r0")
    assert set(r1) == set(json.loads((d / "r0.json").read_text()))
    model, payload = load_classifier(d / "r1.pt")
    assert model.num_outputs == 4 and payload["round"] == "r1"  # extra "fake" class
    assert "seconds" not in json.dumps(payload["history"])  # no timings in checkpoints
    assert len(load_samples(d / "fakes_r1.pt")) == 13
    first = (d / "r1.pt").read_bytes()
    retrain("r1", "r0")
    assert (d / "r1.pt").read_bytes() == first

    # round r2 starts from r1 (K+1 outputs already), from a buffer canvas of r1's pool
    synth("r2", "r1", d / "samples_r2.pt")
    retrain("r2", "r1")
    assert load_classifier(d / "r2.pt")[0].num_outputs == 4
    assert len(load_samples(d / "fakes_r2.pt")) == 13  # fake_history: last


def test_dvc_stic_stages_read_existing_params(real_params):
    """Every params key that synthesize/retrain declare exists (with ${key} resolved)."""
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for stage in ("synthesize", "retrain"):
        assert dvc[stage]["foreach"] == "${rounds}"
        for key in real_params["rounds"]:
            for entry in dvc[stage]["do"]["params"]:
                node = real_params
                for part in entry.replace("${key}", key).split("."):
                    assert part in node, f"{stage}@{key}: params key {entry} missing"
                    node = node[part]
        cmd = dvc[stage]["do"]["cmd"]
        for dep in dvc[stage]["do"]["deps"]:
            if dep.startswith("data/"):
                assert dep in cmd, f"{stage}: dep {dep} not in its cmd"
    assert "--fakes-out data/fakes/r0.pt" in dvc["baseline"]["cmd"]
