"""The stage graph is exact: a code change reruns the stages that run the changed code, and only
those, as DVC itself decides it (`dvc status` in a scratch copy of the project, after the code
stage wrote the listings of the code each stage command runs, as `dvc repro` does first).

The scratch copy's dvc.lock gets every code dependency's current hash first, so that what
`dvc status` then reports stale is what the mutation made stale, whatever state the committed
lock is in. A module that is loaded by name (importlib) would hide from the generated graph; the
static check below refuses any, but the dispatcher's, whose targets the generator resolves.
"""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from support import DVC, ROOT, clean_env

from pipeline.methods import SAMPLER_SOURCES
from pipeline.nulls import SOURCES
from stages.code_hashes import write_listings

CODE_DIR = "build/code"  # the code stage's --out in dvc.yaml
DISPATCHER = "stages/cli.py"  # runs `module.app` of the command's module, found by name
LOADERS = {("importlib", "import_module"), ("importlib", "__import__"), (None, "__import__"),
           (None, "import_module"), ("importlib.util", "spec_from_file_location"),
           ("runpy", "run_module"), ("runpy", "run_path")}  # fmt: skip


def _loads_by_name(path: Path) -> list[int]:
    """Lines of `path` that load a module by name."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
                key = (f.value.id, f.attr)
            elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Attribute):
                key = (ast.unparse(f.value), f.attr)
            elif isinstance(f, ast.Name):
                key = (None, f.id)
            else:
                continue
            if key in LOADERS:
                lines.append(node.lineno)
    return lines


def test_no_stage_loads_a_module_by_name_but_the_dispatcher():
    found = {
        str(p.relative_to(ROOT)): lines
        for package in ("pipeline", "stages")
        for p in sorted((ROOT / package).rglob("*.py"))
        if (lines := _loads_by_name(p))
    }
    assert set(found) == {DISPATCHER}, f"modules loaded by name hide from the stage graph: {found}"


def test_the_check_finds_a_load_by_name(tmp_path):
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("import importlib\nm = importlib.import_module('pipeline.samplers')\n")
    assert _loads_by_name(sneaky) == [2]


def test_every_null_source_is_a_method_with_its_own_sampler():
    assert set(SOURCES) == set(SAMPLER_SOURCES)


def test_the_registry_lists_every_method_in_order():
    from pipeline.methods import METHODS
    from pipeline.methods.registry import CONFIGS

    assert list(CONFIGS) == [m.name for m in METHODS]


# ------------------------------------------------------------------ what dvc status calls stale


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def scratch_copy(tmp_path: Path, source: Path = ROOT) -> Path:
    """The project's files as a clone holds them (what git tracks, and new files it does not
    ignore), in a new git repository, with the code listings written and dvc.lock's code hashes
    made current."""
    repo = tmp_path / "graph"
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=source, capture_output=True, text=True, check=True,
    ).stdout.split("\0")  # fmt: skip
    for name in filter(None, listed):
        if (source / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, repo / name)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    write_listings(repo / CODE_DIR, repo)
    refresh_code_hashes(repo)
    return repo


def _is_code(dep: str) -> bool:
    return dep.endswith(".py") or dep.startswith(CODE_DIR + "/")


def refresh_code_hashes(repo: Path) -> None:
    """Give each locked stage the code deps dvc.yaml lists (the code stage its modules, every
    other stage its command's listing), at their current hashes (its other deps, params and outs
    as they were locked)."""
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    for name, entry in lock["stages"].items():
        spec = stages[name.split("@")[0]]
        code = [d for d in spec.get("do", spec).get("deps", []) if _is_code(d)]
        kept = [d for d in entry.get("deps", []) if not _is_code(d["path"])]
        entry["deps"] = kept + [
            {"path": m, "hash": "md5", "md5": _md5(repo / m), "size": (repo / m).stat().st_size}
            for m in code
        ]
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))


def stale_deps(repo: Path) -> dict[str, set[str]]:
    """Stage -> the deps `dvc status` reports changed (its missing outputs aside: a scratch copy
    has none)."""
    res = subprocess.run([str(DVC), "status", "--json"], cwd=repo, capture_output=True,
                         text=True, env=clean_env(), timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    out: dict[str, set[str]] = {}
    for stage, changes in json.loads(res.stdout or "{}").items():
        for change in changes if isinstance(changes, list) else []:
            if isinstance(change, dict) and change.get("changed deps"):
                out.setdefault(stage, set()).update(change["changed deps"])
    return out


def stale_code(repo: Path) -> dict[str, set[str]]:
    """Stage -> the code deps `dvc status` reports changed (the code stage aside: any module
    edit makes it stale)."""
    stale = {s: {p for p in deps if _is_code(p)} for s, deps in stale_deps(repo).items()}
    return {s: code for s, code in stale.items() if code and s != "code"}


def stale_after(repo: Path, path: str, old: str | None = None, new: str = "") -> set[str]:
    """The stages `dvc status` calls stale after an edit of `path` (`old` replaced by `new`, or,
    with no `old`, a comment appended) and the code stage's run. Both are undone afterwards."""
    file = repo / path
    text = file.read_text()
    assert old is None or old in text, f"{path}: no {old!r} to edit"
    file.write_text(text.replace(old, new, 1) if old else text + "\n# an edit\n")
    try:
        write_listings(repo / CODE_DIR, repo)
        return set(stale_code(repo))
    finally:
        file.write_text(text)
        write_listings(repo / CODE_DIR, repo)


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    repo = scratch_copy(tmp_path_factory.mktemp("graph"))
    assert stale_code(repo) == {}, "the scratch lock is current: nothing is stale before"
    return repo


def test_the_mala_kernel_reruns_every_stage_that_draws_with_it_and_their_nulls(graph):
    stale = stale_after(graph, "pipeline/samplers.py")
    nulls = {f"null_sampler@{n}" for n in ("null_stic", "null_jem", "null_score")}
    assert nulls <= stale, f"the null references must rerun with the sampler: {sorted(stale)}"
    draws = {"stic_round@r1", "stic_sample@r1", "jem_train", "jem_sample",
             "score_sample@score_stic", "sgld"}
    assert draws <= stale, sorted(stale)
    assert "prepare" not in stale and not any(s.startswith("evaluate") for s in stale)


def test_a_claim_row_or_a_report_label_reruns_the_report_only(graph):
    """Both live in pipeline/claim_rows.py (before, in the method modules every training stage
    runs, and in the registry every stage imports: one label reran all 74 stages)."""
    old = "STIC's rounds improve sample quality"
    assert stale_after(graph, "pipeline/claim_rows.py", old, "STIC's rounds improve samples") == {
        "report"
    }
    old = '"acgan": "AC-GAN"'
    new = '"acgan": "AC-GAN baseline"'
    assert stale_after(graph, "pipeline/claim_rows.py", old, new) == {"report"}


def test_a_replaced_data_file_reruns_prepare(graph):
    """The dataset's files are prepare's deps: another file there makes prepare stale (what its
    new split changes then reruns after it), and nothing else before prepare has run again."""
    assert not any("data/raw" in deps for deps in stale_deps(graph).values())
    raw = graph / "data" / "raw" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 1, 7]))
    try:
        stale = stale_deps(graph)
    finally:
        shutil.rmtree(graph / "data" / "raw" / "MNIST")
    assert {s for s, deps in stale.items() if "data/raw" in deps} == {"prepare"}


def test_a_module_edit_makes_the_code_stage_stale_and_a_helper_edit_nothing(graph):
    """`dvc status` names the code stage as soon as a module a stage runs changes (the listings
    it rewrites then decide the rest); a helper command's module runs in no stage."""
    for path, stale in (("pipeline/samplers.py", True), ("stages/sweep.py", False)):
        file = graph / path
        text = file.read_text()
        file.write_text(text + "\n# an edit\n")
        try:
            assert (path in stale_deps(graph).get("code", set())) is stale, path
        finally:
            file.write_text(text)
    assert stale_after(graph, "stages/sweep.py") == set()
