"""Stages `regene_train` and `regene_sample`: ReGene, "Classify and Generate" (PAPERS.md sec. 3).

regene_train:  decoder from the frozen latents of a classifier round (regene.round) to images;
               reports the reconstruction error on the train and test splits.
regene_sample: Dirichlet convex combinations of k latents of correctly classified class-c training
               images, decoded; reports the label guarantee (share of combined latents that the
               linear head still assigns to c: must be 1.0) and the share of decoded images the
               same classifier assigns to c (not guaranteed: the decoder is not exact).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import typer

from pipeline.checkpoint import load_classifier, read_checkpoint, save_checkpoint
from pipeline.data import load_image_set
from pipeline.figures import save_curves
from pipeline.methods import regene
from pipeline.methods.common import embed_all, predict_real
from pipeline.params import Params
from pipeline.resume import Snapshots, fingerprint
from pipeline.runtime import configure, derive_seed
from stages.app import app
from stages.common import (
    PARAMS_OPTION,
    RESUME_OPTION,
    expected_model,
    read_params,
    stage_command,
    tracker,
    write_metrics,
)
from stages.generation import read_train_seconds, write_sample_outputs

NAME = "regene"
TRAIN_KEYS = ("round", "width", "epochs", "batch_size", "lr")


def run_train(
    params: Params,
    classifier_path: Path,
    train_path: Path,
    test_path: Path,
    out: Path,
    metrics_path: Path,
    timing_path: Path,
    figure: Path,
    resume: Path | None = None,
) -> dict[str, float]:
    device = configure(params.runtime)
    cfg, seed = params.regene, params.runtime.seed
    train, test = load_image_set(train_path), load_image_set(test_path)
    classifier, _ = load_classifier(
        classifier_path, expected_args=expected_model(params.baseline.model, train), device=device
    )
    c, h, _ = train.shape
    # what the decoder depends on (k, dirichlet_alpha, samples_per_class are read by sampling)
    config = {NAME: {k: getattr(cfg, k) for k in TRAIN_KEYS}, "seed": seed}
    with tracker(params, f"{NAME}_train", config, device, cfg.round, system_metrics=True) as run:
        t0 = time.perf_counter()
        x_train, x_test = train.float_images(), test.float_images()
        z_train, z_test = embed_all(classifier, x_train), embed_all(classifier, x_test)  # (N, D)
        args = regene.decoder_args(z_train.shape[1], c, h, cfg)
        torch.manual_seed(derive_seed(seed, NAME, "init"))
        decoder = regene.Decoder(**args).to(device)
        gen = torch.Generator().manual_seed(derive_seed(seed, NAME, "train"))
        history = regene.train_decoder(
            decoder,
            z_train,
            x_train,
            cfg,
            gen,
            on_epoch=lambda e, row: run.log_metrics(row, step=e),
            snapshots=Snapshots(resume, fingerprint(config, args, len(train)), where=NAME),
        )
        seconds = time.perf_counter() - t0
        metrics = {
            "train_recon_mse": regene.reconstruction_error(decoder, z_train, x_train),
            "test_recon_mse": regene.reconstruction_error(decoder, z_test, x_test),
            "epochs": cfg.epochs,
        }
        save_checkpoint(
            out, decoder, args, config, history=history, recon=metrics, round=cfg.round, method=NAME
        )
        save_curves(history, ("train_mse",), figure, f"{NAME}: decoder on {cfg.round} latents")
        write_metrics(metrics_path, metrics)
        write_metrics(
            timing_path, {"train_seconds": seconds, "seconds_per_epoch": seconds / cfg.epochs}
        )
        run.log_metrics(metrics | {"train_seconds": seconds})
        run.log_artifact(figure, "figures")
    return metrics


def run_sample(
    params: Params,
    classifier_path: Path,
    decoder_path: Path,
    train_path: Path,
    train_timing: Path | None,
    out: Path,
    metrics_path: Path,
    timing_path: Path,
    figure: Path,
) -> dict[str, float]:
    device = configure(params.runtime)
    cfg = params.regene
    train = load_image_set(train_path)
    k = train.num_classes
    classifier, _ = load_classifier(
        classifier_path, expected_args=expected_model(params.baseline.model, train), device=device
    )
    payload = read_checkpoint(decoder_path)
    decoder = regene.Decoder(**payload["model_args"])
    decoder.load_state_dict(payload["state_dict"])
    decoder = decoder.to(device).eval()
    config = {
        "round": cfg.round,
        "k": cfg.k,
        "dirichlet_alpha": cfg.dirichlet_alpha,
        "samples_per_class": cfg.samples_per_class,
        "seed": params.runtime.seed,
    }
    with tracker(params, f"{NAME}_sample", config, device, cfg.round) as run:
        gen = torch.Generator().manual_seed(derive_seed(params.runtime.seed, NAME, "sample"))
        t0 = time.perf_counter()
        x_train = train.float_images()
        latents = embed_all(classifier, x_train)
        predicted = predict_real(classifier, x_train, k)
        combined, labels = regene.combine_latents(latents, predicted, train.labels, k, cfg, gen)
        images = regene.decode(decoder, combined)
        seconds = time.perf_counter() - t0
        metrics = {
            "label_guarantee": regene.label_kept(classifier.head, combined, labels, k),
            "decoded_classifier_accuracy": float(
                (predict_real(classifier, images, k) == labels).float().mean()
            ),
            **payload["recon"],
        }
        metrics.pop("epochs", None)
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
            title=f"{NAME}: convex combinations of {cfg.k} {cfg.round} latents",
            run=run,
        )
    return metrics


@app.command("regene-train")
@stage_command
def regene_train(
    classifier: Path = typer.Option(..., "--classifier"),
    train: Path = typer.Option(..., "--train"),
    test: Path = typer.Option(..., "--test"),
    out: Path = typer.Option(..., "--out"),
    metrics: Path = typer.Option(..., "--metrics"),
    timing: Path = typer.Option(..., "--timing"),
    figure: Path = typer.Option(..., "--figure"),
    resume: Path | None = RESUME_OPTION,
    params_file: Path = PARAMS_OPTION,
) -> None:
    """Train the ReGene decoder on the frozen latents of a classifier round."""
    run_train(
        read_params(params_file), classifier, train, test, out, metrics, timing, figure, resume
    )


@app.command("regene-sample")
@stage_command
def regene_sample(
    classifier: Path = typer.Option(..., "--classifier"),
    decoder: Path = typer.Option(..., "--decoder"),
    train: Path = typer.Option(..., "--train"),
    out: Path = typer.Option(..., "--out"),
    metrics: Path = typer.Option(..., "--metrics"),
    timing: Path = typer.Option(..., "--timing"),
    figure: Path = typer.Option(..., "--figure"),
    train_timing: Path | None = typer.Option(None, "--train-timing"),
    params_file: Path = PARAMS_OPTION,
) -> None:
    """Decode convex combinations of same-class latents: regene.samples_per_class per class."""
    run_sample(
        read_params(params_file),
        classifier,
        decoder,
        train,
        train_timing,
        out,
        metrics,
        timing,
        figure,
    )
