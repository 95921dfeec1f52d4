"""Strict parameter loading: unknown, missing, wrong-typed keys and impossible combinations."""

from __future__ import annotations

import copy

import pytest
import yaml

from pipeline.config import ConfigError, merge, read_yaml
from pipeline.params import Params, load_params, parse_params


def test_committed_params_are_valid(real_params):
    params = parse_params(real_params)
    assert isinstance(params, Params)
    assert params.data.name == "digits"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p["baseline"]["train"].update(epochz=3), "baseline.train.epochz: unknown key"),
        (
            lambda p: p["baseline"]["train"].update(epochs="3"),
            "baseline.train.epochs: expected an integer",
        ),
        (
            lambda p: p["baseline"]["train"].update(epochs=True),
            "baseline.train.epochs: expected an integer",
        ),
        (lambda p: p["judge"].pop("seed"), "judge.seed: missing key"),
        (lambda p: p["data"].update(name="imagenet"), "data.name: must be one of"),
        (lambda p: p["runtime"].update(device="tpu"), "runtime.device: must be one of"),
        (lambda p: p["data"].update(test_fraction=1.5), "data.test_fraction: must be strictly"),
        (lambda p: p["baseline"]["model"].update(arch="vit"), "baseline.model.arch: unknown 'vit'"),
        (lambda p: p.update(extra={}), "extra: unknown key"),
        (
            lambda p: p["judge"].update(model=copy.deepcopy(p["baseline"]["model"])),
            "judge.model: must differ",
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
    p["baseline"]["train"]["epochs"] = 2.5
    with pytest.raises(ConfigError, match="epochs"):
        parse_params(p)


def test_malformed_yaml_is_refused_with_position(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("data:\n  name: [digits\n")
    with pytest.raises(ConfigError, match=r"malformed YAML"):
        read_yaml(bad)
    with pytest.raises(ConfigError, match=str(bad)):
        load_params(bad)


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
