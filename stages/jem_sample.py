"""Stage `jem_sample`: JEM's evaluation set, on fresh chains from the canvas (not its buffer)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.chains import ChainBuffer
from pipeline.checkpoint import load_classifier
from pipeline.data import load_image_set
from pipeline.eval_sets import eval_start_log_eps, evaluation_set
from pipeline.methods.jem import NAME, JEMConfig
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

SECTIONS = {"jem": JEMConfig}
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    model: Annotated[Path, typer.Option("--model", help="the JEM checkpoint")],
    train: TrainData,
    samples_out: SamplesOut,
    metrics: MetricsOut,
    figure: FigureOut,
    params: Params = PARAMS_DEFAULT,
) -> None:
    """Draw JEM's evaluation set."""
    with stage("jem_sample", params, SECTIONS, tags={"method": NAME}) as st:
        cfg: JEMConfig = st.cfg["jem"]
        data = load_image_set(train)
        classifier, payload = load_classifier(model, device=st.device)
        samples, sampler_metrics, trace = evaluation_set(
            classifier,
            data,
            cfg.setting.drawing,
            cfg.eval,
            eval_start_log_eps(cfg.eval, ChainBuffer(**payload["chains"]), cfg.sampler),
            st.generator(NAME, "eval targets"),
            st.generator(NAME, "eval chains"),
            method=NAME,
            device=st.device,
            where="jem_sample",
        )
        st.run.log_history(trace.rows(), prefix="sampler_")
        write_samples(
            st,
            SampleOutputs(samples_out, metrics, figure),
            samples,
            sampler_metrics | from_checkpoint(payload),
            title=f"JEM: fresh chains, {cfg.eval.steps} SGLD steps",
        )
