"""Stages `evaluate_round@rK`, `evaluate_method@<name>` and `evaluate_real`: every metric of one
sample set (judge-FID/KID/IS, precision/recall, discriminability, diversity, interpolation error),
a grid of its samples and strips of its soft samples; the real-data floor goes the same way.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from pipeline import metrics as M
from pipeline.checkpoint import load_classifier
from pipeline.data import DataError, load_image_set
from pipeline.figures import save_grid, save_strips
from pipeline.panels import class_rows, interpolation_strips
from pipeline.params import Params
from pipeline.runtime import configure
from pipeline.samples import SampleSet, load_samples
from stages.app import app
from stages.common import (
    PARAMS_OPTION,
    expected_model,
    read_params,
    stage_command,
    tracker,
    write_metrics,
)

GRID_PER_CLASS = 10  # samples per class in the grid
STRIP_PAIRS = 4  # class pairs shown as interpolation strips
STRIP_LENGTH = 9  # soft samples per strip, spread over the lambda range


def run_evaluate(
    params: Params,
    samples: SampleSet,
    name: str,
    train_path: Path,
    judge_path: Path,
    out: Path,
    timing: Path,
    grid: Path,
    strips: Path | None,
    round_id: str | None = None,
) -> dict:
    """Evaluate `samples` against the training images with the judge; write metrics and figures."""
    t0 = time.perf_counter()
    device = configure(params.runtime)
    train = load_image_set(train_path)
    judge, _ = load_classifier(
        judge_path, expected_args=expected_model(params.judge.model, train), device=device
    )
    with tracker(params, f"evaluate_{name}", {"eval": params.eval}, device, round_id) as run:
        run.set_tags({"evaluated": name})
        metrics = M.evaluate_samples(samples, train, judge, judge_path, params.eval, device)
        images, labels = class_rows(samples, GRID_PER_CLASS)
        save_grid(images, grid, rows=len(labels), title=f"{name}: hard samples", row_labels=labels)
        if strips is not None:
            soft = samples.subset(~samples.hard)
            probs = M.judge_probabilities(judge, soft.images, params.eval.batch_size, device)
            save_strips(
                interpolation_strips(soft, probs, STRIP_PAIRS, STRIP_LENGTH),
                strips,
                f"{name}: soft samples (λ = weight of the first class, p = judge's "
                "relative probability)",
            )
        write_metrics(out, metrics)
        seconds = time.perf_counter() - t0
        write_metrics(timing, {"eval_seconds": seconds})
        run.log_metrics(metrics | {"eval_seconds": seconds})
        run.log_artifact(out, "metrics")
        run.log_artifact(grid, "figures")
    return metrics


@app.command("evaluate")
@stage_command
def evaluate(
    name: str = typer.Option(..., "--name", help="round key (r1, ...) or method name"),
    samples: Path = typer.Option(..., "--samples", help="SampleSet .pt file"),
    train: Path = typer.Option(..., "--train", help="real training images (the reference)"),
    judge: Path = typer.Option(..., "--judge", help="judge checkpoint"),
    out: Path = typer.Option(..., "--out", help="metrics JSON"),
    timing: Path = typer.Option(..., "--timing", help="timing JSON"),
    grid: Path = typer.Option(..., "--grid", help="sample grid PNG"),
    strips: Path = typer.Option(..., "--strips", help="interpolation strips PNG"),
    is_round: bool = typer.Option(False, "--round", help="tag the MLflow run as a STIC round"),
    params_file: Path = PARAMS_OPTION,
) -> None:
    """Evaluate one sample set (a STIC round's fakes or another method's samples)."""
    params = read_params(params_file)
    run_evaluate(
        params,
        load_samples(samples),
        name,
        train,
        judge,
        out,
        timing,
        grid,
        strips,
        round_id=name if is_round else None,
    )


@app.command("evaluate-real")
@stage_command
def evaluate_real(
    train: Path = typer.Option(..., "--train"),
    test: Path = typer.Option(..., "--test"),
    judge: Path = typer.Option(..., "--judge"),
    out: Path = typer.Option(..., "--out"),
    timing: Path = typer.Option(..., "--timing"),
    grid: Path = typer.Option(..., "--grid"),
    params_file: Path = PARAMS_OPTION,
) -> None:
    """The real-data floor: held-out test images evaluated as if they were samples."""
    params = read_params(params_file)
    held_out = load_image_set(test)
    if len(held_out) < params.eval.num_samples:
        raise DataError(
            f"eval.num_samples is {params.eval.num_samples} but the held-out test split has "
            f"{len(held_out)} images; the real-data floor must be measured at the same count as "
            "the samples: lower eval.num_samples"
        )
    floor = M.real_as_samples(held_out)
    run_evaluate(params, floor, "real", train, judge, out, timing, grid, None)
