"""Stage `prepare`: load the configured dataset and write its fixed train/test split."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.config import load_sections
from pipeline.data import DataConfig, DataFacts, file_digests, prepare, save_image_set
from stages.skeleton import PARAMS_DEFAULT, MetricsOut, Params, write_metrics

SECTIONS = {"data": DataConfig}
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    train_out: Annotated[Path, typer.Option("--train-out")],
    test_out: Annotated[Path, typer.Option("--test-out")],
    metrics: MetricsOut,
    params: Params = PARAMS_DEFAULT,
) -> None:
    """Write the train/test split of data.name as uint8 tensors, and what it is (the facts the
    parameter gate checks the other sections against, and the size and sha256 of every file the
    data was read from)."""
    cfg = load_sections(params, SECTIONS)["data"]
    # everything is read, checked and hashed before anything is written
    train, test = prepare(cfg)
    files = file_digests(cfg)
    save_image_set(train, train_out)
    save_image_set(test, test_out)
    facts = DataFacts.of(train, test)
    write_metrics(
        metrics,
        {
            "train_images": len(train),
            "test_images": facts.test_images,
            "classes": facts.classes,
            "channels": facts.channels,
            "image_size": facts.image_size,
            "train_per_class": list(facts.train_per_class),
            "files": files,
        },
    )
