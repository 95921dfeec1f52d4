"""Null samplers: a method's evaluation sampler with the gradient of its target zeroed
(pipeline.references explains what they are for). Each method with a sampler of its own draws its
null set itself (its module's `null_set`, pipeline.methods): a null draws exactly as its method."""

from __future__ import annotations

from typing import Any

import torch

from pipeline.data import ImageSet
from pipeline.methods import jem, score, stic
from pipeline.samples import SampleSet

# source method -> its section's config class (what the null stage loads) and its module: the
# methods with an evaluation sampler of their own (pipeline.methods.SAMPLER_SOURCES; a test checks
# they agree), imported here so that the stage graph sees every sampler a null stage runs
SOURCES: dict[str, type] = {
    "stic": stic.StiCConfig,
    "jem": jem.JEMConfig,
    "score_stic": score.ScoreStiCConfig,
}
_DRAW = {"stic": stic.null_set, "jem": jem.null_set, "score_stic": score.null_set}


def null_set(
    source: str,
    cfg: Any,
    data: ImageSet,
    gen_targets: torch.Generator,
    gen_chains: torch.Generator,
    *,
    name: str,
    device: torch.device,
) -> tuple[SampleSet, dict[str, float | None]]:
    """`source`'s evaluation sampler on a flat target: the same canvas, sampler, steps and
    targets as the method's own set, from each chain's initial step size."""
    return _DRAW[source](cfg, data, gen_targets, gen_chains, name=name, device=device)
