"""Stages `acgan_train` and `acgan_sample`: the AC-GAN baseline (PAPERS.md sec. 4)."""

from __future__ import annotations

import time
from pathlib import Path

import torch
import typer

from pipeline.checkpoint import read_checkpoint, save_checkpoint
from pipeline.config import to_dict
from pipeline.data import load_image_set
from pipeline.figures import save_curves
from pipeline.methods import acgan
from pipeline.params import Params
from pipeline.resume import Snapshots, fingerprint
from pipeline.runtime import configure, derive_seed
from stages.app import app
from stages.common import (
    PARAMS_OPTION,
    RESUME_OPTION,
    read_params,
    stage_command,
    tracker,
    write_metrics,
)
from stages.generation import read_train_seconds, write_sample_outputs

NAME = "acgan"
CURVE_KEYS = ("d_loss", "g_loss", "d_L_S", "d_L_C")
FINAL_KEYS = (
    "d_loss",
    "g_loss",
    "d_L_S",
    "d_L_C",
    "d_class_acc_real",
    "d_class_acc_fake",
    "d_p_real_on_fake",
)


def run_train(
    params: Params,
    train_path: Path,
    out: Path,
    metrics_path: Path,
    timing_path: Path,
    figure: Path,
    resume: Path | None = None,
) -> dict[str, float]:
    device = configure(params.runtime)
    cfg, seed = params.acgan, params.runtime.seed
    train = load_image_set(train_path)
    c, h, _ = train.shape
    args = acgan.model_args(train.num_classes, c, h, cfg)
    torch.manual_seed(derive_seed(seed, NAME, "init"))
    generator, discriminator = acgan.build(args)
    generator, discriminator = generator.to(device), discriminator.to(device)
    # what the checkpoint depends on (not samples_per_class: sampling reads that)
    config = {
        NAME: {k: v for k, v in to_dict(cfg).items() if k != "samples_per_class"},
        "seed": seed,
    }
    with tracker(params, f"{NAME}_train", config, device, system_metrics=True) as run:
        torch.manual_seed(derive_seed(seed, NAME, "dropout"))  # D's dropout draws globally
        gen = torch.Generator().manual_seed(derive_seed(seed, NAME, "train"))
        t0 = time.perf_counter()
        history = acgan.train(
            generator,
            discriminator,
            train.float_images(),
            train.labels,
            cfg,
            gen,
            on_epoch=lambda epoch, row: run.log_metrics(row, step=epoch),
            snapshots=Snapshots(resume, fingerprint(config, args, len(train)), where=NAME),
        )
        seconds = time.perf_counter() - t0
        d_state = {k: v.detach().cpu() for k, v in discriminator.state_dict().items()}
        save_checkpoint(
            out, generator, args, config, discriminator_state=d_state, history=history, method=NAME
        )
        save_curves(history, CURVE_KEYS, figure, f"{NAME}: losses (D minimises -(L_S + L_C))")
        metrics = {f"final_{k}": history[-1][k] for k in FINAL_KEYS} | {"epochs": cfg.epochs}
        write_metrics(metrics_path, metrics)
        write_metrics(
            timing_path, {"train_seconds": seconds, "seconds_per_epoch": seconds / cfg.epochs}
        )
        run.log_metrics({"train_seconds": seconds})
        run.log_artifact(figure, "figures")
    return metrics


def run_sample(
    params: Params,
    model_path: Path,
    train_path: Path,
    train_timing: Path | None,
    out: Path,
    metrics_path: Path,
    timing_path: Path,
    figure: Path,
) -> dict[str, float]:
    device = configure(params.runtime)
    cfg = params.acgan
    train = load_image_set(train_path)  # class names
    payload = read_checkpoint(model_path)
    generator, _ = acgan.build(payload["model_args"])
    generator.load_state_dict(payload["state_dict"])
    generator = generator.to(device).eval()
    config = {
        "samples_per_class": cfg.samples_per_class,
        "model_args": payload["model_args"],
        "seed": params.runtime.seed,
    }
    with tracker(params, f"{NAME}_sample", config, device) as run:
        gen = torch.Generator().manual_seed(derive_seed(params.runtime.seed, NAME, "sample"))
        t0 = time.perf_counter()
        images, labels = acgan.sample(generator, cfg.samples_per_class, gen)
        seconds = time.perf_counter() - t0
        last = payload["history"][-1]
        metrics = {f"final_{k}": last[k] for k in FINAL_KEYS}
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
            timing={"sample_seconds": seconds} | read_train_seconds(train_timing),
            title=f"{NAME} ({payload['model_args']['arch']} arch)",
            run=run,
        )
    return metrics


@app.command("acgan-train")
@stage_command
def acgan_train(
    train: Path = typer.Option(..., "--train"),
    out: Path = typer.Option(..., "--out"),
    metrics: Path = typer.Option(..., "--metrics"),
    timing: Path = typer.Option(..., "--timing"),
    figure: Path = typer.Option(..., "--figure"),
    resume: Path | None = RESUME_OPTION,
    params_file: Path = PARAMS_OPTION,
) -> None:
    """Train the AC-GAN generator and two-headed discriminator."""
    run_train(read_params(params_file), train, out, metrics, timing, figure, resume)


@app.command("acgan-sample")
@stage_command
def acgan_sample(
    model: Path = typer.Option(..., "--model"),
    train: Path = typer.Option(..., "--train", help="prepared data (for the class names)"),
    out: Path = typer.Option(..., "--out"),
    metrics: Path = typer.Option(..., "--metrics"),
    timing: Path = typer.Option(..., "--timing"),
    figure: Path = typer.Option(..., "--figure"),
    train_timing: Path | None = typer.Option(None, "--train-timing"),
    params_file: Path = PARAMS_OPTION,
) -> None:
    """Sample acgan.samples_per_class images of every class from the trained generator."""
    run_sample(read_params(params_file), model, train, train_timing, out, metrics, timing, figure)
