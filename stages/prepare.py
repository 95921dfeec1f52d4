"""Stage `prepare`: load the configured dataset and write its fixed train/test split."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline import data
from stages.app import app
from stages.common import PARAMS_OPTION, read_params, stage_command, write_metrics


@app.command("prepare")
@stage_command
def prepare(
    train_out: Path = typer.Option(..., "--train-out"),
    test_out: Path = typer.Option(..., "--test-out"),
    metrics: Path = typer.Option(..., "--metrics"),
    params_file: Path = PARAMS_OPTION,
) -> None:
    """Write the train/test split of `data.name` as uint8 tensors."""
    params = read_params(params_file)
    train, test = data.prepare(params.data)
    data.save_image_set(train, train_out)
    data.save_image_set(test, test_out)
    c, h, w = train.shape
    write_metrics(
        metrics,
        {
            "train_images": len(train),
            "test_images": len(test),
            "classes": train.num_classes,
            "channels": c,
            "image_size": h,
        },
    )
