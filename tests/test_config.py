"""Strict parameter loading: unknown, missing, wrong-typed keys and impossible combinations."""

from __future__ import annotations

import copy

import pytest
import yaml

from pipeline.config import apply_overrides, load_sections, merge, read_yaml
from pipeline.errors import ConfigError
from pipeline.params import Params, load_params, parse_params


def test_committed_params_are_valid(real_params):
    params = parse_params(real_params)
    assert isinstance(params, Params)
    assert params.data.name == "mnist5k"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p["baseline"]["train"].update(epochz=3), "baseline.train.epochz: unknown key"),
        (
            lambda p: p["baseline"]["train"].update(steps="3"),
            "baseline.train.steps: expected an integer",
        ),
        (
            lambda p: p["baseline"]["train"].update(steps=True),
            "baseline.train.steps: expected an integer",
        ),
        (lambda p: p["judge"].pop("seed"), "judge.seed: missing key"),
        (lambda p: p["data"].update(name="imagenet"), "data.name: must be one of"),
        (lambda p: p["runtime"].update(device="tpu"), "runtime.device: must be one of"),
        (lambda p: p["data"].update(test_fraction=1.5), "data.test_fraction: must be strictly"),
        (lambda p: p["baseline"]["model"].update(arch="vit"), "baseline.model.arch: unknown 'vit'"),
        (lambda p: p.update(extra={}), "extra: unknown key"),
        (lambda p: p["eval"]["metrics"].update(num_sample=7), "eval.metrics.num_sample: unknown"),
        (
            lambda p: p["judge"].update(model=copy.deepcopy(p["baseline"]["model"])),
            "judge.model: must differ",
        ),
        (lambda p: p["eval"]["methods"].append("nonesuch"), "eval.methods: 'nonesuch' is made"),
        (lambda p: p["eval"]["methods"].append("r1"), "eval.methods: 'r1' is a STIC round"),
        (
            lambda p: p["stic"]["rounds"]["r2"].update(sampler={"temprature": 1.0}),
            "stic.rounds.r2.sampler.temprature: unknown key",
        ),
        (
            lambda p: p["wang_torr"]["variants"]["wang_torr"].update(vews=False),
            "wang_torr.variants.wang_torr.vews: unknown key",
        ),
        (
            lambda p: p["stic"]["sampler"].update(mh=True, box="clamp"),
            "stic.sampler.box: clamp needs mh: false",
        ),
        (lambda p: p["runtime"].update(determinism="loose"), "runtime.determinism: must be one of"),
        (lambda p: p["regene"].update(round="r9"), "regene.round: 'r9' is neither r0 nor"),
        (lambda p: p["regene"].update(round="wang_torr"), "regene.round: 'wang_torr' is neither"),
        (
            lambda p: p["judge_b"].update(
                model=copy.deepcopy(p["wang_torr"]["classifier"]["model"])
            ),
            "judge_b.model: must differ from wang_torr.classifier.model",
        ),
        # non-finite numbers (YAML .nan / .inf) and wrong signs: every `x <= 0` check passes NaN
        (
            lambda p: p["baseline"]["train"].update(lr=float("nan")),
            "baseline.train.lr: must be a finite",
        ),
        (
            lambda p: p["baseline"]["train"].update(lr=float("inf")),
            "baseline.train.lr: must be a finite",
        ),
        (
            lambda p: p["stic"]["sampler"].update(temperature=float("nan")),
            "stic.sampler.temperature: must be a finite",
        ),
        (
            lambda p: p["stic"]["train"].update(mixup_alpha=float("nan")),
            "stic.train.mixup_alpha: must be a finite",
        ),
        (
            lambda p: p["jem"]["train"].update(momentum=float("nan")),
            "jem.train.momentum: must be a finite",
        ),
        (
            lambda p: p["jem"]["train"].update(data_noise=float("-inf")),
            "jem.train.data_noise: must be a finite",
        ),
        (
            lambda p: p["baseline"]["train"].update(weight_decay=-5),
            "baseline.train.weight_decay: must be >= 0",
        ),
        (lambda p: p["judge"]["train"].update(momentum=1.5), "judge.train.momentum: must be in"),
        (
            lambda p: p["score_stic"]["sampling"].update(soft_alpha=-1.0),
            "score_stic.sampling.soft_alpha: must be positive",
        ),
    ],
)
def test_bad_params_name_the_key(real_params, mutate, message):
    p = copy.deepcopy(real_params)
    mutate(p)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        parse_params(p)


def test_error_is_one_line(real_params):
    p = copy.deepcopy(real_params)
    p["data"]["image_size"] = "big"
    with pytest.raises(ConfigError) as info:
        parse_params(p)
    assert "\n" not in str(info.value)


def test_float_accepts_int_but_int_refuses_float(real_params):
    p = copy.deepcopy(real_params)
    p["baseline"]["train"]["lr"] = 1
    assert parse_params(p).baseline.train.lr == 1.0
    p["baseline"]["train"]["steps"] = 2.5
    with pytest.raises(ConfigError, match="steps"):
        parse_params(p)


def test_malformed_yaml_is_refused_with_position(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("data:\n  name: [digits\n")
    with pytest.raises(ConfigError, match=r"malformed YAML"):
        read_yaml(bad)
    with pytest.raises(ConfigError, match=str(bad)):
        load_params(bad)


def test_exponent_floats_read_as_numbers_as_dvc_writes_them(tmp_path, real_params):
    """`dvc exp run -S stic.sampler.step_min=1.0e-08` writes `1e-08`, a string to YAML 1.1."""
    path = tmp_path / "params.yaml"
    real_params["stic"]["sampler"]["step_min"] = 1e-07  # PyYAML writes it 1.0e-07
    path.write_text(yaml.safe_dump(real_params).replace("step_min: 1.0e-07", "step_min: 1e-07"))
    assert "step_min: 1e-07" in path.read_text()
    assert load_params(path).stic.sampler.step_min == 1e-07


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_params(tmp_path / "nope.yaml")


def test_merge_is_deep_and_pure():
    base = {"a": {"b": 1, "c": 2}, "d": 3}
    out = merge(base, {"a": {"b": 5}})
    assert out == {"a": {"b": 5, "c": 2}, "d": 3}
    assert base["a"]["b"] == 1


def test_profiles_are_valid(real_params):
    from pathlib import Path

    profiles = sorted((Path(__file__).parents[1] / "profiles").glob("*.yaml"))
    assert profiles, "no profiles found"
    for path in profiles:
        parse_params(merge(real_params, yaml.safe_load(path.read_text())))


def test_library_configs_declare_no_defaults():
    """Every default lives once, in params.yaml: a config field's only allowed default is None
    (unset), for settings that apply to some choices only."""
    import dataclasses
    import typing

    from pipeline.methods.registry import CONFIGS

    seen, todo = set(), [Params, *CONFIGS.values()]
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                assert f.default is None, f"{cls.__name__}.{f.name} declares default {f.default!r}"
            for tp in [
                typing.get_type_hints(cls)[f.name],
                *typing.get_args(typing.get_type_hints(cls)[f.name]),
            ]:
                if dataclasses.is_dataclass(tp):
                    todo.append(tp)
                for inner in typing.get_args(tp):
                    if dataclasses.is_dataclass(inner):
                        todo.append(inner)
    assert len(seen) > 20


def test_load_sections_reads_only_what_it_is_asked(tmp_path, real_params):
    from pipeline.metrics import EvalConfig

    p = copy.deepcopy(real_params)
    p["acgan"]["typo"] = 1  # a section this stage does not read: the gate's to refuse
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(p))
    cfg = load_sections(path, {"eval.metrics": EvalConfig, "data.name": str})
    assert cfg["data.name"] == "mnist5k" and cfg["eval.metrics"].num_samples == 200
    p["eval"]["metrics"]["seed"] = "zero"
    path.write_text(yaml.safe_dump(p))
    with pytest.raises(ConfigError, match=r"params.yaml: eval.metrics.seed: expected an integer"):
        load_sections(path, {"eval.metrics": EvalConfig})


def test_overrides_merge_deeply_and_are_checked(real_params):
    from pipeline.methods.wang_torr import WangTorrConfig

    base = parse_params(real_params).wang_torr.sampler
    out = apply_overrides(WangTorrConfig, base, {"views": False}, "v")
    assert out.views is False and out.lr == base.lr
    assert apply_overrides(WangTorrConfig, base, None, "v") is base
    with pytest.raises(ConfigError, match="v.lr: expected a number"):
        apply_overrides(WangTorrConfig, base, {"lr": "fast"}, "v")
