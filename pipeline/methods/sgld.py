"""Classifier + SGLD: JEM's sampler on an ordinary classifier with no generative training (the
control every classifier-based method must beat; docs/methods.md#classifier-sgld-control, Wang &
Torr's "adversarial-attack-like" generation).

It draws exactly as the JEM row is evaluated (`pipeline.chains.draw_fresh`: fresh chains from the
canvas, the same sampler and number of steps) but on a classifier trained only on real data, so
the difference between the two rows is what JEM's training adds.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.chains import ChainsConfig, Drawing
from pipeline.samplers import SamplerConfig
from pipeline.train import LossConfig

NAME = "sgld"


@dataclass(frozen=True)
class SGLDControlConfig:
    """The control draws exactly as JEM's evaluation does (jem.sampler, jem.chains.canvas,
    jem.eval: one source for both), on a classifier it names; only the classifier is its own."""

    round: str  # the classifier it samples (r0: the baseline, trained on real images only)

    # what the parameter gate asks of every method (pipeline.methods); its hard samples are
    # jem.eval's
    def sample_sets(self) -> list[str]:
        return [NAME]

    def hard_counts(self) -> dict[str, int]:
        return {}

    def models(self) -> dict:
        return {}


def drawing(sampler: SamplerConfig, loss: LossConfig, chains: ChainsConfig) -> Drawing:
    """JEM's evaluation draw (the target its loss shapes, its sampler, canvas and soft mixes),
    which the control draws with (`pipeline.chains.ChainTraining.drawing` for JEM itself)."""
    return Drawing(sampler, loss.class_term, chains.canvas, chains.soft_classes, chains.soft_alpha)
