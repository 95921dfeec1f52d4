"""STIC's rounds: the tree of rounds and ablations, per-round overrides, `cgen params rounds`."""

from __future__ import annotations

import copy

import pytest
import yaml

from pipeline.errors import ConfigError
from pipeline.methods.stic import chain, chain_rounds, depth, round_settings
from pipeline.params import parse_params


def with_rounds(real_params, rounds):
    p = copy.deepcopy(real_params)
    p["stic"]["rounds"] = rounds
    return p


@pytest.mark.parametrize(
    ("rounds", "message"),
    [
        ({}, "needs at least one round"),
        ({"r1": {"prev": "r0"}, "r2": {"prev": "r7"}}, "'r7' is neither r0"),
        ({"r1": {"prev": "r2"}, "r2": {"prev": "r1"}}, "cycle"),
        ({"r1": {"prev": "r0"}, "r3": {"prev": "r1"}}, "chain round r3 must start from r2"),
        ({"r1": {"prev": "r0"}, "R2": {"prev": "r1"}}, "lower-case"),
        ({"r1": {"prev": "r0", "sampler": {"mh": "yes"}}}, "rounds.r1.sampler.mh: expected true"),
        ({"r1": {"prev": "r0", "trian": {}}}, "rounds.r1.trian: unknown key"),
        (
            {"r1": {"prev": "r0"}, "r2": {"prev": "r1", "loss": {"fake_mode": "energy"}}},
            "differs from its predecessor",
        ),
    ],
)
def test_broken_round_trees_are_refused(real_params, rounds, message):
    with pytest.raises(ConfigError, match=message):
        parse_params(with_rounds(real_params, rounds))


def test_overrides_apply_to_their_round_only(real_params):
    stic = parse_params(real_params).stic
    r1, no_gram = round_settings(stic, "r1"), round_settings(stic, "no_gram")
    assert r1.setting.sampler == stic.sampler and no_gram.setting.sampler.gram_weight == 0.0
    assert no_gram.setting.sampler.mh == stic.sampler.mh
    r2 = round_settings(stic, "r2")  # continues r1 on a shorter budget; r1 from scratch
    assert (r1.init, r2.init) == ("scratch", "prev")
    assert r2.setting.train.steps < r1.setting.train.steps
    assert round_settings(stic, "hard_only").setting.chains.soft_share == 0.0


def test_chain_and_depth(real_params):
    rounds = parse_params(real_params).stic.rounds
    assert chain_rounds(rounds) == ["r1", "r2", "r3"]
    assert depth(rounds, "r3") == 3 and depth(rounds, "no_gram") == 1


def test_chain_keeps_overrides_and_branches():
    old = {
        "r1": {"prev": "r0", "sampler": {"steps": 5}},
        "r2": {"prev": "r1"},
        "no_gram": {"prev": "r0"},
        "late": {"prev": "r2"},  # its start disappears with r2
        "later": {"prev": "no_gram"},  # a branch of a branch
    }
    new = chain(3, old)
    assert list(new)[:3] == ["r1", "r2", "r3"] and new["r1"]["sampler"] == {"steps": 5}
    assert "no_gram" in new and "later" in new and "late" in new
    assert "late" not in chain(1, old) and "later" in chain(1, old)


def test_cgen_params_rounds_keeps_comments_and_validates(tmp_path):
    from stages.cli import main

    root = __import__("pathlib").Path(__file__).parents[1]
    path = tmp_path / "params.yaml"
    path.write_text((root / "params.yaml").read_text())
    assert main(["params", "rounds", "5", "--params", str(path)]) == 0
    text = path.read_text()
    data = yaml.safe_load(text)
    assert [k for k in data["stic"]["rounds"] if k.startswith("r")][:5] == [
        f"r{i}" for i in range(1, 6)
    ]
    assert data["stic"]["rounds"]["r5"] == {"prev": "r4"} and "no_gram" in data["stic"]["rounds"]
    assert "# JEM's effective temperature" in text  # comments elsewhere survive
    assert main(["params", "rounds", "0", "--params", str(path)]) == 2  # refused, nothing written
    assert path.read_text() == text
