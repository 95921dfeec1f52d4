"""Stage `attentive@<variant>`: an Attentive-STIC set drawn in glimpses by a STIC round's
classifier, with the sampler settings its checkpoint carries and the rounds' evaluation protocol
(`stic.eval`: where each chain's step size starts, how long it adapts); it also
writes the drawing sequence (the canvas after each glimpse) and its strips, one row per class
(pipeline.methods.attentive)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.chains import ChainBuffer, ChainTraining, exact_grams
from pipeline.checkpoint import load_classifier
from pipeline.config import Overrides, from_dict
from pipeline.config import variant as config_variant
from pipeline.data import load_image_set, to_uint8
from pipeline.eval_sets import EvalChainsConfig, eval_start_log_eps, eval_targets, target_fn
from pipeline.infer import agreement
from pipeline.io import atomic_torch_save
from pipeline.methods.attentive import AttentiveConfig, draw, passes_per_sample
from pipeline.samples import SampleSet
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
    "attentive_stic.draw": AttentiveConfig,
    "attentive_stic.variants.{variant}": Overrides,
    "stic.eval": EvalChainsConfig,  # eps_start and burn_in: the rounds' evaluation protocol
}
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    variant: Annotated[str, typer.Option("--variant", help="a key of attentive_stic.variants")],
    model: Annotated[Path, typer.Option("--model", help="the STIC round's checkpoint")],
    train: TrainData,
    samples_out: SamplesOut,
    metrics: MetricsOut,
    figure: FigureOut,
    sequence_out: Annotated[Path, typer.Option("--sequence-out", help="drawing sequence .pt")],
    strips: Annotated[Path, typer.Option("--strips", help="drawing strips PNG")],
    params: Params = PARAMS_DEFAULT,
) -> None:
    """Draw one Attentive-STIC variant."""
    sections = {k.format(variant=variant): v for k, v in SECTIONS.items()}
    with stage(f"attentive@{variant}", params, sections, tags={"method": variant}) as st:
        key = f"attentive_stic.variants.{variant}"
        cfg = config_variant(AttentiveConfig, st.cfg["attentive_stic.draw"], {variant: st.cfg[key]},
                             variant, "attentive_stic")  # fmt: skip
        data = load_image_set(train)
        k = data.num_classes
        classifier, payload = load_classifier(model, device=st.device)
        setting = from_dict(ChainTraining, payload["config"]["setting"], "checkpoint setting")
        drawing = setting.drawing
        targets = eval_targets(k, cfg, drawing, st.generator(variant, "targets"))
        grams = exact_grams(classifier, data, drawing.sampler)
        ev = st.cfg["stic.eval"]
        start = eval_start_log_eps(ev, ChainBuffer(**payload["chains"]), drawing.sampler)
        log_eps = start[targets.argmax(1)]
        gen = st.generator(variant, "chains")
        x0 = drawing.canvas.draw((len(targets), *data.shape), gen).to(st.device)
        result = draw(
            target_fn(classifier, targets, drawing, grams, st.device),
            x0, log_eps, drawing.sampler, cfg, gen, adapt_steps=ev.burn_in,
            where=f"attentive@{variant}",
        )  # fmt: skip
        st.run.log_history(result.trace.rows(), prefix="sampler_")
        atomic_torch_save({"sequence": to_uint8(result.sequence), "targets": targets}, sequence_out)
        samples = SampleSet(to_uint8(result.x), targets, variant, data.class_names)
        _save_strips(samples, to_uint8(result.sequence), strips, variant)
        write_samples(
            st,
            SampleOutputs(samples_out, metrics, figure),
            samples,
            {
                "acceptance_rate": result.trace.summary()["acceptance_rate"],
                "classifier_agreement": agreement(classifier, result.x, targets, k),
                "steps_per_chain": result.steps,
                "passes_per_sample": passes_per_sample(cfg, result.steps),
                **from_checkpoint(payload),
            },
            title=f"{variant}: {cfg.glimpses} glimpses ({cfg.mask} window, {cfg.order})",
        )


def _save_strips(samples: SampleSet, sequence, path: Path, name: str) -> None:
    """One row per class: its first hard sample's canvas after each glimpse."""
    from pipeline.figures import save_strips

    rows = []
    for c, cls in enumerate(samples.class_names):
        idx = next(
            (int(i) for i in range(len(samples)) if samples.hard[i] and samples.labels[i] == c),
            None,
        )
        if idx is not None:
            captions = ["start", *(f"{t + 1}" for t in range(len(sequence) - 1))]
            rows.append((cls, sequence[:, idx], captions))
    save_strips(rows, path, f"{name}: the canvas after each glimpse")
