"""Stage `regene_sample`: Dirichlet convex combinations of k latents of correctly classified
class-c training images, decoded. Reports the label guarantee (share of combined latents the
linear head still assigns to c: must be 1.0) and the share of decoded images the same classifier
assigns to c (not guaranteed: the decoder is not exact)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.checkpoint import load_classifier, load_module
from pipeline.data import load_image_set, to_uint8
from pipeline.infer import embed_all, predict_real
from pipeline.methods import regene
from pipeline.samples import SampleSet, hard_targets
from stages.outputs import SampleOutputs, write_samples
from stages.skeleton import (
    PARAMS_DEFAULT,
    FigureOut,
    MetricsOut,
    Params,
    SamplesOut,
    TrainData,
    stage,
)

SECTIONS = {"regene.combine": regene.CombineConfig}
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    classifier: Annotated[Path, typer.Option("--classifier", help="the encoder's checkpoint")],
    decoder: Annotated[Path, typer.Option("--decoder", help="the decoder's checkpoint")],
    train: TrainData,
    samples_out: SamplesOut,
    metrics: MetricsOut,
    figure: FigureOut,
    params: Params = PARAMS_DEFAULT,
) -> None:
    """Decode convex combinations of same-class latents."""
    name = regene.NAME
    with stage(f"{name}_sample", params, SECTIONS, tags={"method": name}) as st:
        cfg: regene.CombineConfig = st.cfg["regene.combine"]
        data = load_image_set(train)
        k = data.num_classes
        encoder, encoder_payload = load_classifier(classifier, device=st.device)
        net, payload = load_module(decoder, regene.build_decoder, device=st.device)
        x = data.float_images()
        latents, predicted = embed_all(encoder, x), predict_real(encoder, x, k)
        combined, labels = regene.combine_latents(
            latents, predicted, data.labels, k, cfg, st.generator(name, "sample")
        )
        images = regene.decode(net, combined)
        write_samples(
            st,
            SampleOutputs(samples_out, metrics, figure),
            SampleSet(to_uint8(images), hard_targets(labels, k), name, data.class_names),
            {
                "label_guarantee": regene.label_kept(encoder.head, combined, labels, k),
                "decoded_classifier_accuracy": float(
                    (predict_real(encoder, images, k) == labels).float().mean()
                ),
                **payload["recon"],
                "passes_per_sample": regene.PASSES_PER_SAMPLE,
                "train_passes_per_image": payload["train_passes_per_image"],
                "classifier_test_accuracy": encoder_payload.get("metrics", {}).get("test_accuracy"),
            },
            title=f"{name}: convex combinations of {cfg.k} latents",
        )
