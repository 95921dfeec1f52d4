"""The generation test's calibration ladder: real held-out images degraded step by step, each rung
measured exactly as a sample set is (pipeline.evaluation), so that the numbers a method's samples
get can be read against images whose class is known to be recognisable, or known not to be.

Three degradations at increasing strength, each applied in [-1, 1] pixel space:
- blur: a Gaussian of standard deviation `strength` pixels (reflected borders), which keeps the
  class longest and removes the strokes' edges;
- noise: additive Gaussian noise of standard deviation `strength` (the pixel range is 2), clipped;
- shuffle: a share `strength` of each image's pixel positions permuted among themselves, which
  keeps every pixel value (the intensity histogram) and destroys the shape; at 1 the image is its
  histogram in random places.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from pipeline.data import to_float, to_uint8
from pipeline.errors import ConfigError

Kind = Literal["blur", "noise", "shuffle"]
KINDS: tuple[Kind, ...] = ("blur", "noise", "shuffle")


@dataclass(frozen=True)
class LadderConfig:
    """params.yaml `eval.ladder`: the strengths of each degradation, weakest first."""

    blur: tuple[float, ...]  # Gaussian blur, standard deviation in pixels
    noise: tuple[float, ...]  # additive Gaussian noise, standard deviation (pixel range 2)
    shuffle: tuple[float, ...]  # share of each image's pixel positions permuted, in (0, 1]

    def validate(self) -> None:
        for kind in KINDS:
            values = getattr(self, kind)
            if any(not math.isfinite(v) or v <= 0 for v in values):
                raise ConfigError(f"{kind}: strengths must be positive numbers, got {values}")
            if list(values) != sorted(values):
                raise ConfigError(f"{kind}: strengths must rise, weakest first, got {values}")
        if any(v > 1 for v in self.shuffle):
            raise ConfigError(f"shuffle: a share of the pixels, at most 1, got {self.shuffle}")

    def rungs(self) -> list[tuple[str, Kind, float]]:
        """(name, kind, strength) of every rung, e.g. ("blur_1.5", "blur", 1.5)."""
        return [(f"{kind}_{v:g}", kind, v) for kind in KINDS for v in getattr(self, kind)]


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of float images (N, C, H, W), kernel radius ceil(3 sigma), borders
    reflected (the radius is cut to fit the image)."""
    radius = max(1, min(math.ceil(3 * sigma), min(x.shape[-2:]) - 1))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    kernel = torch.exp(-(t**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    out = F.pad(x, (radius, radius, 0, 0), mode="reflect")
    out = F.conv2d(out, kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    out = F.pad(out, (0, 0, radius, radius), mode="reflect")
    return F.conv2d(out, kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def shuffle_pixels(x: torch.Tensor, share: float, gen: torch.Generator) -> torch.Tensor:
    """Each image with `share` of its pixel positions (all channels together) permuted among
    themselves, a new choice and permutation per image."""
    n, c, h, w = x.shape
    flat = x.reshape(n, c, h * w).clone()
    k = max(2, round(share * h * w))
    for i in range(n):
        picked = torch.randperm(h * w, generator=gen)[:k]
        flat[i][:, picked] = flat[i][:, picked[torch.randperm(k, generator=gen)]]
    return flat.reshape(n, c, h, w)


def degrade(images: torch.Tensor, kind: Kind, strength: float, seed: int) -> torch.Tensor:
    """uint8 images (N, C, H, W) degraded by `kind` at `strength` (module docstring)."""
    x = to_float(images)
    gen = torch.Generator().manual_seed(seed)
    if kind == "blur":
        x = gaussian_blur(x, strength)
    elif kind == "noise":
        x = x + strength * torch.randn(x.shape, generator=gen, dtype=x.dtype)
    elif kind == "shuffle":
        x = shuffle_pixels(x, strength, gen)
    else:
        raise ValueError(f"unknown degradation {kind!r}")
    return to_uint8(x.clamp(-1, 1))
