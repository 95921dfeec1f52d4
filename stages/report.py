"""Stage `report`: reports/report.md and a self-contained reports/report.html from the evaluation
results of exactly the rounds and methods that params.yaml lists (never a folder glob).

File names come from patterns given in dvc.yaml's cmd, with `{name}` standing for a round key,
a method name, `r0` or `real`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from pipeline import metrics as M
from pipeline.data import DataError
from pipeline.figures import save_round_lines
from pipeline.io import atomic_write_text
from pipeline.params import Params
from pipeline.report import (
    Entry,
    chain_order,
    render_html,
    render_markdown,
    report_blocks,
    round_series,
)
from stages.app import app
from stages.common import PARAMS_OPTION, read_params, stage_command


def _read_json(path: Path, required: bool) -> dict[str, Any] | None:
    if not path.is_file():
        if required:
            raise DataError(f"{path}: not found; run `dvc repro` so the stage that writes it runs")
        return None
    return json.loads(path.read_text())


def _number(data: dict | None, key: str) -> float | None:
    value = (data or {}).get(key)
    return float(value) if isinstance(value, int | float) else None


def collect_entries(
    params: Params, patterns: dict[str, str]
) -> tuple[list[Entry], list[Entry], float | None]:
    """(table rows: rounds, methods, real floor; the round rows; r0's test accuracy)."""

    def path(kind: str, name: str) -> Path:
        return Path(patterns[kind].format(name=name))

    def entry(name: str, kind: str, timing: Path | None, sampler: str | None) -> Entry:
        metrics = _read_json(path("eval", name), required=True) or {}
        has_soft = kind != "real" and (_number(metrics, M.NUM_SOFT) or 0) > 0
        figures = [path("grid", name)] + ([path("strips", name)] if has_soft else [])
        return Entry(
            name=name,
            kind=kind,  # type: ignore[arg-type]
            metrics=metrics,
            accuracy=None
            if kind == "real"
            else _number(
                _read_json(path("classifier", name), required=kind == "round"), "test_accuracy"
            ),
            seconds_per_sample=None
            if timing is None
            else _number(_read_json(timing, required=False), "seconds_per_sample"),
            eval_seconds=_number(_read_json(path("eval_timing", name), False), "eval_seconds"),
            sampler=sampler,
            figures=tuple(figures),
        )

    rounds = [
        entry(k, "round", path("round_timing", k), params.rounds[k].prev)
        for k in chain_order({k: r.prev for k, r in params.rounds.items()})
    ]
    methods = [entry(m, "method", path("method_timing", m), None) for m in params.eval.methods]
    real = entry("real", "real", None, None)
    r0 = _number(_read_json(path("classifier", "r0"), required=True), "test_accuracy")
    return [*rounds, *methods, real], rounds, r0


@app.command("report")
@stage_command
def report(
    eval_pattern: str = typer.Option(..., "--eval", help="evaluation JSON, e.g. x/{name}.json"),
    classifier_pattern: str = typer.Option(
        ..., "--classifier-metrics", help="a method's or round's classifier metrics JSON"
    ),
    round_timing: str = typer.Option(..., "--round-timing", help="a round's synthesis timing"),
    method_timing: str = typer.Option(..., "--method-timing", help="a method's timing JSON"),
    eval_timing: str = typer.Option(..., "--eval-timing", help="evaluation timing JSON"),
    grid_pattern: str = typer.Option(..., "--grid", help="sample grid PNG"),
    strips_pattern: str = typer.Option(..., "--strips", help="interpolation strips PNG"),
    rounds_figure: Path = typer.Option(..., "--rounds-figure", help="line plots across rounds"),
    md: Path = typer.Option(..., "--md"),
    html_out: Path = typer.Option(..., "--html"),
    params_file: Path = PARAMS_OPTION,
) -> None:
    """Write the Markdown and HTML report with its tables and figures."""
    params = read_params(params_file)
    patterns = {
        "eval": eval_pattern,
        "classifier": classifier_pattern,
        "round_timing": round_timing,
        "method_timing": method_timing,
        "eval_timing": eval_timing,
        "grid": grid_pattern,
        "strips": strips_pattern,
    }
    for kind, pattern in patterns.items():
        if "{name}" not in pattern:
            raise DataError(f"--{kind.replace('_', '-')}: pattern {pattern!r} lacks {{name}}")
    entries, rounds, r0 = collect_entries(params, patterns)
    xs, series = round_series(r0, rounds)
    save_round_lines(xs if rounds else [], series, rounds_figure, "STIC rounds")
    blocks = report_blocks(params.data.name, entries, rounds, r0, rounds_figure)
    atomic_write_text(md, render_markdown(blocks, md.parent))
    atomic_write_text(html_out, render_html(blocks, lambda p: Path(p).read_bytes()))
    typer.echo(
        f"report: {md} and {html_out} ({len(rounds)} rounds, "
        f"{len(params.eval.methods)} methods + real floor)"
    )
