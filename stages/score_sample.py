"""Stage `score_sample@<variant>`: a Score-STIC set by annealed Langevin on the class score."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.checkpoint import load_classifier
from pipeline.data import load_image_set, to_uint8
from pipeline.infer import agreement
from pipeline.methods.score import (
    NAME,
    NoiseConfig,
    ScoreSamplingConfig,
    ScoreVariant,
    drawing_of,
    evaluation_draw,
    passes_per_sample,
)
from pipeline.samplers import SamplerConfig
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
    "score_stic.noise": NoiseConfig,
    "score_stic.sampler": SamplerConfig,
    "score_stic.sampling": ScoreSamplingConfig,
    "score_stic.variants.{variant}": ScoreVariant,
}
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    variant: Annotated[str, typer.Option("--variant", help="a key of score_stic.variants")],
    model: Annotated[Path, typer.Option("--model", help="the score classifier")],
    train: TrainData,
    samples_out: SamplesOut,
    metrics: MetricsOut,
    figure: FigureOut,
    params: Params = PARAMS_DEFAULT,
) -> None:
    """Draw the Score-STIC evaluation set of one variant."""
    sections = {k.format(variant=variant): v for k, v in SECTIONS.items()}
    with stage(f"score_sample@{variant}", params, sections, tags={"method": variant}) as st:
        cfg = drawing_of(st.cfg["score_stic.noise"], st.cfg["score_stic.sampler"],
                         st.cfg["score_stic.sampling"],
                         {variant: st.cfg[f"score_stic.variants.{variant}"]}, variant)  # fmt: skip
        data = load_image_set(train)
        net, payload = load_classifier(model, device=st.device)
        targets, run = evaluation_draw(
            net, cfg, data, st.generator(NAME, "eval targets"), st.generator(NAME, "eval chains"),
            device=st.device,
        )  # fmt: skip
        st.run.log_history(run.trace.rows(), prefix="sampler_")
        at_min = net.at(cfg.noise.sigma_min)
        write_samples(
            st,
            SampleOutputs(samples_out, metrics, figure),
            SampleSet(to_uint8(run.x), targets, variant, data.class_names),
            {
                "acceptance_rate": run.trace.summary()["acceptance_rate"],
                "classifier_agreement": agreement(at_min, run.x, targets, data.num_classes),
                "passes_per_sample": passes_per_sample(cfg),
                **from_checkpoint(payload),
            },
            title=f"{variant}: annealed Langevin, {cfg.noise.levels} levels, "
            f"{cfg.sampling.steps_per_level} steps each",
        )
