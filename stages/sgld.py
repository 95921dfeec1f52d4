"""Stage `sgld`: the control. JEM's sampler, run exactly as the JEM row is evaluated, on a
classifier trained only on real data (pipeline.methods.sgld)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.chains import ChainsConfig
from pipeline.checkpoint import load_classifier
from pipeline.data import load_image_set
from pipeline.eval_sets import EvalChainsConfig, evaluation_set
from pipeline.methods.sgld import NAME, SGLDControlConfig, drawing
from pipeline.models import ModelConfig, expected_args
from pipeline.samplers import SamplerConfig, initial_log_eps
from pipeline.train import LossConfig
from stages.outputs import SampleOutputs, from_checkpoint, write_samples
from stages.skeleton import (
    PARAMS_DEFAULT,
    FigureOut,
    MetricsOut,
    Params,
    SamplesOut,
    TrainData,
    stage,
)

SECTIONS = {
    "sgld": SGLDControlConfig,
    "jem.sampler": SamplerConfig,  # the control draws exactly as JEM's evaluation does
    "jem.loss": LossConfig,
    "jem.chains": ChainsConfig,
    "jem.eval": EvalChainsConfig,
    "baseline.model": ModelConfig,
}
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    classifier: Annotated[Path, typer.Option("--classifier", help="the classifier to sample")],
    train: TrainData,
    samples_out: SamplesOut,
    metrics: MetricsOut,
    figure: FigureOut,
    params: Params = PARAMS_DEFAULT,
) -> None:
    """Sample the SGLD control set."""
    with stage(NAME, params, SECTIONS, tags={"method": NAME}) as st:
        cfg: SGLDControlConfig = st.cfg["sgld"]
        data = load_image_set(train)
        model, payload = load_classifier(
            classifier, expected_args(st.cfg["baseline.model"], data.shape[0]), st.device
        )
        draw = drawing(st.cfg["jem.sampler"], st.cfg["jem.loss"], st.cfg["jem.chains"])
        samples, sampler_metrics, trace = evaluation_set(
            model,
            data,
            draw,
            st.cfg["jem.eval"],
            initial_log_eps(draw.sampler, data.num_classes),  # no training chains to learn from
            st.generator(NAME, "eval targets"),
            st.generator(NAME, "eval chains"),
            method=NAME,
            device=st.device,
            where=NAME,
        )
        st.run.log_history(trace.rows(), prefix="sampler_")
        write_samples(
            st,
            SampleOutputs(samples_out, metrics, figure),
            samples,
            sampler_metrics | from_checkpoint(payload),
            title=f"{NAME}: JEM's sampler on {cfg.round} (no generative training)",
        )
