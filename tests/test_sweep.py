"""The sweep grid: experiments per setting and seed, the overrides DVC is given, the table."""

from __future__ import annotations

import pytest
import yaml
from support import ROOT

from pipeline.errors import ConfigError
from stages.sweep import Grid, cell, flag, load, render


def test_a_grid_with_seeds_runs_every_setting_once_per_seed(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({"round": "r1", "seeds": [0, 2], "base": {"a.b": 1},
                                    "settings": {"x": {}, "y": {"a.b": 3, "c": "z"}}}))  # fmt: skip
    grid = load(path)
    assert [name for name, _, _ in grid.runs()] == ["x-s0", "x-s2", "y-s0", "y-s2"]
    assert grid.runs()[3] == ("y-s2", "y", {"a.b": 3, "c": "z", "runtime.seed": 2})
    assert grid.stage == "evaluate_round@r1"
    no_seeds = Grid("r1", {}, {"x": {"k": 1}}, (), "evaluate_round@r1")
    assert no_seeds.runs() == [("x", "x", {"k": 1})]
    path.write_text(yaml.safe_dump({"set": "score_stic", "settings": {"x": {}}}))
    assert load(path).stage == "evaluate_method@score_stic"
    path.write_text(yaml.safe_dump({"settings": {}, "seeds": ["0"]}))
    with pytest.raises(ConfigError, match="seeds"):
        load(path)


def test_a_grid_applies_its_profile_under_its_base(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # profiles/ of the project
    path = tmp_path / "grid.yaml"
    grid = {
        "round": "r1",
        "profile": "digits",
        "base": {"stic.train.steps": 7},
        "settings": {"x": {}},
    }
    path.write_text(yaml.safe_dump(grid))
    ((_, _, overrides),) = load(path).runs()
    assert overrides["data.name"] == "digits" and overrides["judge.train.steps"] == 330
    assert overrides["stic.rounds.r2.train.steps"] == 110
    assert overrides["stic.train.steps"] == 7  # the base wins over the profile
    path.write_text(yaml.safe_dump({"round": "r1", "profile": "nope", "settings": {"x": {}}}))
    with pytest.raises(ConfigError, match="profile 'nope' not found"):
        load(path)


def test_overrides_are_written_so_yaml_reads_back_their_type():
    for value in (1e-08, 5e-05, 0.001, 30, "flat_cnn", True):
        key, text = flag("k", value).split("=", 1)
        assert yaml.safe_load(text) == value and type(yaml.safe_load(text)) is type(value)


def test_the_table_shows_the_seeds_side_by_side():
    assert cell([12.14, None, 25.0], 1) == "12.1 / – / 25.0"
    assert cell([5e-8], 1) == "5.0e-08"  # a step size keeps its digits
    grid = Grid("r1", {}, {"rg-recipe": {}}, (0, 1), "evaluate_round@r1")
    table = render(grid, {})  # nothing run yet
    assert "| setting (seeds 0, 1) |" in table and "– / –" in table
