"""Stage `stic_sample@rK`: round rK's generator after its training, evaluated on fresh chains.

New chains from the canvas, with their own seed, for hard and soft targets (the same counts for
every round), each starting from the step size its class's training chains learned, adapting
during the burn-in only. The set never reuses a training chain."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.chains import ChainBuffer, ChainTraining
from pipeline.checkpoint import load_classifier
from pipeline.config import from_dict
from pipeline.data import load_image_set
from pipeline.eval_sets import EvalChainsConfig, eval_start_log_eps, evaluation_set
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

SECTIONS = {"stic.eval": EvalChainsConfig}  # the round's own settings come with its checkpoint
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    round_id: Annotated[str, typer.Option("--round", help="round name, e.g. r1")],
    model: Annotated[Path, typer.Option("--model", help="round rK's checkpoint")],
    train: TrainData,
    samples_out: SamplesOut,
    metrics: MetricsOut,
    figure: FigureOut,
    params: Params = PARAMS_DEFAULT,
) -> None:
    """Draw round rK's evaluation set."""
    tags = {"round": round_id, "method": "stic"}
    with stage(f"stic_sample@{round_id}", params, SECTIONS, tags=tags) as st:
        ev = st.cfg["stic.eval"]
        data = load_image_set(train)
        classifier, payload = load_classifier(model, device=st.device)
        config = payload["config"]
        setting = from_dict(ChainTraining, config["setting"], f"{model}: setting")
        samples, sampler_metrics, trace = evaluation_set(
            classifier,
            data,
            setting.drawing,
            ev,
            eval_start_log_eps(ev, ChainBuffer(**payload["chains"]), setting.sampler),
            st.generator(round_id, "eval targets"),
            st.generator(round_id, "eval chains"),
            method=round_id,
            device=st.device,
            where=f"stic_sample@{round_id}",
        )
        st.run.log_history(trace.rows(), prefix="sampler_")
        write_samples(
            st,
            SampleOutputs(samples_out, metrics, figure),
            samples,
            sampler_metrics | from_checkpoint(payload),
            title=f"STIC {round_id} ({config['synthesis']}): fresh chains, {ev.steps} steps",
        )
