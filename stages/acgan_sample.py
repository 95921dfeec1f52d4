"""Stage `acgan_sample@<variant>`: sample every class from a trained AC-GAN generator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.checkpoint import load_module
from pipeline.config import variant as config_variant
from pipeline.data import load_image_set, to_uint8
from pipeline.methods import acgan
from pipeline.samples import SampleSet, hard_targets
from stages.outputs import SampleOutputs, from_checkpoint, write_samples
from stages.skeleton import (
    PARAMS_DEFAULT,
    FigureOut,
    MetricsOut,
    Params,
    SamplesOut,
    stage,
)

SECTIONS = {"acgan.sample": acgan.ACGANSampleConfig, "acgan.variants.{variant}": acgan.ACGANVariant}
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    variant: Annotated[str, typer.Option("--variant", help="a key of acgan.variants")],
    model: Annotated[Path, typer.Option("--model", help="the variant's generator checkpoint")],
    train: Annotated[Path, typer.Option("--train", help="prepared data (the class names)")],
    samples_out: SamplesOut,
    metrics: MetricsOut,
    figure: FigureOut,
    params: Params = PARAMS_DEFAULT,
) -> None:
    """Sample acgan.sample.per_class images of every class."""
    sections = {k.format(variant=variant): v for k, v in SECTIONS.items()}
    with stage(f"acgan_sample@{variant}", params, sections, tags={"method": variant}) as st:
        one = {variant: st.cfg[f"acgan.variants.{variant}"]}
        sample_cfg = config_variant(acgan.ACGANSampleConfig, st.cfg["acgan.sample"], one,
                                    variant, acgan.NAME, "sample")  # fmt: skip
        names = load_image_set(train).class_names
        generator, payload = load_module(model, acgan.build_generator, device=st.device)
        images, labels = acgan.sample(
            generator, sample_cfg.per_class, st.generator(acgan.NAME, "sample")
        )
        last = payload["history"][-1]
        write_samples(
            st,
            SampleOutputs(samples_out, metrics, figure),
            SampleSet(to_uint8(images), hard_targets(labels, len(names)), variant, names),
            {
                "final_d_class_acc_fake": last["d_class_acc_fake"],
                "final_d_p_real_on_fake": last["d_p_real_on_fake"],
                "passes_per_sample": acgan.PASSES_PER_SAMPLE,
                **from_checkpoint(payload),
            },
            title=f"{variant} ({payload['model_args']['arch']} arch)",
        )
