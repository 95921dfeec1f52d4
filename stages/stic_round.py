"""Stage `stic_round@rK`: STIC round rK starts from round prev's classifier and chains and trains
against its own GRMALA chains (per step) or against fakes drawn once from prev (per round).
Its checkpoint holds the classifier and the chains (with the step size each chain learned)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import torch
import typer

from pipeline.chains import ChainBuffer, ChainsConfig, Synthesis, train_against_chains, train_passes
from pipeline.checkpoint import load_classifier
from pipeline.config import to_dict
from pipeline.data import load_image_set
from pipeline.methods.stic import Init, RoundConfig, StiCShared, resolve_round
from pipeline.models import ModelConfig, NewRows, build_model, expected_args, with_outputs
from pipeline.resume import Snapshots, fingerprint
from pipeline.samplers import SamplerConfig
from pipeline.train import LossConfig, TrainConfig, evaluate_classifier
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

SECTIONS = {
    "stic.init": Init,
    "stic.fake_output": NewRows,
    "stic.synthesis": Synthesis,
    "stic.train": TrainConfig,
    "stic.loss": LossConfig,
    "stic.chains": ChainsConfig,
    "stic.sampler": SamplerConfig,
    "stic.per_round_steps": int,
    "stic.rounds.{round}": RoundConfig,
    "baseline.model": ModelConfig,
}
CURVES = ("train_loss", "train_real_ce", "train_fake", "test_accuracy", "train_chain_acceptance")
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def shared(cfg: dict) -> StiCShared:
    """The shared STIC sections as loaded by a round's stage."""
    return StiCShared(
        **{
            k: cfg[f"stic.{k}"]
            for k in ("init", "fake_output", "synthesis", "train", "loss", "chains", "sampler")
        },
        per_round_steps=cfg["stic.per_round_steps"],
    )


@app.command()
def main(
    round_id: Annotated[str, typer.Option("--round", help="round name, e.g. r1")],
    prev: Annotated[Path, typer.Option("--prev", help="the previous round's checkpoint")],
    train: TrainData,
    test: TestData,
    model_out: ModelOut,
    metrics: MetricsOut,
    figure: FigureOut,
    history_out: HistoryOut,
    resume: Resume = None,
    params: Params = PARAMS_DEFAULT,
) -> None:
    """Train STIC round rK from its predecessor."""
    sections = {k.format(round=round_id): v for k, v in SECTIONS.items()}
    tags = {"round": round_id, "method": "stic"}
    with stage(f"stic_round@{round_id}", params, sections, tags=tags, system_metrics=True) as st:
        rnd = resolve_round(shared(st.cfg), round_id, st.cfg[f"stic.rounds.{round_id}"])
        train_set, test_set = load_image_set(train), load_image_set(test)
        k = train_set.num_classes
        start, payload = load_classifier(
            prev, expected_args(st.cfg["baseline.model"], train_set.shape[0])
        )
        if rnd.init == "scratch":  # a new network of the same architecture; prev's chains stay
            torch.manual_seed(st.seed(round_id, "init"))
            start = build_model(payload["model_args"])
        torch.manual_seed(st.seed(round_id, "fake output"))  # its initialisation when random
        model, args = with_outputs(
            start, payload["model_args"], rnd.setting.loss.outputs(k), rnd.fake_output
        )
        chains = payload.get("chains")
        buffer = ChainBuffer(**chains) if chains else None
        config = {"round": round_id, "prev": rnd.prev, "init": rnd.init,
                  "fake_output": rnd.fake_output, "synthesis": rnd.synthesis,
                  "setting": to_dict(rnd.setting), "seed": st.runtime.seed}  # fmt: skip
        history, buffer = train_against_chains(
            model,
            train_set,
            rnd.setting,
            rnd.synthesis,
            device=st.device,
            seed=st.seed(round_id, "stic"),
            where=f"stic_round@{round_id}",
            test=test_set,
            buffer=buffer,
            per_round_steps=st.cfg["stic.per_round_steps"],
            snapshots=Snapshots(
                resume,
                fingerprint(config, args, payload["state_dict"]),
                rnd.setting.train.checkpoint_every,
                round_id,
            ),  # fmt: skip
            on_epoch=lambda epoch, row: st.run.log_metrics(row, step=epoch),
            accel=st.accel,
        )
        final = evaluate_classifier(model, test_set)
        passes = train_passes(
            rnd.setting, len(train_set), rnd.synthesis, st.cfg["stic.per_round_steps"]
        ) + payload.get("train_passes_per_image", 0.0)
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
                "chain_acceptance": history[-1].get("train_chain_acceptance"),
                "train_passes_per_image": passes,
            },
            curves=CURVES,
            title=f"STIC {round_id}: from {rnd.prev} ({rnd.synthesis})",
            chains=buffer.state_dict(),
            round=round_id,
            train_passes_per_image=passes,
        )
