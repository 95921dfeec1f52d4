"""`cgen sweep FILE`: queue a grid of settings as DVC experiments, each running only what one
evaluated round needs (`dvc exp run --queue -n NAME -S key=value ... evaluate_round@ROUND`), and
with `--table`, print the grid's table (setting -> the round's judge-FID, discriminability,
precision, real-test accuracy, acceptance) read from each experiment's files through DVC.

FILE is YAML: `round: r1` and `settings: {name: {dotted.key: value, ...}, ...}`; every setting
also gets the file's `base` overrides. sweeps/stic.yaml is the documented STIC sweep."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pipeline.config import read_yaml
from pipeline.errors import ConfigError
from stages.compare import experiments, read_json
from stages.seeds import dvc

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
COLUMNS = (
    ("judge_fid", "judge-FID", 1),
    ("judge_fid_lo", "lo", 1),
    ("judge_fid_hi", "hi", 1),
    ("discriminability", "discr.", 3),
    ("judge_b_discriminability", "discr. B", 3),
    ("precision", "precision", 2),
    ("classifier_test_accuracy", "test acc.", 3),
    ("acceptance_rate", "acceptance", 2),
    ("stuck_share", "stuck", 2),
    ("p_fake", "p(fake)", 2),
)


def load(path: Path) -> tuple[str, dict, dict[str, dict]]:
    grid = read_yaml(path)
    unknown = set(grid) - {"round", "base", "settings"}
    if unknown or "settings" not in grid:
        raise ConfigError(f"{path}: expected round, base and settings (got {sorted(grid)})")
    return grid.get("round", "r1"), grid.get("base") or {}, grid["settings"]


def flag(key: str, value) -> str:
    return f"{key}={value if isinstance(value, str) else json.dumps(value)}"


@app.command()
def main(
    grid_file: Annotated[Path, typer.Argument(help="the grid, e.g. sweeps/stic.yaml")],
    table: Annotated[bool, typer.Option("--table", help="print the results table")] = False,
    start: Annotated[bool, typer.Option("--start/--no-start", help="start the queue")] = True,
) -> None:
    """Queue the grid (default), or print its table once the experiments ran (--table)."""
    round_id, base, settings = load(grid_file)
    if table:
        found = experiments(list(settings), partial=True)
        header = ["setting", *(label for _, label, _ in COLUMNS)]
        typer.echo("| " + " | ".join(header) + " |")
        typer.echo("|" + "---|" * len(header))
        for name, changes in settings.items():
            rev = found.get(name)
            row = {} if rev is None else {
                **(read_json(f"reports/sampling/{round_id}.json", rev) or {}),
                **(read_json(f"reports/eval/{round_id}.json", rev) or {})}  # fmt: skip
            cells = [f"{row[k]:.{d}f}" if isinstance(row.get(k), float) else "–"
                     for k, _, d in COLUMNS]  # fmt: skip
            what = ", ".join(flag(k, v) for k, v in changes.items()) or "the base"
            typer.echo(f"| {name}: {what} | " + " | ".join(cells) + " |")
        return
    from dvc.api import exp_show

    done = {r.get("Experiment") for r in exp_show()}
    for name, changes in settings.items():
        if name in done:  # already run on this commit
            continue
        sets = [a for k, v in {**base, **changes}.items() for a in ("-S", flag(k, v))]
        res = dvc("exp", "run", "--queue", "-n", name, *sets, f"evaluate_round@{round_id}")
        if res.returncode != 0:
            raise typer.Exit(res.returncode)
    if start:
        dvc("queue", "start")
    typer.echo(f"queued {len(settings)} settings; `bin/cgen sweep {grid_file} --table` afterwards")
