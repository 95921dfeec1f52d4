"""Stage `score_train`: Score-STIC's noise-conditional classifier, trained with cross-entropy
and denoising score matching on its class logit (pipeline.methods.score)."""

from __future__ import annotations

import torch
import typer

from pipeline.config import to_dict
from pipeline.data import load_image_set
from pipeline.methods.score import (
    NAME,
    TRAINING_SECTIONS,
    ScoreTraining,
    accuracy_at,
    train_passes_per_image,
    train_score_classifier,
)
from pipeline.models import build_model, model_args
from pipeline.resume import Snapshots, fingerprint
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

SECTIONS = TRAINING_SECTIONS
CURVES = ("train_loss", "train_ce", "train_dsm", "test_accuracy")
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
    """Train the score classifier g(x, sigma)."""
    with stage("score_train", params, SECTIONS, tags={"method": NAME}, system_metrics=True) as st:
        cfg = ScoreTraining(**{key.split(".")[-1]: st.cfg[key] for key in SECTIONS})
        train_set, test_set = load_image_set(train), load_image_set(test)
        args = model_args(cfg.model, train_set.shape[0], train_set.num_classes)
        torch.manual_seed(st.seed(NAME, "init"))
        model = build_model(args)
        config = {NAME: to_dict(cfg), "seed": st.runtime.seed}
        history = train_score_classifier(
            model,
            train_set,
            cfg,
            device=st.device,
            seed=st.seed(NAME, "train"),
            test=test_set,
            snapshots=Snapshots(
                resume, fingerprint(config, args), cfg.train.checkpoint_every, NAME
            ),
            on_epoch=lambda epoch, row: st.run.log_metrics(row, step=epoch),
            accel=st.accel,
        )
        passes = train_passes_per_image(cfg.train, len(train_set))
        write_training(
            st,
            TrainOutputs(model_out, metrics, figure, history_out),
            model=model,
            model_args=args,
            config=config,
            history=history,
            metrics={
                "test_accuracy": accuracy_at(model, test_set, cfg.noise.sigma_min),
                "train_passes_per_image": passes,
            },
            curves=CURVES,
            title="Score-STIC: CE + denoising score matching",
            method=NAME,
            train_passes_per_image=passes,
        )
