"""`cgen compare`: the across-seed report (reports/compare.md and .html) from DVC experiments.

It lists the experiments of recent commits through DVC (`dvc.api.exp_show`), keeps those named
seed-* (made by `cgen seeds`) or the ones named, and reads each experiment's evaluation and
sampling files at its revision (`dvc.api.read`: from DVC's cache, where queued experiments put
their outputs); the claims are judged on the per-seed differences (pipeline.compare).

Each experiment's numbers are written first to a small file, reports/seeds/NAME.json (every set
it ran, its revision and base commit, the SHA-256 of its params.yaml), and the page is made from
those files: commit them, and `cgen compare --committed` remakes the same page in a clone that
has none of the experiments.

An experiment queued with `--target` runs only what the named stages need; its dvc.lock keeps
the other stages' entries, and their files, from its base commit (another seed's results). Those
are found from the lock itself (`not_made`) and read as "not run", never as this seed's."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from pipeline.errors import DataError
from pipeline.io import atomic_write_json, atomic_write_text
from stages.seeds import PREFIX

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
SEEDS_DIR = Path("reports/seeds")


def experiments(
    names: list[str],
    commits: int = 30,
    partial: bool = False,
    hint: str = "bin/cgen seeds 0 1 2",
) -> dict[str, str]:
    """name -> revision of the named experiments (seed-* when `names` is empty): the newest of
    each name among the experiments of the last `commits` commits (HEAD first), so a later commit
    that changed no stage does not hide them. `partial`: names not run yet are left out. `hint`:
    the command that makes them, for the error when there are none."""
    import dvc.api

    found: dict[str, str] = {}
    for r in dvc.api.exp_show(num=commits):  # each commit's row, then its experiments
        name = r.get("Experiment")
        if name and name not in found and (name in names or (not names and
                                                             name.startswith(PREFIX))):  # fmt: skip
            found[name] = r["rev"]
    missing = [n for n in names if n not in found]
    if missing and not partial:
        raise DataError(
            f"no DVC experiment named {', '.join(missing)} in the last {commits} commits"
        )
    if not found:
        which = f"{PREFIX}*" if not names else ", ".join(names[:3]) + ", ..." * (len(names) > 3)
        raise DataError(f"none of the experiments {which} in the last {commits} commits: run "
                        f"`{hint}` first")  # fmt: skip
    return found


def _param(params: dict, key: str) -> Any:
    """params.yaml's value at a dotted key as dvc.lock records it (`stic.rounds.r1`); None when
    absent."""
    node: Any = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _under(a: str, b: str) -> bool:
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def not_made(lock: dict, params: dict) -> set[str]:
    """The output paths of an experiment's dvc.lock that the experiment did not make: a stage
    whose recorded parameters differ from the experiment's params.yaml (its entry is the base
    commit's), and every stage downstream of one."""
    stages = lock.get("stages") or {}
    stale = {
        name
        for name, entry in stages.items()
        if any(
            _param(params, k) != v
            for k, v in (entry.get("params") or {}).get("params.yaml", {}).items()
        )  # fmt: skip
    }
    outs = {name: [o["path"] for o in entry.get("outs") or []] for name, entry in stages.items()}
    grew = True
    while grew:
        # a file a stale entry names but a current stage made (a removed stage's entry) is made
        fresh = {p for name in stages if name not in stale for p in outs[name]}
        stale_outs = [p for name in stale for p in outs[name] if p not in fresh]
        new = {
            name
            for name, entry in stages.items()
            if name not in stale
            and any(_under(d["path"], p) for d in entry.get("deps") or [] for p in stale_outs)
        }
        stale |= new
        grew = bool(new)
    made = {p for name in stages if name not in stale for p in outs[name]}
    return {p for name in stale for p in outs[name]} - made  # (an entry of a removed stage)


def made_at(rev: str) -> Callable[[str], bool]:
    """Whether the experiment at `rev` made a file itself (see `not_made`)."""
    import dvc.api
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe")  # YAML 1.2, as DVC reads both files (1e-3 is a number)
    stale = not_made(
        yaml.load(dvc.api.read("dvc.lock", rev=rev)),
        yaml.load(dvc.api.read("params.yaml", rev=rev)),
    )
    return lambda path: not any(_under(path, p) for p in stale)


def read_json(path: str, rev: str, made: Callable[[str], bool]) -> dict[str, Any] | None:
    """A JSON file at `rev`; None when the experiment did not make it."""
    import dvc.api

    if not made(path):
        return None
    try:
        return json.loads(dvc.api.read(path, rev=rev))
    except Exception:  # noqa: BLE001 - a file an experiment did not make: the row was not run
        return None


def seed_record(exp: str, rev: str, names: list[str]) -> dict[str, Any]:
    """One experiment's numbers (every set of `names` it made, and r0's test accuracy) with where
    they come from: its revision, the commit it was run on, the SHA-256 of its params.yaml."""
    import dvc.api

    made = made_at(rev)
    rows: dict[str, dict[str, Any]] = {}
    for name in names:
        ev = read_json(f"reports/eval/{name}.json", rev, made)
        if ev is not None:
            rows[name] = {**(read_json(f"reports/sampling/{name}.json", rev, made) or {}), **ev}
    r0 = read_json("reports/train/r0.json", rev, made) or {}
    rows["r0"] = {"classifier_test_accuracy": r0.get("test_accuracy")}
    ladder = read_json("reports/eval/ladder.json", rev, made) or {}
    base = subprocess.run(["git", "rev-parse", f"{rev}^"], capture_output=True, text=True)
    params_text = dvc.api.read("params.yaml", rev=rev)
    return {
        "experiment": exp,
        "rev": rev,
        "base_commit": base.stdout.strip() or None,
        "params_sha256": hashlib.sha256(params_text.encode()).hexdigest(),
        "sets": rows,
        "ladder": ladder.get("rungs") or {},
    }


def committed_records(folder: Path, names: list[str]) -> list[dict[str, Any]]:
    """The per-seed files of `folder` (those of `names` when given), in name order."""
    paths = sorted(folder.glob("*.json"))
    if names:
        missing = [n for n in names if not (folder / f"{n}.json").is_file()]
        if missing:
            raise DataError(f"{folder}: no per-seed file for {', '.join(missing)}")
        paths = [folder / f"{n}.json" for n in names]
    if not paths:
        raise DataError(f"{folder}: no per-seed files; run `bin/cgen compare` where the seed "
                        f"experiments are")  # fmt: skip
    return [json.loads(p.read_text()) for p in paths]


def sources_block(records: list[dict[str, Any]], folder: Path) -> list:
    """Where every number of the page comes from: one committed file per experiment."""
    rows = [[r["experiment"], f"{folder / r['experiment']}.json", str(r["rev"])[:10],
             str(r["base_commit"] or "–")[:10], r["params_sha256"][:16], str(len(r["sets"]) - 1)]
            for r in records]  # fmt: skip
    return [("h2", "Sources"),
            ("table", ["experiment", "numbers", "revision", "run on commit", "params.yaml sha256",
                       "sets"], rows)]  # fmt: skip


@app.command()
def main(
    names: Annotated[list[str] | None, typer.Argument(help="experiments (default: seed-*)")] = None,
    md: Annotated[Path, typer.Option("--md")] = Path("reports/compare.md"),
    html_out: Annotated[Path, typer.Option("--html")] = Path("reports/compare.html"),
    committed: Annotated[
        bool, typer.Option("--committed", help="from the per-seed files, without the experiments")
    ] = False,
    seeds_dir: Annotated[Path, typer.Option("--seeds-dir")] = SEEDS_DIR,
) -> None:
    """Write the across-seed report of the seed experiments (or of their committed files)."""
    from pipeline import claims as C
    from pipeline import methods
    from pipeline.compare import compare_blocks
    from pipeline.methods.stic import chain_rounds
    from pipeline.params import load_params
    from pipeline.report import render_html, render_markdown
    from stages.report import label

    params = load_params(Path("params.yaml"))
    rounds = params.stic.rounds
    chain = chain_rounds(rounds)
    names_in_table = [*rounds, *params.eval.methods, "real"]
    if committed:
        records = committed_records(seeds_dir, names or [])
    else:
        records = []
        for exp, rev in experiments(names or []).items():
            record = seed_record(exp, rev, names_in_table)
            atomic_write_json(seeds_dir / f"{exp}.json", record)
            # read back: the page is made from the file's numbers, as `--committed` makes it
            records.append(json.loads((seeds_dir / f"{exp}.json").read_text()))
            typer.echo(f"{exp} ({rev}): {len(record['sets']) - 1} sets -> {seeds_dir}/{exp}.json")
    records.sort(key=lambda r: r["experiment"])  # the same page from either source
    runs = {r["experiment"]: r["sets"] for r in records}
    table = [(n, f"STIC {n}" if n in rounds else label(n)) for n in names_in_table]
    made_by, nulls = methods.makers(params.methods), params.references.nulls
    k = params.data.num_classes
    floors = {  # each seed's generation floor, from its own judges' ladder (pipeline.claims)
        r["experiment"]: {
            j: C.class_floor(
                list((r.get("ladder") or {}).values()), r["sets"].get("real", {}).get("cas"), k, j
            )  # fmt: skip
            for j in C.JUDGES
        }
        for r in records
    }
    blocks = compare_blocks(runs, table, chain, lambda n: methods.null_of(n, made_by, nulls), k,
                            floors)  # fmt: skip
    blocks += sources_block(records, seeds_dir)
    atomic_write_text(md, render_markdown(blocks, md.parent))
    atomic_write_text(html_out, render_html(blocks, lambda p: Path(p).read_bytes()))
    typer.echo(f"compare: {md} and {html_out} ({len(runs)} experiments)")
