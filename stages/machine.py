"""`cgen machine`: does this machine compute the committed numbers?

Compares this machine's numeric fingerprint (pipeline.numerics: the kernels the CPU libraries run
under `runtime.numerics`, their versions, the thread count) with the one committed beside the
results (`reports/machine.json`, written by `--write reports/machine.json` when results are
committed), and says
plainly which outputs will differ. After a `dvc repro`, it also lists the outputs whose hashes
differ from the committed `dvc.lock`: what did differ, not only what may.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Annotated

import typer
import yaml

from pipeline.io import atomic_write_json
from stages.skeleton import PARAMS_DEFAULT, Params, repo_root

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
COMMITTED = Path("reports/machine.json")


def lock_outputs(text: str) -> dict[str, str]:
    """{output path: md5} of every stage in a dvc.lock's text."""
    stages = (yaml.safe_load(text) or {}).get("stages") or {}
    return {
        o["path"]: o.get("md5", "") for stage in stages.values() for o in stage.get("outs") or []
    }


def committed_lock(root: Path) -> str | None:
    res = subprocess.run(["git", "-C", str(root), "show", "HEAD:dvc.lock"], capture_output=True,
                         text=True, check=False)  # fmt: skip
    return res.stdout if res.returncode == 0 else None


def changed_outputs(root: Path) -> list[str] | None:
    """Outputs whose hash in the working dvc.lock differs from the committed one (None when
    there is no committed lock to compare with)."""
    head = committed_lock(root)
    work = root / "dvc.lock"
    if head is None or not work.is_file():
        return None
    old, new = lock_outputs(head), lock_outputs(work.read_text())
    return sorted(p for p in old.keys() & new.keys() if old[p] != new[p])


def this_machine(params: Path) -> dict[str, str]:
    from pipeline import numerics
    from pipeline.config import load_sections
    from pipeline.runtime import RuntimeConfig, configure

    runtime = load_sections(params, {"runtime": RuntimeConfig})["runtime"]
    configure(runtime)
    return numerics.fingerprint(runtime.numerics, runtime.threads)


@app.command()
def main(
    write: Annotated[
        Path | None,
        typer.Option(
            "--write",
            help="write this machine's fingerprint to PATH (reports/machine.json records the "
            "machine of the committed results)",
        ),
    ] = None,
    params: Params = PARAMS_DEFAULT,
) -> None:
    """Compare this machine with the one that made the committed results."""
    from pipeline import numerics

    root = repo_root()
    here = this_machine(params)
    if write is not None:
        atomic_write_json(write, here)
        typer.echo(f"{write}: this machine's fingerprint ({here['cpu']})")
        return
    for problem in numerics.problems(here):
        typer.echo(f"This machine cannot run the portable numerics: {problem}.")
    path = root / COMMITTED
    if not path.is_file():
        typer.echo(f"No {COMMITTED}: nothing records which machine made the committed results.")
        return
    made = json.loads(path.read_text())
    diff = numerics.differences(made, here)
    typer.echo(f"Committed results: {made.get('cpu', '?')}, numerics {made.get('numerics')}.")
    typer.echo(f"This machine:      {here['cpu']}, numerics {here['numerics']}.")
    if not diff:
        typer.echo("Same numeric fingerprint: `dvc repro` reproduces the committed outputs "
                   "byte for byte.")  # fmt: skip
    else:
        what = "; ".join(f"{k} {a} there, {b} here" for k, (a, b) in diff.items())
        n = (
            len(lock_outputs((root / "dvc.lock").read_text()))
            if (root / "dvc.lock").is_file()
            else 0
        )
        typer.echo(f"Another numeric fingerprint ({what}): expect the outputs that training, "
                   f"sampling and evaluation compute to differ from the committed ones (dvc.lock "
                   f"lists {n} outputs); compare verdicts across seeds, not digits.")  # fmt: skip
    changed = changed_outputs(root)
    if changed:
        typer.echo(f"{len(changed)} outputs in the working dvc.lock differ from the committed:")
        for p in changed:
            typer.echo(f"  {p}")
