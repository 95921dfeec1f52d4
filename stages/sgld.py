"""Stage `sgld`: classifier + JEM-style SGLD on a classifier with no STIC training (the control)."""

from __future__ import annotations

import time
from pathlib import Path

import torch
import typer

from pipeline.checkpoint import load_classifier
from pipeline.config import to_dict
from pipeline.data import load_image_set
from pipeline.methods import sgld
from pipeline.methods.common import predict_real
from pipeline.params import Params
from pipeline.runtime import configure, derive_seed
from stages.app import app
from stages.common import PARAMS_OPTION, expected_model, read_params, stage_command, tracker
from stages.generation import write_sample_outputs

NAME = "sgld"


def run_sgld(
    params: Params,
    classifier_path: Path,
    train_path: Path,
    out: Path,
    metrics_path: Path,
    timing_path: Path,
    figure: Path,
) -> dict[str, float]:
    device = configure(params.runtime)
    cfg = params.sgld
    train = load_image_set(train_path)  # for the shape and class names only
    model, payload = load_classifier(
        classifier_path, expected_args=expected_model(params.baseline.model, train), device=device
    )
    round_id = str(payload.get("round", "r0"))
    config = {NAME: to_dict(cfg), "classifier_round": round_id, "seed": params.runtime.seed}
    with tracker(params, NAME, config, device, round_id) as run:
        gen = torch.Generator().manual_seed(derive_seed(params.runtime.seed, NAME, "sampler"))
        t0 = time.perf_counter()
        images, labels = sgld.sample(model, cfg, train.num_classes, train.shape, gen)
        seconds = time.perf_counter() - t0
        predicted = predict_real(model, images, train.num_classes)
        metrics = {
            "synth_classifier_accuracy": float((predicted.cpu() == labels).float().mean()),
            "pixel_mean": float(images.mean()),
            "pixel_std": float(images.std()),
        }
        write_sample_outputs(
            NAME,
            images,
            labels,
            train.class_names,
            out=out,
            figure=figure,
            metrics_path=metrics_path,
            metrics=metrics,
            timing_path=timing_path,
            timing={"sample_seconds": seconds},
            title=f"{NAME}: JEM-style SGLD on {round_id} (step {cfg.step_size}, noise {cfg.noise})",
            run=run,
        )
    return metrics


@app.command("sgld")
@stage_command
def sgld_command(
    classifier: Path = typer.Option(..., "--classifier"),
    train: Path = typer.Option(..., "--train"),
    out: Path = typer.Option(..., "--out"),
    metrics: Path = typer.Option(..., "--metrics"),
    timing: Path = typer.Option(..., "--timing"),
    figure: Path = typer.Option(..., "--figure"),
    params_file: Path = PARAMS_OPTION,
) -> None:
    """Sample the SGLD control set from a classifier with no STIC training."""
    run_sgld(read_params(params_file), classifier, train, out, metrics, timing, figure)
