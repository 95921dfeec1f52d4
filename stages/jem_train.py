"""Stage `jem_train`: JEM's classifier, trained from scratch against its SGLD replay buffer
(pipeline.methods.jem). Its checkpoint holds the classifier and the buffer."""

from __future__ import annotations

import torch
import typer

from pipeline.chains import train_against_chains, train_passes
from pipeline.config import to_dict
from pipeline.data import load_image_set
from pipeline.methods.jem import NAME, JEMConfig
from pipeline.models import build_model, model_args
from pipeline.resume import Snapshots, fingerprint
from pipeline.train import evaluate_classifier
from stages.outputs import TrainOutputs, write_training
from stages.skeleton import (
    PARAMS_DEFAULT,
    FigureOut,
    HistoryOut,
    MetricsOut,
    ModelOut,
    Params,
    Resume,
    TestData,
    TrainData,
    stage,
)

SECTIONS = {"jem": JEMConfig}
CURVES = ("train_loss", "train_real_ce", "train_fake", "test_accuracy")
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    train: TrainData,
    test: TestData,
    model_out: ModelOut,
    metrics: MetricsOut,
    figure: FigureOut,
    history_out: HistoryOut,
    resume: Resume = None,
    params: Params = PARAMS_DEFAULT,
) -> None:
    """Train the JEM classifier."""
    with stage("jem_train", params, SECTIONS, tags={"method": NAME}, system_metrics=True) as st:
        cfg: JEMConfig = st.cfg["jem"]
        train_set, test_set = load_image_set(train), load_image_set(test)
        args = model_args(cfg.model, train_set.shape[0], cfg.loss.outputs(train_set.num_classes))
        torch.manual_seed(st.seed(NAME, "init"))
        model = build_model(args)
        config = {NAME: to_dict(cfg), "seed": st.runtime.seed}
        history, buffer = train_against_chains(
            model,
            train_set,
            cfg.setting,
            "per_step",
            device=st.device,
            seed=st.seed(NAME, "train"),
            where=NAME,
            test=test_set,
            snapshots=Snapshots(
                resume, fingerprint(config, args), cfg.train.checkpoint_every, NAME
            ),
            on_epoch=lambda epoch, row: st.run.log_metrics(row, step=epoch),
            accel=st.accel,
        )
        final = evaluate_classifier(model, test_set)
        passes = train_passes(cfg.setting, len(train_set), "per_step", 0)
        write_training(
            st,
            TrainOutputs(model_out, metrics, figure, history_out),
            model=model,
            model_args=args,
            config=config,
            history=history,
            metrics={
                "test_accuracy": final["accuracy"],
                "test_loss": final["loss"],
                "train_passes_per_image": passes,
            },
            curves=CURVES,
            title="JEM: training against its replay buffer",
            chains=buffer.state_dict(),
            method=NAME,
            train_passes_per_image=passes,
        )
