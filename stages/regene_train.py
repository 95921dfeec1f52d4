"""Stage `regene_train`: ReGene's decoder from the frozen latents of a classifier round to images
(docs/methods.md#regene); reports the reconstruction error on the train and test splits."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import torch
import typer

from pipeline.checkpoint import load_classifier
from pipeline.config import to_dict
from pipeline.data import load_image_set
from pipeline.infer import embed_all
from pipeline.methods import regene
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

SECTIONS = {"regene.decoder": regene.DecoderConfig}
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    classifier: Annotated[Path, typer.Option("--classifier", help="the encoder's checkpoint")],
    train: TrainData,
    test: TestData,
    model_out: ModelOut,
    metrics: MetricsOut,
    figure: FigureOut,
    history_out: HistoryOut,
    resume: Resume = None,
    params: Params = PARAMS_DEFAULT,
) -> None:
    """Train the ReGene decoder on frozen classifier latents."""
    name = regene.NAME
    with stage(f"{name}_train", params, SECTIONS, tags={"method": name}, system_metrics=True) as st:
        cfg: regene.DecoderConfig = st.cfg["regene.decoder"]
        train_set, test_set = load_image_set(train), load_image_set(test)
        encoder, payload = load_classifier(classifier, device=st.device)
        x_train, x_test = train_set.float_images(), test_set.float_images()
        z_train, z_test = embed_all(encoder, x_train), embed_all(encoder, x_test)  # (N, D)
        c, h, _ = train_set.shape
        args = regene.decoder_args(z_train.shape[1], c, h, cfg)
        torch.manual_seed(st.seed(name, "init"))
        decoder = regene.Decoder(**args).to(st.device)
        config = {"decoder": to_dict(cfg), "encoder_round": payload.get("round"),
                  "seed": st.runtime.seed}  # fmt: skip
        history = regene.train_decoder(
            decoder,
            z_train,
            x_train,
            cfg,
            st.generator(name, "train"),
            on_epoch=lambda epoch, row: st.run.log_metrics(row, step=epoch),
            accel=st.accel,
            snapshots=Snapshots(resume, fingerprint(config, args, len(train_set)), where=name),
        )
        recon = {
            "train_recon_mse": regene.reconstruction_error(decoder, z_train, x_train),
            "test_recon_mse": regene.reconstruction_error(decoder, z_test, x_test),
        }
        write_training(
            st,
            TrainOutputs(model_out, metrics, figure, history_out),
            model=decoder,
            model_args=args,
            config=config,
            history=history,
            metrics=recon,
            curves=("train_mse",),
            title=f"{name}: decoder on {payload.get('round')} latents",
            recon=recon,
            method=name,
            # the encoder's training, then the decoder's
            train_passes_per_image=payload.get("train_passes_per_image", 0.0)
            + regene.decoder_passes_per_image(cfg, len(train_set)),
        )
