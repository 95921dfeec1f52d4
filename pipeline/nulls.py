"""Null samplers: a method's evaluation sampler with the gradient of its target zeroed
(pipeline.references explains what they are for). Each method with a sampler of its own draws its
null set itself (its module's `null_set`, pipeline.methods): a null draws exactly as its method."""

from __future__ import annotations

from typing import Any

import torch

from pipeline.data import ImageSet
from pipeline.methods import BY_NAME, SAMPLER_SOURCES
from pipeline.samples import SampleSet

# source method -> its section's config class (what the null stage loads)
SOURCES: dict[str, type] = {name: BY_NAME[name].config_class() for name in SAMPLER_SOURCES}


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
    draw = BY_NAME[source].hook("null_set")
    return draw(cfg, data, gen_targets, gen_chains, name=name, device=device)
