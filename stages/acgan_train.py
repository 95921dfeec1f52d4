"""Stage `acgan_train@<variant>`: the AC-GAN baseline (docs/methods.md#ac-gan), one variant of the
acgan sections (e.g. the paper's learning rate)."""

from __future__ import annotations

from typing import Annotated

import torch
import typer

from pipeline.config import to_dict
from pipeline.config import variant as config_variant
from pipeline.data import load_image_set
from pipeline.methods import acgan
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
    TrainData,
    stage,
)

SECTIONS = {
    "acgan.model": acgan.ACGANModelConfig,
    "acgan.train": acgan.ACGANTrainConfig,
    "acgan.variants.{variant}": acgan.ACGANVariant,
}
CURVES = ("d_loss", "g_loss", "d_L_S", "d_L_C")
FINAL = ("d_loss", "g_loss", "d_L_S", "d_L_C", "d_class_acc_real", "d_class_acc_fake",
         "d_p_real_on_fake")  # fmt: skip
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    variant: Annotated[str, typer.Option("--variant", help="a key of acgan.variants")],
    train: TrainData,
    model_out: ModelOut,
    metrics: MetricsOut,
    figure: FigureOut,
    history_out: HistoryOut,
    resume: Resume = None,
    params: Params = PARAMS_DEFAULT,
) -> None:
    """Train one AC-GAN variant's generator and two-headed discriminator."""
    sections = {k.format(variant=variant): v for k, v in SECTIONS.items()}
    tags = {"method": variant}
    with stage(f"acgan_train@{variant}", params, sections, tags=tags, system_metrics=True) as st:
        one = {variant: st.cfg[f"acgan.variants.{variant}"]}
        model_cfg = config_variant(acgan.ACGANModelConfig, st.cfg["acgan.model"], one, variant,
                                   acgan.NAME, "model")  # fmt: skip
        train_cfg = config_variant(acgan.ACGANTrainConfig, st.cfg["acgan.train"], one, variant,
                                   acgan.NAME, "train")  # fmt: skip
        data = load_image_set(train)
        c, h, _ = data.shape
        args = acgan.model_args(data.num_classes, c, h, model_cfg)
        # every variant starts from the same draws, so a variant changes only what it overrides
        torch.manual_seed(st.seed(acgan.NAME, "init"))
        generator, discriminator = acgan.build(args)
        generator, discriminator = generator.to(st.device), discriminator.to(st.device)
        config = {"model": to_dict(model_cfg), "train": to_dict(train_cfg), "seed": st.runtime.seed}
        torch.manual_seed(st.seed(acgan.NAME, "dropout"))  # D's dropout draws globally
        history = acgan.train(
            generator,
            discriminator,
            data.float_images(),
            data.labels,
            train_cfg,
            st.generator(acgan.NAME, "train"),
            on_epoch=lambda epoch, row: st.run.log_metrics(row, step=epoch),
            accel=st.accel,
            snapshots=Snapshots(resume, fingerprint(config, args, len(data)), where=variant),
        )
        d_state = {k: v.detach().cpu() for k, v in discriminator.state_dict().items()}
        write_training(
            st,
            TrainOutputs(model_out, metrics, figure, history_out),
            model=generator,
            model_args=args,
            config=config,
            history=history,
            metrics={f"final_{k}": history[-1][k] for k in FINAL},
            curves=CURVES,
            title=f"{variant}: losses (D minimises -(L_S + L_C))",
            discriminator_state=d_state,
            method=variant,
            train_passes_per_image=acgan.train_passes_per_image(train_cfg, len(data)),
        )
