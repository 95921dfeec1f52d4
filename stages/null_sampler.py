"""Stage `null@<name>`: a null-sampler reference set (pipeline.references): a method's evaluation
sampler run as in params, but on a flat target. What it scores is what noise and the canvas
score: chance for discriminability, the floor of every fidelity metric."""

from __future__ import annotations

from typing import Annotated

import typer

from pipeline.data import load_image_set
from pipeline.errors import ConfigError
from pipeline.nulls import SOURCES, null_set
from pipeline.references import NullSource
from stages.outputs import SampleOutputs, write_samples
from stages.skeleton import (
    PARAMS_DEFAULT,
    FigureOut,
    MetricsOut,
    Params,
    SamplesOut,
    TrainData,
    stage,
)

SECTIONS = {"references.nulls.{name}": NullSource, "{source}": SOURCES}
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    name: Annotated[str, typer.Option("--name", help="a key of references.nulls")],
    source: Annotated[NullSource, typer.Option("--source", help="its value: the method")],
    train: TrainData,
    samples_out: SamplesOut,
    metrics: MetricsOut,
    figure: FigureOut,
    params: Params = PARAMS_DEFAULT,
) -> None:
    """Draw one null-sampler set."""
    key = f"references.nulls.{name}"
    if source not in SOURCES:
        raise ConfigError(f"--source {source}: no method with an evaluation sampler of its own "
                          f"({', '.join(SOURCES)})")  # fmt: skip
    sections = {key: NullSource, source: SOURCES[source]}
    with stage(f"null@{name}", params, sections, tags={"method": name}) as st:
        if st.cfg[key] != source:
            raise ConfigError(f"{key}: is {st.cfg[key]}, but the stage says --source {source}")
        data = load_image_set(train)
        samples, sampler_metrics = null_set(
            source, st.cfg[source], data, st.generator(name, "targets"),
            st.generator(name, "chains"), name=name, device=st.device,
        )  # fmt: skip
        write_samples(
            st,
            SampleOutputs(samples_out, metrics, figure),
            samples,
            sampler_metrics | {"passes_per_sample": 0},
            title=f"{name}: {source}'s evaluation sampler with the gradient zeroed",
        )
