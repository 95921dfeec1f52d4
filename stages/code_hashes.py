"""`cgen code-hashes --out DIR`: the `code` stage. For every stage command, DIR/COMMAND.txt lists
the SHA-256 of each project file the command runs (`stages.dvc_deps.listing`); each stage depends
on its command's listing, so it reruns exactly when code it runs changes, while dvc.lock records
each module once (under this stage) rather than once for every stage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.io import atomic_write_text
from stages.dvc_deps import listed_commands, listing
from stages.skeleton import repo_root

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def write_listings(out: Path, root: Path) -> None:
    """out/COMMAND.txt for every stage command, of the code under `root`."""
    out.mkdir(parents=True, exist_ok=True)
    for command in listed_commands():
        atomic_write_text(out / f"{command}.txt", listing(command, root))


@app.command()
def main(out: Annotated[Path, typer.Option("--out", help="directory of the listings")]) -> None:
    """Write one listing per stage command into --out."""
    write_listings(out, repo_root())
