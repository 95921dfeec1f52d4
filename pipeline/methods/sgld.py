"""Classifier + SGLD: JEM's sampler on an ordinary classifier with no generative training (the
control every classifier-based method must beat; docs/methods.md#classifier-sgld-control, Wang &
Torr's "adversarial-attack-like" generation).

It draws exactly as the JEM row is evaluated (`pipeline.chains.draw_fresh`: fresh chains from the
canvas, the same sampler and number of steps) but on a classifier trained only on real data, so
the difference between the two rows is what JEM's training adds.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.chains import Drawing
from pipeline.errors import ConfigError
from pipeline.eval_sets import EvalChainsConfig

NAME = "sgld"


@dataclass(frozen=True)
class SGLDControlConfig:
    round: str  # the classifier it samples (r0: the baseline, trained on real images only)
    drawing: Drawing  # JEM's SGLD (eps = T = 5e-5, no MH, clamped box) on the class logit
    eval: EvalChainsConfig

    def validate(self) -> None:
        if self.eval.eps_start != "initial":
            raise ConfigError(
                "eval.eps_start: the control has no training chains to learn a step size from; "
                "set initial"
            )
