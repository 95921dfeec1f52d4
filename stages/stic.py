"""Stages `synthesize@rK` and `retrain@rK` (STIC rounds) and the helper `cgen rounds N`.

synthesize@rK: GRMALA hard and soft fakes from round prev's classifier -> a SampleSet.
retrain@rK:    round prev's classifier retrained on real + mixup + fakes -> round rK's classifier
               and the fake pool it trained on.
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

import torch
import typer
import yaml

from pipeline import stic
from pipeline.checkpoint import load_classifier, save_checkpoint
from pipeline.config import ConfigError, read_yaml, to_dict
from pipeline.data import load_image_set
from pipeline.figures import save_curves, save_grid
from pipeline.io import atomic_write_text
from pipeline.params import Params, parse_params
from pipeline.resume import fingerprint
from pipeline.runtime import configure, derive_seed
from pipeline.samples import SampleSet, load_samples, save_samples
from pipeline.train import evaluate_classifier, train_classifier
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

HISTORY_KEYS = ("train_loss", "train_real_ce", "train_fake", "test_loss", "test_accuracy")
GRID_COLUMNS = 10  # hard fakes per class shown in the grid


def _round(params: Params, round_id: str) -> stic.RoundConfig:
    if round_id not in params.rounds:
        raise ConfigError(f"rounds.{round_id}: not a listed round ({', '.join(params.rounds)})")
    return params.rounds[round_id]


def run_synthesize(
    params: Params,
    round_id: str,
    model_path: Path,
    train_path: Path,
    buffer_path: Path | None,
    out: Path,
    metrics_path: Path,
    timing_path: Path,
    figure: Path,
) -> dict[str, float]:
    """Sample round `round_id`'s fakes from the previous round's classifier; returns metrics."""
    device = configure(params.runtime)
    rnd = _round(params, round_id)
    sampler = stic.round_sampler(params.stic.sampler, rnd, round_id)
    synthesis = params.stic.synthesis
    train = load_image_set(train_path)
    model, payload = load_classifier(
        model_path, expected_args=expected_model(params.baseline.model, train), device=device
    )
    k = train.num_classes
    buffer = None
    if sampler.canvas == "buffer" and buffer_path is not None:
        buffer = stic.pool_fakes(load_samples(buffer_path)).images
    config = {
        "sampler": to_dict(sampler),
        "synthesis": to_dict(synthesis),
        "round": round_id,
        "prev": rnd.prev,
        "seed": params.runtime.seed,
    }
    with tracker(params, f"synthesize@{round_id}", config, device, round_id) as run:
        t0 = time.perf_counter()
        grams = None
        if sampler.gram_weight > 0:
            grams = stic.class_mean_grams(
                model, train.float_images(), train.labels, k, sampler.gram_layers
            )
        targets = stic.make_targets(
            k,
            synthesis,
            torch.Generator().manual_seed(derive_seed(params.runtime.seed, round_id, "targets")),
        )
        gen = torch.Generator().manual_seed(derive_seed(params.runtime.seed, round_id, "sampler"))
        images, trace = stic.synthesize(
            model,
            targets,
            sampler,
            synthesis,
            gen,
            image_shape=train.shape,
            mean_grams=grams,
            buffer=buffer,
            where=f"synthesize@{round_id} (from {rnd.prev})",
            device=device,
        )
        seconds = time.perf_counter() - t0
        samples = SampleSet(images, targets, stic.METHOD, train.class_names)
        save_samples(samples, out)
        hard = samples.subset(torch.nonzero(samples.hard).flatten())
        per = min(GRID_COLUMNS, synthesis.hard_per_class)
        pick = torch.cat([torch.nonzero(hard.labels == c).flatten()[:per] for c in range(k)])
        save_grid(
            hard.images[pick],
            figure,
            rows=k,
            row_labels=list(train.class_names),
            title=f"STIC {round_id}: hard fakes from {rnd.prev}",
        )
        with torch.no_grad():
            x = stic.pool_fakes(hard).images.to(device)
            own = (model(x)[:, :k].argmax(1).cpu() == hard.labels).float().mean().item()
        summary = trace.summary(sampler.burn_in)
        metrics = {
            "acceptance_rate": summary["acceptance_rate"],
            "mean_log_density": summary["mean_log_density"],
            "final_step_size": summary["final_step_size"],
            "hard": int(samples.hard.sum()),
            "soft": int((~samples.hard).sum()),
            "prev_accuracy_on_hard": own,  # the sampling classifier's own view: not the judge's
            "prev_model_outputs": payload["model_args"]["num_outputs"],
        }
        write_metrics(metrics_path, metrics)
        write_metrics(
            timing_path, {"seconds": seconds, "seconds_per_sample": seconds / len(samples)}
        )
        run.log_history(
            [
                {"acceptance": a, "log_density": d, "step_size": s}
                for a, d, s in zip(
                    trace.acceptance, trace.log_density, trace.step_size, strict=True
                )
            ],
            prefix="sampler_",
        )
        run.log_metrics(metrics | {"seconds": seconds})
        run.log_artifact(figure, "figures")
    return metrics


def run_retrain(
    params: Params,
    round_id: str,
    model_path: Path,
    samples_path: Path,
    pool_path: Path,
    train_path: Path,
    test_path: Path,
    out: Path,
    pool_out: Path,
    metrics_path: Path,
    timing_path: Path,
    figure: Path,
    resume: Path | None,
) -> dict[str, float]:
    """Retrain the previous round's classifier on real + mixup + fakes; returns metrics."""
    device = configure(params.runtime)
    rnd = _round(params, round_id)
    cfg = params.stic
    train, test = load_image_set(train_path), load_image_set(test_path)
    k = train.num_classes
    prev_model, payload = load_classifier(
        model_path, expected_args=expected_model(params.baseline.model, train), device="cpu"
    )
    model, args = stic.retrain_model(prev_model, payload["model_args"], k, cfg.fake_mode)
    new, prev_pool = load_samples(samples_path), load_samples(pool_path)
    pool = stic.next_pool(prev_pool, new, cfg.fake_history)
    config = {
        "stic": {
            "fake_mode": cfg.fake_mode,
            "fake_weight": cfg.fake_weight,
            "fake_history": cfg.fake_history,
            "retrain": to_dict(cfg.retrain),
        },
        "round": round_id,
        "prev": rnd.prev,
        "seed": params.runtime.seed,
        "fakes": len(pool),
    }
    with tracker(
        params, f"retrain@{round_id}", config, device, round_id, system_metrics=True
    ) as run:
        t0 = time.perf_counter()
        history = train_classifier(
            model,
            train,
            cfg.retrain,
            device=device,
            seed=derive_seed(params.runtime.seed, round_id, "retrain"),
            where=f"retrain@{round_id}",
            test=test,
            fakes=stic.pool_fakes(pool),
            fake_loss=stic.fake_loss(cfg, k),
            resume_path=resume,
            fingerprint=fingerprint(
                config, args, len(train), hashlib.sha256(pool.images.numpy().tobytes()).hexdigest()
            ),
            on_epoch=lambda epoch, row: run.log_metrics(row, step=epoch),
        )
        seconds = time.perf_counter() - t0
        final = evaluate_classifier(model, test, device)
        stable = [{k_: v for k_, v in row.items() if k_ != "epoch_seconds"} for row in history]
        save_checkpoint(out, model, args, config, history=stable, round=round_id)
        save_samples(pool, pool_out)
        save_curves(stable, HISTORY_KEYS, figure, f"STIC {round_id}: retraining from {rnd.prev}")
        metrics = {
            "test_accuracy": final["accuracy"],
            "test_loss": final["loss"],
            "epochs": cfg.retrain.epochs,
        }
        write_metrics(metrics_path, metrics)
        write_metrics(
            timing_path,
            {"train_seconds": seconds, "seconds_per_epoch": seconds / cfg.retrain.epochs},
        )
        run.log_metrics(
            {f"final_{k_}": v for k_, v in metrics.items()}
            | {"train_seconds": seconds, "fakes": len(pool)}
        )
        run.log_artifact(out, "checkpoint")
        run.log_artifact(figure, "figures")
    return metrics


@app.command("synthesize")
@stage_command
def synthesize(
    round_id: str = typer.Option(..., "--round", help="round name, e.g. r1"),
    model: Path = typer.Option(..., "--model", help="the previous round's classifier"),
    train: Path = typer.Option(..., "--train"),
    buffer: Path | None = typer.Option(None, "--buffer", help="fake pool for canvas: buffer"),
    out: Path = typer.Option(..., "--out"),
    metrics: Path = typer.Option(..., "--metrics"),
    timing: Path = typer.Option(..., "--timing"),
    figure: Path = typer.Option(..., "--figure"),
    params_file: Path = PARAMS_OPTION,
) -> None:
    """STIC round: GRMALA hard and soft fakes from the previous round's classifier."""
    params = read_params(params_file)
    run_synthesize(params, round_id, model, train, buffer, out, metrics, timing, figure)


@app.command("retrain")
@stage_command
def retrain(
    round_id: str = typer.Option(..., "--round", help="round name, e.g. r1"),
    model: Path = typer.Option(..., "--model", help="the previous round's classifier"),
    samples: Path = typer.Option(..., "--samples", help="this round's fakes"),
    pool: Path = typer.Option(..., "--pool", help="the previous round's fake pool"),
    train: Path = typer.Option(..., "--train"),
    test: Path = typer.Option(..., "--test"),
    out: Path = typer.Option(..., "--out"),
    pool_out: Path = typer.Option(..., "--pool-out", help="the fake pool this round trained on"),
    metrics: Path = typer.Option(..., "--metrics"),
    timing: Path = typer.Option(..., "--timing"),
    figure: Path = typer.Option(..., "--figure"),
    resume: Path | None = RESUME_OPTION,
    params_file: Path = PARAMS_OPTION,
) -> None:
    """STIC round: retrain the previous round's classifier on real + mixup + fakes."""
    params = read_params(params_file)
    run_retrain(
        params,
        round_id,
        model,
        samples,
        pool,
        train,
        test,
        out,
        pool_out,
        metrics,
        timing,
        figure,
        resume,
    )


def replace_section(text: str, key: str, block: str) -> str:
    """`text` (a YAML file) with its top-level section `key` replaced by `block` (comments and
    layout elsewhere kept); appended when absent."""
    lines = text.splitlines(keepends=True)
    start = next(
        (i for i, line in enumerate(lines) if re.match(rf"^{re.escape(key)}\s*:", line)), None
    )
    if start is None:
        return text + ("" if text.endswith("\n") or not text else "\n") + block
    end = start + 1
    while end < len(lines) and (lines[end].strip() == "" or lines[end][0] in " \t#"):
        end += 1
    while end > start + 1 and lines[end - 1].strip() == "":  # keep blank lines before the next key
        end -= 1
    return "".join(lines[:start]) + block + "".join(lines[end:])


def rounds_block(text: str, n: int) -> str:
    """YAML for a chain of n rounds, keeping the per-round overrides of rounds that stay."""
    old = (yaml.safe_load(text) or {}).get("rounds") or {}
    rounds = stic.chain(n)
    for key, entry in rounds.items():
        extra = {k: v for k, v in (old.get(key) or {}).items() if k != "prev"}
        entry.update(extra)
    body = yaml.safe_dump({"rounds": rounds}, sort_keys=False, default_flow_style=False)
    return body


@app.command("rounds")
@stage_command
def rounds(
    n: int = typer.Argument(..., help="number of STIC rounds after the baseline r0"),
    params_file: Path = PARAMS_OPTION,
) -> None:
    """Write a well-formed chain r1..rN (each naming its predecessor) into the parameter file."""
    read_yaml(params_file)  # the current file must exist and parse
    text = params_file.read_text()
    new = replace_section(text, "rounds", rounds_block(text, n))
    parse_params(yaml.safe_load(new))  # validated before anything is written
    atomic_write_text(params_file, new)
    typer.echo(f"{params_file}: rounds r1..r{n}; run `dvc repro` (only new rounds run)")
