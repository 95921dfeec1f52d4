"""Stages `judge`, `judge_b`, `baseline` (round r0) and `wang_torr_classifier` (the network Wang &
Torr invert): a classifier trained on real data only."""

from __future__ import annotations

from typing import Annotated, Literal

import torch
import typer

from pipeline.config import to_dict
from pipeline.costs import classifier_train_passes
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

Section = Literal["judge", "judge_b", "baseline", "wang_torr.classifier"]
SECTIONS = {"{section}": ClassifierConfig}  # dvc.yaml passes --section; judges load JudgeConfig
# section -> its stage, the `round` its checkpoint is written as, its MLflow tags: the baseline is
# STIC's round r0, Wang & Torr's classifier the `wang_torr.round` that names it (OWN_CLASSIFIER in
# pipeline.methods.wang_torr, not imported here: the judges would rerun on every edit of the
# sampler); a judge is no round
ROLES: dict[str, tuple[str, str, dict[str, str]]] = {
    "judge": ("judge", "judge", {"role": "judge"}),
    "judge_b": ("judge_b", "judge_b", {"role": "judge"}),
    "baseline": ("baseline", "r0", {"round": "r0", "method": "stic"}),
    "wang_torr.classifier": ("wang_torr_classifier", "wang_torr",
                             {"round": "wang_torr", "method": "wang_torr"}),
}  # fmt: skip
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
    stage_name, name, tags = ROLES[section]
    kind = JudgeConfig if tags.get("role") == "judge" else ClassifierConfig
    with stage(stage_name, params, {section: kind}, tags=tags) as st:
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
        # a classifier that synthesizes carries its training cost (sample sets report it); r0's
        # is left out (as the STIC rounds' costs leave it out), so its checkpoint is unchanged
        extra = ({"train_passes_per_image": classifier_train_passes(cfg.train, len(train_set))}
                 if section == "wang_torr.classifier" else {})  # fmt: skip
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
            round=name,
            **extra,
        )
