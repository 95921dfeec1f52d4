"""Stage `wang_torr@<variant>`: Wang & Torr input optimisation on a trained classifier, one sample
set per variant (docs/methods.md#wang-and-torr). A variant is `wang_torr.sampler` with the overrides
listed under `wang_torr.variants.<variant>`; its name is the sample set's (e.g. the all-off
control)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.checkpoint import load_classifier
from pipeline.config import Overrides
from pipeline.config import variant as config_variant
from pipeline.data import load_image_set, to_uint8
from pipeline.infer import agreement
from pipeline.methods import wang_torr
from pipeline.samples import SampleSet, hard_targets
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

SECTIONS = {
    "wang_torr.sampler": wang_torr.WangTorrConfig,
    "wang_torr.variants.{variant}": Overrides,
}
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    variant: Annotated[str, typer.Option("--variant", help="a key of wang_torr.variants")],
    classifier: Annotated[Path, typer.Option("--classifier", help="the classifier to invert")],
    train: TrainData,
    samples_out: SamplesOut,
    metrics: MetricsOut,
    figure: FigureOut,
    params: Params = PARAMS_DEFAULT,
) -> None:
    """Synthesize one Wang & Torr variant's sample set."""
    key = f"wang_torr.variants.{variant}"
    sections = {"wang_torr.sampler": wang_torr.WangTorrConfig, key: Overrides}
    with stage(f"wang_torr@{variant}", params, sections, tags={"method": variant}) as st:
        cfg = config_variant(wang_torr.WangTorrConfig, st.cfg["wang_torr.sampler"],
                             {variant: st.cfg[key]}, variant, "wang_torr")  # fmt: skip
        data = load_image_set(train)
        k = data.num_classes
        model, payload = load_classifier(classifier, device=st.device)
        stats = wang_torr.class_feature_stats(model, data.float_images(), data.labels, k)
        images, labels, losses = wang_torr.sample(
            model, cfg, stats, k, data.shape, st.generator(variant, "sampler")
        )
        write_samples(
            st,
            SampleOutputs(samples_out, metrics, figure),
            SampleSet(to_uint8(images), hard_targets(labels, k), variant, data.class_names),
            {f"final_{key_}": v for key_, v in losses.items()}
            | {
                "classifier_agreement": agreement(model, images, hard_targets(labels, k), k),
                "passes_per_sample": wang_torr.passes_per_sample(cfg, data.shape[1]),
                **from_checkpoint(payload),
            },
            title=f"{variant}: Wang & Torr on {payload.get('round')} ({wang_torr.components(cfg)})",
        )
