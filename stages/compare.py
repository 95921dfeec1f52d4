"""`cgen compare`: the across-seed report (reports/compare.md and .html) from DVC experiments.

It lists the experiments of the current commit through DVC (`dvc.api.exp_show`), keeps those named
seed-* (made by `cgen seeds`) or the ones named, and reads each experiment's evaluation and
sampling files at its revision (`dvc.api.read`: from DVC's cache, where queued experiments put
their outputs); the claims are judged on the per-seed differences (pipeline.compare)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from pipeline.errors import DataError
from pipeline.io import atomic_write_text
from stages.seeds import PREFIX

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def experiments(names: list[str]) -> dict[str, str]:
    """name -> revision of the experiments of HEAD (seed-* when `names` is empty)."""
    import dvc.api

    rows = dvc.api.exp_show()
    found = {
        r["Experiment"]: r["rev"]
        for r in rows
        if r.get("Experiment") and (r["Experiment"] in names or (not names and
                                                                 r["Experiment"].startswith(PREFIX)))
    }  # fmt: skip
    missing = [n for n in names if n not in found]
    if missing:
        raise DataError(f"no DVC experiment named {', '.join(missing)} on this commit")
    if not found:
        raise DataError(
            f"no {PREFIX}* experiments on this commit: run `bin/cgen seeds 0 1 2` first"
        )
    return found


def read_json(path: str, rev: str) -> dict[str, Any] | None:
    import dvc.api

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
    from pipeline.compare import compare_blocks
    from pipeline.config import read_yaml
    from pipeline.methods.stic import chain_rounds
    from pipeline.report import render_html, render_markdown
    from stages.report import LABELS

    params = read_yaml(Path("params.yaml"))
    rounds = params["stic"]["rounds"]
    chain = chain_rounds(rounds)
    names_in_table = [*rounds, *params["eval"]["methods"], "real"]
    runs: dict[str, dict[str, dict[str, Any]]] = {}
    for exp, rev in experiments(names or []).items():
        rows: dict[str, dict[str, Any]] = {}
        for name in names_in_table:
            ev = read_json(f"reports/eval/{name}.json", rev)
            if ev is not None:
                rows[name] = {**(read_json(f"reports/sampling/{name}.json", rev) or {}), **ev}
        r0 = read_json("reports/train/r0.json", rev) or {}
        rows["r0"] = {"classifier_test_accuracy": r0.get("test_accuracy")}
        runs[exp] = rows
        typer.echo(f"{exp} ({rev}): {len(rows) - 1} sets")
    table = [(n, LABELS.get(n, f"STIC {n}" if n in rounds else n)) for n in names_in_table]
    blocks = compare_blocks(runs, table, chain)
    atomic_write_text(md, render_markdown(blocks, md.parent))
    atomic_write_text(html_out, render_html(blocks, lambda p: Path(p).read_bytes()))
    typer.echo(f"compare: {md} and {html_out} ({len(runs)} experiments)")
