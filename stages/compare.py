"""`cgen compare`: the across-seed report (reports/compare.md and .html) from DVC experiments.

It lists the experiments of recent commits through DVC (`dvc.api.exp_show`), keeps those named
seed-* (made by `cgen seeds`) or the ones named, and reads each experiment's evaluation and
sampling files at its revision (`dvc.api.read`: from DVC's cache, where queued experiments put
their outputs); the claims are judged on the per-seed differences (pipeline.compare).

An experiment queued with `--target` runs only what the named stages need; its dvc.lock keeps
the other stages' entries, and their files, from its base commit (another seed's results). Those
are found from the lock itself (`not_made`) and read as "not run", never as this seed's."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from pipeline.errors import DataError
from pipeline.io import atomic_write_text
from stages.seeds import PREFIX

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


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
        stale_outs = [p for name in stale for p in outs[name]]
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


@app.command()
def main(
    names: Annotated[list[str] | None, typer.Argument(help="experiments (default: seed-*)")] = None,
    md: Annotated[Path, typer.Option("--md")] = Path("reports/compare.md"),
    html_out: Annotated[Path, typer.Option("--html")] = Path("reports/compare.html"),
) -> None:
    """Write the across-seed report of the seed experiments."""
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
    runs: dict[str, dict[str, dict[str, Any]]] = {}
    for exp, rev in experiments(names or []).items():
        made = made_at(rev)
        rows: dict[str, dict[str, Any]] = {}
        for name in names_in_table:
            ev = read_json(f"reports/eval/{name}.json", rev, made)
            if ev is not None:
                rows[name] = {**(read_json(f"reports/sampling/{name}.json", rev, made) or {}), **ev}
        r0 = read_json("reports/train/r0.json", rev, made) or {}
        rows["r0"] = {"classifier_test_accuracy": r0.get("test_accuracy")}
        runs[exp] = rows
        typer.echo(f"{exp} ({rev}): {len(rows) - 1} sets")
    table = [(n, f"STIC {n}" if n in rounds else label(n)) for n in names_in_table]
    made_by, nulls = methods.makers(params.methods), params.references.nulls
    blocks = compare_blocks(runs, table, chain, lambda n: methods.null_of(n, made_by, nulls),
                            params.data.num_classes)  # fmt: skip
    atomic_write_text(md, render_markdown(blocks, md.parent))
    atomic_write_text(html_out, render_html(blocks, lambda p: Path(p).read_bytes()))
    typer.echo(f"compare: {md} and {html_out} ({len(runs)} experiments)")
