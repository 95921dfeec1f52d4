"""Stage `check`: the parameter gate. It depends on the whole of params.yaml and on what the
prepared data is, and every training stage depends on its output, so a typo anywhere in the file
(a key no stage reads included) or a setting the data makes impossible stops `dvc repro` and
`dvc exp run` here, with exit code 2 and one line naming the dotted key, before any training.
Its output holds only the word "ok": a valid change leaves it byte-identical, so only the stages
that read the changed keys rerun.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pipeline.data import DataFacts
from pipeline.io import atomic_write_text
from pipeline.params import load_params
from stages.skeleton import PARAMS_DEFAULT, Params

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    facts: Annotated[Path, typer.Option("--facts", help="prepare's metrics (the data's facts)")],
    out: Annotated[Path, typer.Option("--out", help="the gate's token file")],
    params: Params = PARAMS_DEFAULT,
) -> None:
    """Validate the whole parameter file, then check it against the prepared data."""
    checked = load_params(params)
    data = json.loads(Path(facts).read_text())
    checked.check_data(
        DataFacts(
            classes=data["classes"],
            channels=data["channels"],
            image_size=data["image_size"],
            train_per_class=tuple(data["train_per_class"]),
            test_images=data["test_images"],
        )
    )
    atomic_write_text(out, "ok\n")
    typer.echo(f"{params}: ok")
