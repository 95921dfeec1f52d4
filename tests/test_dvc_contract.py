"""dvc.yaml and params.yaml agree: params keys exist, paths live in cmds, deps exist."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _load():
    return (
        yaml.safe_load((ROOT / "dvc.yaml").read_text()),
        yaml.safe_load((ROOT / "params.yaml").read_text()),
    )


def _entries(stage, kind):
    for entry in stage.get(kind) or []:
        yield next(iter(entry)) if isinstance(entry, dict) else entry


def _stages(dvc):
    """(name, stage) with foreach stages reduced to their `do` body."""
    for name, stage in dvc["stages"].items():
        yield name, stage.get("do", stage)


def test_every_params_key_exists():
    dvc, params = _load()
    for name, stage in _stages(dvc):
        for key in _entries(stage, "params"):
            if "${" in key:
                continue
            node = params
            for part in key.split("."):
                assert isinstance(node, dict) and part in node, f"{name}: params key {key} missing"
                node = node[part]


def test_every_output_path_is_in_the_cmd():
    dvc, _ = _load()
    for name, stage in _stages(dvc):
        cmd = " ".join(stage["cmd"]) if isinstance(stage["cmd"], list) else stage["cmd"]
        for kind in ("outs", "metrics", "plots"):
            for path in _entries(stage, kind):
                assert path in cmd, f"{name}: {kind} {path} not passed in its cmd"


def test_every_static_dep_exists_or_is_produced():
    dvc, _ = _load()
    produced = {
        p for _, s in _stages(dvc) for k in ("outs", "metrics", "plots") for p in _entries(s, k)
    }
    for name, stage in _stages(dvc):
        for dep in _entries(stage, "deps"):
            if "${" in dep or dep in produced:
                continue
            assert (ROOT / dep).exists(), f"{name}: dep {dep} does not exist"


def test_stage_modules_are_deps_of_their_stage():
    dvc, _ = _load()
    for name, stage in _stages(dvc):
        deps = list(_entries(stage, "deps"))
        assert any(d.startswith("stages/") for d in deps), f"{name}: no stage module in deps"


def test_cgen_commands_exist():
    from typer.main import get_command

    from stages.cli import app

    commands = set(get_command(app).commands)
    dvc, _ = _load()
    for name, stage in _stages(dvc):
        cmd = stage["cmd"] if isinstance(stage["cmd"], str) else stage["cmd"][0]
        match = re.match(r"cgen (\S+)", cmd.strip())
        assert match and match.group(1) in commands, f"{name}: cmd does not call a cgen command"
