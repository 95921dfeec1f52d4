"""Stages `judge` and `baseline` (round r0): train a classifier on the real training split."""

from __future__ import annotations

import time
from pathlib import Path

import torch
import typer

from pipeline.checkpoint import save_checkpoint
from pipeline.config import to_dict
from pipeline.data import load_image_set
from pipeline.figures import save_curves
from pipeline.models import build_model, model_args
from pipeline.params import ClassifierConfig, Params
from pipeline.resume import fingerprint
from pipeline.runtime import configure, derive_seed
from pipeline.train import evaluate_classifier, train_classifier
from stages.app import app
from stages.common import (
    PARAMS_OPTION,
    RESUME_OPTION,
    read_params,
    stage_command,
    tracker,
    write_metrics,
)

HISTORY_KEYS = ("train_loss", "train_real_ce", "test_loss", "test_accuracy")


def train_stage(
    params: Params,
    section: ClassifierConfig,
    name: str,
    seed: int,
    train_path: Path,
    test_path: Path,
    out: Path,
    metrics_path: Path,
    timing_path: Path,
    figure: Path,
    resume: Path | None,
    round_id: str | None = None,
) -> dict[str, float]:
    device = configure(params.runtime)
    train, test = load_image_set(train_path), load_image_set(test_path)
    args = model_args(section.model, in_channels=train.shape[0], num_outputs=train.num_classes)
    torch_seed = derive_seed(seed, name, "init")
    torch.manual_seed(torch_seed)
    model = build_model(args)
    config = {name: to_dict(section), "data": to_dict(params.data), "seed": seed}
    with tracker(params, name, config, device, round_id, system_metrics=True) as run:
        t0 = time.perf_counter()
        history = train_classifier(
            model,
            train,
            section.train,
            device=device,
            seed=derive_seed(seed, name, "train"),
            where=name,
            test=test,
            resume_path=resume,
            fingerprint=fingerprint(config, args, len(train)),
            on_epoch=lambda epoch, row: run.log_metrics(row, step=epoch),
        )
        seconds = time.perf_counter() - t0
        final = evaluate_classifier(model, test, device)
        # timings stay out of the checkpoint so its bytes are reproducible
        stable = [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in history]
        save_checkpoint(out, model, args, config, history=stable, round=round_id or name)
        save_curves(stable, HISTORY_KEYS, figure, f"{name}: training")
        metrics = {
            "test_accuracy": final["accuracy"],
            "test_loss": final["loss"],
            "epochs": section.train.epochs,
        }
        write_metrics(metrics_path, metrics)
        write_metrics(
            timing_path,
            {"train_seconds": seconds, "seconds_per_epoch": seconds / section.train.epochs},
        )
        run.log_metrics({f"final_{k}": v for k, v in metrics.items()} | {"train_seconds": seconds})
        run.log_artifact(out, "checkpoint")
        run.log_artifact(figure, "figures")
    return metrics


@app.command("judge")
@stage_command
def judge(
    train: Path = typer.Option(..., "--train"),
    test: Path = typer.Option(..., "--test"),
    out: Path = typer.Option(..., "--out"),
    metrics: Path = typer.Option(..., "--metrics"),
    timing: Path = typer.Option(..., "--timing"),
    figure: Path = typer.Option(..., "--figure"),
    resume: Path | None = RESUME_OPTION,
    params_file: Path = PARAMS_OPTION,
) -> None:
    """Train the evaluation classifier (never used for synthesis)."""
    params = read_params(params_file)
    train_stage(
        params,
        params.judge,
        "judge",
        params.judge.seed,
        train,
        test,
        out,
        metrics,
        timing,
        figure,
        resume,
    )


@app.command("baseline")
@stage_command
def baseline(
    train: Path = typer.Option(..., "--train"),
    test: Path = typer.Option(..., "--test"),
    out: Path = typer.Option(..., "--out"),
    metrics: Path = typer.Option(..., "--metrics"),
    timing: Path = typer.Option(..., "--timing"),
    figure: Path = typer.Option(..., "--figure"),
    resume: Path | None = RESUME_OPTION,
    fakes_out: Path | None = typer.Option(
        None, "--fakes-out", help="round r0's fake pool (empty), read by retrain@r1"
    ),
    params_file: Path = PARAMS_OPTION,
) -> None:
    """Train the baseline classifier: round r0 of the STIC chain (real + mixup, no fakes)."""
    params = read_params(params_file)
    train_stage(
        params,
        params.baseline,
        "baseline",
        params.runtime.seed,
        train,
        test,
        out,
        metrics,
        timing,
        figure,
        resume,
        round_id="r0",
    )
    if fakes_out is not None:
        from pipeline.samples import SampleSet, save_samples

        data = load_image_set(train)
        empty = SampleSet(
            torch.zeros((0, *data.shape), dtype=torch.uint8),
            torch.zeros((0, data.num_classes)),
            "stic",
            data.class_names,
        )
        save_samples(empty, fakes_out)
