"""Reference sample sets: what chance and a trivial generator score, beside every metric.

- Null samplers (`pipeline.nulls`): a classifier sampler with its gradient zeroed (a flat target)
  run exactly as the method's evaluation is (same canvas, sampler, steps and counts). Whatever
  they score is what the canvas and the sampler's noise alone score: chance for
  discriminability and the floor a method's sampler must clear before its classifier can take
  any credit.
- Real pixel-mixup: lambda x_i + (1 - lambda) x_j of held-out real images of two classes, with
  target lambda e_i + (1 - lambda) e_j: the interpolation error of literally blending real
  pixels, the reference a generator's soft samples are read against.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pipeline.data import ImageSet, to_uint8
from pipeline.draws import dirichlet, distinct_choices
from pipeline.errors import ConfigError
from pipeline.samples import SampleSet

NullSource = str  # a method with an evaluation sampler of its own (pipeline.methods)
REAL_MIXUP = "real_mixup"


@dataclass(frozen=True)
class RealMixupConfig:
    soft: int  # two-class mixes in all
    alpha: float  # lambda ~ Beta(alpha, alpha) (a two-class Dirichlet)

    def validate(self) -> None:
        if self.soft < 1 or self.alpha <= 0:
            raise ConfigError("soft: must be at least 1 and alpha positive")


@dataclass(frozen=True)
class ReferencesConfig:
    nulls: dict[str, NullSource]  # sample-set name -> the method whose sampler runs without f
    real_mixup: RealMixupConfig

    def names(self) -> list[str]:
        return [*self.nulls, REAL_MIXUP]


def real_mixup(data: ImageSet, cfg: RealMixupConfig, gen: torch.Generator) -> SampleSet:
    """`cfg.soft` pixel mixes of two real images of two distinct random classes."""
    k = data.num_classes
    pairs = distinct_choices(cfg.soft, k, 2, gen)  # (n, 2) classes
    lam = dirichlet(cfg.alpha, cfg.soft, 2, gen)  # (n, 2) weights
    by_class = [torch.nonzero(data.labels == c).flatten() for c in range(k)]
    pick = torch.stack(
        [
            torch.stack(
                [by_class[c][torch.randint(len(by_class[c]), (1,), generator=gen)[0]] for c in row]
            )
            for row in pairs.tolist()
        ]
    )  # (n, 2) image indices
    x = data.float_images()[pick]  # (n, 2, C, H, W)
    mixed = (lam[:, :, None, None, None] * x).sum(1)
    targets = torch.zeros(cfg.soft, k).scatter_(1, pairs, lam)
    return SampleSet(to_uint8(mixed), targets, REAL_MIXUP, data.class_names)
