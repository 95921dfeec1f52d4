"""Stage `wang_torr@NAME`: Wang & Torr input optimisation on a trained classifier, one sample set
per variant (PAPERS.md sec. 2). A variant is the `wang_torr` section with the overrides listed
under `wang_torr_variants.NAME`; NAME is the sample set's name (e.g. the all-off control).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import typer

from pipeline.checkpoint import load_classifier
from pipeline.config import ConfigError, to_dict
from pipeline.data import load_image_set
from pipeline.methods import wang_torr
from pipeline.methods.common import predict_real
from pipeline.params import Params
from pipeline.runtime import configure, derive_seed
from stages.app import app
from stages.common import PARAMS_OPTION, expected_model, read_params, stage_command, tracker
from stages.generation import write_sample_outputs


def variant_config(params: Params, name: str) -> wang_torr.WangTorrConfig:
    if name not in params.wang_torr_variants:
        known = ", ".join(params.wang_torr_variants)
        raise ConfigError(f"wang_torr_variants.{name}: not a listed variant ({known})")
    try:
        return wang_torr.apply_override(params.wang_torr, params.wang_torr_variants[name])
    except ConfigError as exc:
        raise ConfigError(f"wang_torr_variants.{name}.{exc}") from None


def components(cfg: wang_torr.WangTorrConfig) -> str:
    on = [
        n
        for n, v in (
            ("views", cfg.views),
            ("distance", cfg.distance_weight > 0),
            ("distribution", cfg.distribution_weight > 0),
            ("progressive", cfg.progressive),
        )
        if v
    ]
    return "+".join(on) or "plain input optimisation"


def run_wang_torr(
    params: Params,
    name: str,
    classifier_path: Path,
    train_path: Path,
    out: Path,
    metrics_path: Path,
    timing_path: Path,
    figure: Path,
) -> dict[str, float]:
    device = configure(params.runtime)
    cfg = variant_config(params, name)
    train = load_image_set(train_path)
    k = train.num_classes
    model, payload = load_classifier(
        classifier_path, expected_args=expected_model(params.baseline.model, train), device=device
    )
    round_id = str(payload.get("round", "r0"))
    config = {
        "wang_torr": to_dict(cfg),
        "variant": name,
        "classifier_round": round_id,
        "seed": params.runtime.seed,
    }
    with tracker(params, f"wang_torr@{name}", config, device, round_id) as run:
        run.set_tags({"variant": name})
        gen = torch.Generator().manual_seed(derive_seed(params.runtime.seed, name, "sampler"))
        t0 = time.perf_counter()
        stats = wang_torr.class_feature_stats(model, train.float_images(), train.labels, k)
        images, labels, losses = wang_torr.sample(model, cfg, stats, k, train.shape, gen)
        seconds = time.perf_counter() - t0
        accuracy = float((predict_real(model, images, k) == labels).float().mean())
        metrics = {f"final_{key}": v for key, v in losses.items()} | {
            "synth_classifier_accuracy": accuracy
        }
        write_sample_outputs(
            name,
            images,
            labels,
            train.class_names,
            out=out,
            figure=figure,
            metrics_path=metrics_path,
            metrics=metrics,
            timing_path=timing_path,
            timing={"sample_seconds": seconds},
            title=f"{name}: Wang & Torr on {round_id} ({components(cfg)})",
            run=run,
        )
    return metrics


@app.command("wang-torr")
@stage_command
def wang_torr_command(
    variant: str = typer.Option(..., "--variant", help="a key of wang_torr_variants"),
    classifier: Path = typer.Option(..., "--classifier"),
    train: Path = typer.Option(..., "--train"),
    out: Path = typer.Option(..., "--out"),
    metrics: Path = typer.Option(..., "--metrics"),
    timing: Path = typer.Option(..., "--timing"),
    figure: Path = typer.Option(..., "--figure"),
    params_file: Path = PARAMS_OPTION,
) -> None:
    """Synthesize one Wang & Torr sample set (a variant of the component switches)."""
    run_wang_torr(
        read_params(params_file), variant, classifier, train, out, metrics, timing, figure
    )
