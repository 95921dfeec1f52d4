"""Stages `evaluate@<name>` and `evaluate_real`: every metric of one sample set (pipeline.metrics)
against the real training images, with both judges, and its figures: the hard samples one row per
class, the soft samples as interpolation strips, and samples above their nearest training image.
`--real` evaluates the held-out test images instead: the real-data floor, measured the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline import metrics as M
from pipeline.checkpoint import load_classifier
from pipeline.data import ImageSet, load_image_set
from pipeline.evaluation import evaluate_samples, real_as_samples
from pipeline.figures import save_grid, save_strips
from pipeline.models import Classifier, ModelConfig, expected_args, model_args
from pipeline.panels import class_rows, interpolation_strips, neighbour_pairs
from pipeline.samples import load_samples
from stages.skeleton import (
    PARAMS_DEFAULT,
    MetricsOut,
    Params,
    Stage,
    TestData,
    TrainData,
    stage,
    write_metrics,
)

SECTIONS = {"eval.metrics": M.EvalConfig, "judge.model": ModelConfig, "judge_b.model": ModelConfig}
GRID_PER_CLASS = 10  # samples per class in the grid
STRIP_PAIRS = 4  # class pairs shown as interpolation strips
STRIP_LENGTH = 9  # soft samples per strip, spread over the lambda range
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
Figure = Annotated[Path, typer.Option(help="PNG to write")]


def measuring(
    st: Stage, judge: Path, judge_b: Path, train_set: ImageSet
) -> tuple[dict[str, Classifier], dict]:
    """What a set is measured with: both judges, loaded under the current parameters, and the
    args of the classifier the classification accuracy score trains (the judge's architecture)."""
    channels = train_set.shape[0]
    judges = {
        key: load_classifier(path, expected_args(st.cfg[f"{key}.model"], channels), st.device)[0]
        for key, path in (("judge", judge), ("judge_b", judge_b))
    }
    return judges, model_args(st.cfg["judge.model"], channels, train_set.num_classes)


@app.command()
def main(
    name: Annotated[str, typer.Option("--name", help="the sample set's name (real: the floor)")],
    train: TrainData,
    test: TestData,
    judge: Annotated[Path, typer.Option("--judge", help="judge checkpoint")],
    judge_b: Annotated[Path, typer.Option("--judge-b", help="second judge checkpoint")],
    metrics: MetricsOut,
    grid: Figure,
    strips: Figure,
    neighbours: Figure,
    samples: Annotated[Path | None, typer.Option("--samples", help="omit for the floor")] = None,
    params: Params = PARAMS_DEFAULT,
) -> None:
    """Evaluate one sample set, or the real-data floor (no --samples)."""
    with stage(f"evaluate@{name}", params, SECTIONS, tags={"evaluated": name}) as st:
        cfg: M.EvalConfig = st.cfg["eval.metrics"]
        train_set, test_set = load_image_set(train), load_image_set(test)
        judges, cas_model = measuring(st, judge, judge_b, train_set)
        sample_set = real_as_samples(test_set) if samples is None else load_samples(samples)
        result = evaluate_samples(sample_set, train_set, test_set, judges, cfg, st.device,
                                  cas_model, of_test=samples is None)  # fmt: skip
        images, rows = class_rows(result.hard, GRID_PER_CLASS)
        save_grid(images, grid, rows=len(rows), title=f"{name}: hard samples", row_labels=rows)
        save_strips(
            interpolation_strips(result.soft, result.soft_probs, STRIP_PAIRS, STRIP_LENGTH),
            strips,
            f"{name}: soft samples (λ = weight of the first class, p = judge's relative "
            "probability)",
        )
        pairs = neighbour_pairs(
            result.hard.images[result.shown], result.neighbours, train_set.images
        )
        save_grid(pairs, neighbours, rows=2, title=f"{name}: samples (top) and their nearest "
                  "training image in pixels (bottom)")  # fmt: skip
        write_metrics(metrics, result.metrics)
        st.run.set_tags({"method": name})
        st.run.log_metrics(result.metrics)
        for path in (grid, strips, neighbours):
            st.run.log_artifact(path, "figures")
