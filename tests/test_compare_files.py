"""`cgen compare` writes each experiment's numbers to reports/seeds/NAME.json and makes the page
from them, so `--committed` remakes the same page in a clone without the experiments."""

from __future__ import annotations

import json

import pytest
from support import ROOT

import stages.compare as compare_cmd
from pipeline.errors import DataError

METRICS = {"judge_fid": 20.0, "judge_fid_lo": 15.0, "judge_fid_hi": 25.0, "discriminability": 0.9,
           "discriminability_lo": 0.85, "discriminability_hi": 0.95}  # fmt: skip


def record(exp: str, fid_r3: float) -> dict:
    sets = {"r1": {**METRICS, "judge_fid": fid_r3 * 2}, "r3": {**METRICS, "judge_fid": fid_r3},
            "r0": {"classifier_test_accuracy": 0.97}}  # fmt: skip
    return {"experiment": exp, "rev": "a" * 40, "base_commit": "b" * 40,
            "params_sha256": "c" * 64, "sets": sets}  # fmt: skip


def test_the_page_from_committed_files_is_the_page_from_the_experiments(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # params.yaml of the project
    records = {"seed-1": record("seed-1", 11.25), "seed-0": record("seed-0", 10.5)}
    monkeypatch.setattr(compare_cmd, "experiments", lambda names: {k: "a" * 40 for k in records})
    monkeypatch.setattr(compare_cmd, "seed_record", lambda exp, rev, names: records[exp])
    seeds = tmp_path / "seeds"
    live = (tmp_path / "live.md", tmp_path / "live.html")
    compare_cmd.main(None, *live, committed=False, seeds_dir=seeds)
    assert sorted(p.name for p in seeds.iterdir()) == ["seed-0.json", "seed-1.json"]
    assert json.loads((seeds / "seed-0.json").read_text()) == records["seed-0"]

    monkeypatch.setattr(compare_cmd, "experiments", lambda names: pytest.fail("no DVC here"))
    again = (tmp_path / "again.md", tmp_path / "again.html")
    compare_cmd.main(None, *again, committed=True, seeds_dir=seeds)
    page = again[0].read_text()
    assert page == live[0].read_text() and again[1].read_bytes() == live[1].read_bytes()
    assert "2 experiments (seed-0, seed-1)" in page
    assert f"{seeds}/seed-0.json" in page and "c" * 16 in page  # every number's file and params


def test_committed_pages_refuse_missing_files(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = (tmp_path / "c.md", tmp_path / "c.html")
    with pytest.raises(DataError, match="no per-seed files"):
        compare_cmd.main(None, *out, committed=True, seeds_dir=tmp_path / "none")
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "seed-0.json").write_text(json.dumps(record("seed-0", 10.0)))
    with pytest.raises(DataError, match="no per-seed file for seed-7"):
        compare_cmd.main(["seed-7"], *out, committed=True, seeds_dir=tmp_path / "s")
    assert not out[0].exists()
