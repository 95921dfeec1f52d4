"""`cgen seeds 0 1 2`: queue the pipeline for several seeds as DVC experiments (`dvc exp run
--queue -S runtime.seed=S -n seed-S`), then start the queue. Each experiment runs the whole
pipeline (or, with `--target`, what the named stages need) in its own temporary copy of the
repository; `cgen compare` reads their results, and marks the rows an experiment did not run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
PREFIX = "seed-"  # experiment names: seed-0, seed-1, ...


def dvc(*args: str) -> subprocess.CompletedProcess:
    """DVC from this interpreter's environment, whatever PATH says (its queue workers start
    `dvc` by name, so the environment's bin folder goes first on their PATH)."""
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"}
    return subprocess.run([sys.executable, "-m", "dvc", *args], text=True, check=False, env=env)


@app.command()
def main(
    seeds: Annotated[list[int], typer.Argument(help="values of runtime.seed, e.g. 0 1 2")],
    jobs: Annotated[int, typer.Option("--jobs", help="queue workers (each runs a pipeline)")] = 1,
    start: Annotated[bool, typer.Option("--start/--no-start", help="start the queue")] = True,
    target: Annotated[
        list[str] | None,
        typer.Option("--target", help="run only what these stages need (repeatable); default all"),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="another params override for every experiment, e.g. "
            "tracking.uri=http://127.0.0.1:5000 (repeatable)",
        ),
    ] = None,
) -> None:
    """Queue one experiment per seed and start the queue."""
    overrides = [arg for kv in set_ or [] for arg in ("-S", kv)]
    for seed in seeds:
        res = dvc("exp", "run", "--queue", "-S", f"runtime.seed={seed}", *overrides,
                  "-n", f"{PREFIX}{seed}", *(target or []))  # fmt: skip
        if res.returncode != 0:
            raise typer.Exit(res.returncode)
    if start:
        res = dvc("queue", "start", "-j", str(jobs))
        if res.returncode != 0:
            raise typer.Exit(res.returncode)
        typer.echo(
            f"queued {len(seeds)} experiments ({', '.join(f'{PREFIX}{s}' for s in seeds)}); "
            "follow with `.venv/bin/dvc queue status`, then `bin/cgen compare`"
        )
