"""`cgen repro [DVC REPRO ARGS]`: `dvc repro` with the whole run's progress.

DVC names each stage as it starts, but not how far along the run is. This runs the same `dvc
repro` (its output passes through unchanged, so what DVC runs and tracks is the same), after
asking DVC which stages it would run (`dvc repro --dry`), and puts a line before each stage:
`[k/N, 12:34 elapsed] stage`. `make repro` uses it.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

import typer

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
RUNNING = re.compile(r"^Running stage '([^']+)':")


def dvc_command() -> list[str]:
    """DVC from this interpreter's environment (the stages call bin/cgen, which finds it too)."""
    return [sys.executable, "-m", "dvc"]


def planned(args: list[str]) -> list[str]:
    """The stages `dvc repro ARGS` would run, in order (`--dry` runs nothing)."""
    res = subprocess.run([*dvc_command(), "repro", "--dry", *args], capture_output=True,
                         text=True, check=False)  # fmt: skip
    if res.returncode != 0:
        return []  # the real run says what is wrong
    return [m.group(1) for line in res.stdout.splitlines() if (m := RUNNING.match(line))]


def progress_line(k: int, total: int, stage: str, seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    elapsed = f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
    return f"[{k}/{total or '?'}, {elapsed} elapsed] {stage}"


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def main(ctx: typer.Context) -> None:
    """Run `dvc repro` with the given arguments, showing which stage of how many runs."""
    args = list(ctx.args)
    stages = planned(args)
    typer.echo(f"dvc repro: {len(stages)} stage(s) to run" if stages else "dvc repro")
    start = time.monotonic()
    proc = subprocess.Popen([*dvc_command(), "repro", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)  # fmt: skip
    assert proc.stdout is not None
    k = 0
    for line in proc.stdout:
        if m := RUNNING.match(line):
            k += 1
            typer.echo(progress_line(k, max(len(stages), k), m.group(1), time.monotonic() - start))
        sys.stdout.write(line)
        sys.stdout.flush()
    code = proc.wait()
    typer.echo(f"dvc repro finished in {time.monotonic() - start:.0f} s ({k} stage(s) ran)")
    raise typer.Exit(code)
