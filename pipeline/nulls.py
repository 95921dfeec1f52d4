"""Null samplers: a method's evaluation sampler with the gradient of its target zeroed
(pipeline.references explains what they are for)."""

from __future__ import annotations

import torch

from pipeline.chains import ChainTraining
from pipeline.data import ImageSet, to_uint8
from pipeline.eval_sets import evaluation_set
from pipeline.methods.jem import JEMConfig
from pipeline.methods.score import ScoreStiCConfig, evaluation_draw
from pipeline.methods.stic import StiCConfig
from pipeline.references import NullSource
from pipeline.samplers import initial_log_eps
from pipeline.samples import SampleSet

SOURCES: dict[str, type] = {"stic": StiCConfig, "jem": JEMConfig, "score_stic": ScoreStiCConfig}


def null_set(
    source: NullSource,
    cfg: StiCConfig | JEMConfig | ScoreStiCConfig,
    data: ImageSet,
    gen_targets: torch.Generator,
    gen_chains: torch.Generator,
    *,
    name: str,
    device: torch.device,
) -> tuple[SampleSet, dict[str, float | None]]:
    """`source`'s evaluation sampler with its gradient zeroed: the same canvas, sampler, steps and
    targets as the method's own set, from each chain's initial step size."""
    if isinstance(cfg, ScoreStiCConfig):  # Score-STIC's own draw, on a flat target
        targets, run = evaluation_draw(None, cfg, data, gen_targets, gen_chains, device=device)
        samples = SampleSet(to_uint8(run.x), targets, name, data.class_names)
        return samples, {"acceptance_rate": run.trace.summary()["acceptance_rate"]}
    if isinstance(cfg, StiCConfig):
        drawing = ChainTraining(cfg.train, cfg.loss, cfg.chains, cfg.sampler).drawing
    else:
        drawing = cfg.setting.drawing
    samples, metrics, _ = evaluation_set(
        None, data, drawing, cfg.eval, initial_log_eps(drawing.sampler, data.num_classes),
        gen_targets, gen_chains, method=name, device=device, where=name,
    )  # fmt: skip
    return samples, metrics
