"""Stages `judge`, `judge_b` and `baseline` (round r0): a classifier trained on real data only."""

from __future__ import annotations

from typing import Annotated, Literal

import torch
import typer

from pipeline.config import to_dict
from pipeline.data import load_image_set
from pipeline.models import build_model, model_args
from pipeline.resume import Snapshots, fingerprint
from pipeline.runtime import derive_seed
from pipeline.train import ClassifierConfig, JudgeConfig, evaluate_classifier, train_classifier
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

Section = Literal["judge", "judge_b", "baseline"]
SECTIONS = {"{section}": ClassifierConfig}  # dvc.yaml passes --section; judges load JudgeConfig
CURVES = ("train_loss", "train_real_ce", "test_loss", "test_accuracy")
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    section: Annotated[Section, typer.Option("--section", help="which classifier")],
    train: TrainData,
    test: TestData,
    model_out: ModelOut,
    metrics: MetricsOut,
    figure: FigureOut,
    history_out: HistoryOut,
    resume: Resume = None,
    params: Params = PARAMS_DEFAULT,
) -> None:
    """Train a classifier on the real training split (a judge never synthesizes)."""
    kind = ClassifierConfig if section == "baseline" else JudgeConfig
    # the baseline is round r0 of STIC; a judge is no round (it only evaluates)
    tags = {"round": "r0", "method": "stic"} if section == "baseline" else {"role": "judge"}
    with stage(section, params, {section: kind}, tags=tags) as st:
        cfg = st.cfg[section]
        base = cfg.seed if isinstance(cfg, JudgeConfig) else st.runtime.seed
        train_set, test_set = load_image_set(train), load_image_set(test)
        args = model_args(cfg.model, train_set.shape[0], train_set.num_classes)
        torch.manual_seed(derive_seed(base, section, "init"))
        model = build_model(args)
        config = {section: to_dict(cfg), "seed": base}
        history = train_classifier(
            model,
            train_set,
            cfg.train,
            device=st.device,
            seed=derive_seed(base, section, "train"),
            where=section,
            test=test_set,
            snapshots=Snapshots(
                resume,
                fingerprint(config, args, len(train_set)),
                cfg.train.checkpoint_every,
                section,
            ),
            on_epoch=lambda epoch, row: st.run.log_metrics(row, step=epoch),
            accel=st.accel,
        )
        final = evaluate_classifier(model, test_set)
        write_training(
            st,
            TrainOutputs(model_out, metrics, figure, history_out),
            model=model,
            model_args=args,
            config=config,
            history=history,
            metrics={"test_accuracy": final["accuracy"], "test_loss": final["loss"]},
            curves=CURVES,
            title=f"{section}: training",
            round="r0" if section == "baseline" else section,
        )
