"""What every non-STIC generation stage writes the same way (the evaluation contract).

Per sample set NAME: the SampleSet file, reports/metrics/NAME.json (deterministic method metrics),
reports/timing/NAME.json (`seconds_per_sample`, plus training seconds where there is training) and
a grid with one row per class. Paths come from the stage's command line (dvc.yaml).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from pipeline.data import to_uint8
from pipeline.figures import save_grid
from pipeline.samples import SampleSet, hard_targets, save_samples
from pipeline.tracking import Tracker
from stages.common import write_metrics

GRID_COLUMNS = 10  # samples per class shown in the grid


def read_train_seconds(path: Path | None) -> dict[str, float]:
    """The `train_seconds` of a training stage's timing file (empty when there is none)."""
    if path is None or not Path(path).is_file():
        return {}
    data = json.loads(Path(path).read_text())
    return {"train_seconds": float(data["train_seconds"])} if "train_seconds" in data else {}


def write_sample_outputs(
    name: str,
    images: torch.Tensor,
    labels: torch.Tensor,
    class_names: tuple[str, ...],
    *,
    out: Path,
    figure: Path,
    metrics_path: Path,
    metrics: dict[str, float],
    timing_path: Path,
    timing: dict[str, float],
    title: str,
    run: Tracker,
) -> SampleSet:
    """Save float images (N, C, H, W) in [-1, 1] with hard targets `labels` as sample set `name`,
    and log its metrics and grid to the stage's MLflow run."""
    k = len(class_names)
    samples = SampleSet(to_uint8(images.cpu()), hard_targets(labels.cpu(), k), name, class_names)
    save_samples(samples, out)
    shown = torch.cat(
        [torch.nonzero(samples.labels == c).flatten()[:GRID_COLUMNS] for c in range(k)]
    )
    save_grid(samples.images[shown], figure, rows=k, title=title, row_labels=list(class_names))
    write_metrics(metrics_path, {"num_samples": len(samples), **metrics})
    write_metrics(
        timing_path, {"seconds_per_sample": timing["sample_seconds"] / len(samples), **timing}
    )
    run.log_metrics(metrics | {"sample_seconds": timing["sample_seconds"]})
    run.log_artifact(figure, "figures")
    return samples
