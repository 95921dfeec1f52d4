"""`cgen sweep FILE`: queue a grid of settings as DVC experiments, each running only what one
evaluated sample set needs (`dvc exp run --queue -n NAME -S key=value ... evaluate_round@ROUND`,
or `evaluate_method@SET`), and with `--table`, print the grid's table (setting -> the set's
judge-FID, discriminability, precision, real-test accuracy, acceptance) read from each
experiment's files through DVC.

FILE is YAML: `round: r1` (a STIC round) or `set: score_stic` (a method's sample set), and
`settings: {name: {dotted.key: value, ...}, ...}`; every setting also gets the file's `profile` (one
of profiles/, e.g. `profile: digits`) and `base` overrides. With `seeds: [0, 1, 2]` every setting
runs once per value of runtime.seed (experiments NAME-s0, NAME-s1, ...) and the table shows the
seeds side by side in each cell. sweeps/stic.yaml is the documented STIC sweep;
sweeps/stic_regime.yaml finds STIC's working regime (docs/stic.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from pipeline.config import read_yaml
from pipeline.errors import ConfigError
from stages.compare import experiments, made_at, read_json
from stages.params_cmd import PROFILES, leaves, profile_of
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
    ("median_step_size", "median eps", 1),
    ("stuck_share", "stuck", 2),
    ("p_fake", "p(fake)", 2),
)
SEED_COLUMNS = ("lo", "hi")  # left out of a table with seeds (each cell holds every seed)


@dataclass(frozen=True)
class Grid:
    set: str  # the sample set each experiment evaluates: a STIC round or a method's set
    base: dict
    settings: dict[str, dict]
    seeds: tuple[int, ...]  # () : runtime.seed as params.yaml has it, one experiment a setting
    stage: str  # the DVC stage each experiment runs (with what it needs)

    def runs(self) -> list[tuple[str, str, dict]]:
        """(experiment name, setting, overrides) of every experiment of the grid."""
        if not self.seeds:
            return [(name, name, {**self.base, **ch}) for name, ch in self.settings.items()]
        return [
            (f"{name}-s{seed}", name, {**self.base, **ch, "runtime.seed": seed})
            for name, ch in self.settings.items()
            for seed in self.seeds
        ]


def load(path: Path) -> Grid:
    grid = read_yaml(path)
    unknown = set(grid) - {"round", "set", "profile", "base", "settings", "seeds"}
    if unknown or "settings" not in grid or ("round" in grid and "set" in grid):
        raise ConfigError(f"{path}: expected round or set, profile, base, settings and seeds (got "
                          f"{sorted(grid)})")  # fmt: skip
    seeds = grid.get("seeds") or []
    if not isinstance(seeds, list) or not all(isinstance(s, int) for s in seeds):
        raise ConfigError(f"{path}: seeds: expected a list of integers, got {seeds!r}")
    if "set" in grid:
        name, stage = grid["set"], f"evaluate_method@{grid['set']}"
    else:
        name = grid.get("round", "r1")
        stage = f"evaluate_round@{name}"
    base = dict(leaves(profile_of(grid["profile"], PROFILES))) if grid.get("profile") else {}
    return Grid(name, base | (grid.get("base") or {}), grid["settings"], tuple(seeds), stage)


def cell(values: list, digits: int) -> str:
    """One table cell: a number, or one per seed ("a / b / c"); '–' for a run not made."""

    def one(v):  # noqa: E306
        if not isinstance(v, float | int) or isinstance(v, bool):
            return "–"
        return f"{v:.{digits}e}" if digits == 1 and abs(v) and abs(v) < 1e-3 else f"{v:.{digits}f}"

    return " / ".join(one(v) for v in values)


def flag(key: str, value) -> str:
    """`key=value` for `dvc exp run -S`, the value written so YAML reads it back as its type
    (a float as 1.0e-08: YAML takes 1e-08, without the dot, for a string)."""
    if isinstance(value, float) and "e" in repr(value) and "." not in repr(value).split("e")[0]:
        mantissa, exponent = repr(value).split("e")
        return f"{key}={mantissa}.0e{exponent}"
    return f"{key}={value if isinstance(value, str) else json.dumps(value)}"


@app.command()
def main(
    grid_file: Annotated[Path, typer.Argument(help="the grid, e.g. sweeps/stic.yaml")],
    table: Annotated[bool, typer.Option("--table", help="print the results table")] = False,
    start: Annotated[bool, typer.Option("--start/--no-start", help="start the queue")] = True,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="queue only these settings (repeatable)")
    ] = None,
    seed: Annotated[
        list[int] | None, typer.Option("--seed", help="queue only these seeds (repeatable)")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="another override for every experiment (repeatable), e.g. "
            "tracking.uri=http://127.0.0.1:5000",
        ),
    ] = None,
) -> None:
    """Queue the grid (default), or print its table once the experiments ran (--table)."""
    grid = load(grid_file)
    for name in only or []:
        if name not in grid.settings:
            raise ConfigError(f"--only {name}: not a setting of {grid_file}")
    runs = [
        r for r in grid.runs()
        if (not only or r[1] in only)
        and (not seed or r[2].get("runtime.seed") in seed)
    ]  # fmt: skip
    extra = [a for kv in set_ or [] for a in ("-S", kv)]
    if table:
        names = [name for name, _, _ in grid.runs()]
        typer.echo(render(grid, experiments(names, partial=True,
                                            hint=f"bin/cgen sweep {grid_file}")))  # fmt: skip
        return
    from dvc.api import exp_show

    done = {r.get("Experiment") for r in exp_show()}
    for name, _, changes in runs:
        if name in done:  # already run on this commit
            continue
        sets = [a for k, v in changes.items() for a in ("-S", flag(k, v))]
        res = dvc("exp", "run", "--queue", "-n", name, *sets, *extra, grid.stage)
        if res.returncode != 0:
            raise typer.Exit(res.returncode)
    if start:
        dvc("queue", "start")
    typer.echo(f"queued {len(runs)} experiments; `bin/cgen sweep {grid_file} --table` afterwards")


def render(grid: Grid, found: dict[str, str]) -> str:
    """The grid's Markdown table from the experiments `found` (name -> revision)."""
    columns = [c for c in COLUMNS if not (grid.seeds and c[1] in SEED_COLUMNS)]
    seeds = f" (seeds {', '.join(map(str, grid.seeds))})" if grid.seeds else ""
    header = [f"setting{seeds}", *(label for _, label, _ in columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for setting, changes in grid.settings.items():
        rows = []
        for name, s, _ in grid.runs():
            if s != setting:
                continue
            rev = found.get(name)
            made = made_at(rev) if rev is not None else None
            rows.append({} if rev is None else {
                **(read_json(f"reports/sampling/{grid.set}.json", rev, made) or {}),
                **(read_json(f"reports/eval/{grid.set}.json", rev, made) or {})})  # fmt: skip
        cells = [cell([r.get(k) for r in rows], d) for k, _, d in columns]
        what = ", ".join(flag(k, v) for k, v in changes.items()) or "the base"
        lines.append(f"| {setting}: {what} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
