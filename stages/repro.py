"""`cgen repro [DVC REPRO ARGS]`: `dvc repro` with the whole run's progress.

DVC names each stage as it starts, but not how far along the run is. This runs the same `dvc
repro` (its output passes through byte for byte, so what DVC runs and tracks is the same), after
asking DVC which stages it would run (`dvc repro --dry`), and puts a line before each stage:
`[k/N, 12:34 elapsed] stage`. N is exact for a run from scratch or with --force; otherwise `--dry`
lists the stages whose own inputs changed, and what reruns after them may join (N is then shown
as at least N). `make repro` uses it.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import typer

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
RUNNING = re.compile(r"^Running stage '([^']+)':")


def dvc_command() -> list[str]:
    """DVC from this interpreter's environment (the stages call bin/cgen, which finds it too)."""
    return [sys.executable, "-m", "dvc"]


def planned(args: list[str]) -> list[str]:
    """The stages `dvc repro ARGS` would run, in order (`--dry` runs nothing; with --pull it
    would fetch, so it is not asked)."""
    if any(a.startswith("--pull") for a in args):
        return []
    res = subprocess.run([*dvc_command(), "repro", "--dry", *args], capture_output=True,
                         text=True, check=False)  # fmt: skip
    if res.returncode != 0:
        return []  # the real run says what is wrong
    return [m.group(1) for line in res.stdout.splitlines() if (m := RUNNING.match(line))]


def progress_line(k: int, total: str, stage: str, seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    elapsed = f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
    return f"[{k}/{total}, {elapsed} elapsed] {stage}"


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def main(ctx: typer.Context) -> None:
    """Run `dvc repro` with the given arguments, showing which stage of how many runs."""
    args = list(ctx.args)
    stages = planned(args)
    exact = any(a in ("-f", "--force") for a in args) or not Path("dvc.lock").is_file()
    total = str(len(stages)) if exact else f">={len(stages)}"
    typer.echo(f"dvc repro: {total} stage(s) to run" if stages else "dvc repro")
    start = time.monotonic()
    proc = subprocess.Popen([*dvc_command(), "repro", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)  # fmt: skip
    assert proc.stdout is not None
    out, k = sys.stdout.buffer, 0
    try:
        for line in proc.stdout:  # bytes, passed on as they come
            if m := RUNNING.match(line.decode(errors="replace")):
                k += 1
                note = progress_line(k, total if k <= len(stages) else "?", m.group(1),
                                     time.monotonic() - start)  # fmt: skip
                out.write(note.encode() + b"\n")
            out.write(line)
            out.flush()
        code = proc.wait()
    except KeyboardInterrupt:  # Ctrl-C reaches DVC too (one process group): let it stop
        code = proc.wait()
    typer.echo(f"dvc repro finished in {time.monotonic() - start:.0f} s ({k} stage(s) ran)")
    raise typer.Exit(code)
