"""One writer for a trained network's outputs and one for a sample set's: what every training and
sampling stage writes, the same way, and logs to its run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pipeline.checkpoint import save_checkpoint
from pipeline.dist import writes_files
from pipeline.figures import save_curves, save_grid
from pipeline.io import atomic_write_text
from pipeline.panels import class_rows
from pipeline.samples import SampleSet, save_samples
from stages.skeleton import Stage, write_metrics


@dataclass(frozen=True)
class TrainOutputs:
    model: Path
    metrics: Path
    figure: Path
    history: Path  # per-epoch metrics as TSV: what `dvc plots diff` overlays across experiments


def write_training(
    st: Stage,
    outs: TrainOutputs,
    *,
    model: torch.nn.Module,
    model_args: dict,
    config: Mapping[str, Any],
    history: list[dict[str, float]],
    metrics: Mapping[str, Any],
    curves: tuple[str, ...],
    title: str,
    **extra: Any,
) -> None:
    """A trained network's outputs: its checkpoint (model args, config, history and `extra`),
    its metrics file, its training curves, and the same in the run. Under torchrun, one process
    per machine writes (pipeline.dist)."""
    if not writes_files():
        return
    save_checkpoint(
        outs.model, model, model_args, dict(config), history=history, metrics=dict(metrics), **extra
    )
    save_curves(history, curves, outs.figure, title)
    atomic_write_text(outs.history, history_tsv(history))
    write_metrics(outs.metrics, metrics)
    st.run.log_metrics({f"final_{k}": v for k, v in metrics.items()})
    st.run.log_artifact(outs.figure, "figures")


def history_tsv(history: list[dict[str, float]]) -> str:
    """Per-epoch metrics as TSV: an `epoch` column (from 1), then every key any epoch has, in
    first-seen order, with 6 significant digits (small diffs, the same bytes on a rerun)."""
    keys = list(dict.fromkeys(k for row in history for k in row))
    lines = ["\t".join(["epoch", *keys])]
    for epoch, row in enumerate(history, start=1):
        cells = [f"{row[k]:.6g}" if isinstance(row.get(k), int | float) else "" for k in keys]
        lines.append("\t".join([str(epoch), *cells]))
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class SampleOutputs:
    samples: Path
    metrics: Path
    figure: Path


GRID_PER_CLASS = 10  # hard samples per class shown in a stage's grid


def write_samples(
    st: Stage, outs: SampleOutputs, samples: SampleSet, metrics: Mapping[str, Any], title: str
) -> None:
    """A sample set's outputs: the set, its metrics file (with the sample count), its grid (one
    row per class), and the same in the run (one process per machine writes)."""
    if not writes_files():
        return
    save_samples(samples, outs.samples)
    images, rows = class_rows(samples, GRID_PER_CLASS)
    save_grid(images, outs.figure, rows=len(rows), title=title, row_labels=rows)
    full = {"num_samples": len(samples), **metrics}
    write_metrics(outs.metrics, full)
    st.run.log_metrics(full)
    st.run.log_artifact(outs.figure, "figures")


def from_checkpoint(payload: Mapping[str, Any]) -> dict[str, Any]:
    """What a sample set reports about the network that made it: its real-test accuracy and its
    training cost (forward passes per training image), from its checkpoint."""
    return {
        "classifier_test_accuracy": payload.get("metrics", {}).get("test_accuracy"),
        "train_passes_per_image": payload.get("train_passes_per_image"),
    }
