"""The one interface between generation methods and evaluation: a sample set with intent.

Every method (STIC rounds, AC-GAN, ReGene, Wang & Torr, SGLD) writes a `SampleSet`; evaluation
reads only this. `targets` is the label distribution each sample was generated for over the K real
classes: one-hot for a hard target, a convex mix for a soft one; `labels` is its argmax.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from pipeline.errors import DataError
from pipeline.io import atomic_torch_save


@dataclass(frozen=True)
class SampleSet:
    images: torch.Tensor  # (N, C, H, W) uint8
    targets: torch.Tensor  # (N, K) float32, rows sum to 1
    method: str
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise DataError("SampleSet.images must be uint8 (N, C, H, W)")
        if self.targets.shape != (self.images.shape[0], len(self.class_names)):
            raise DataError(
                f"SampleSet.targets must be (N, K) = ({self.images.shape[0]}, "
                f"{len(self.class_names)}), got {tuple(self.targets.shape)}"
            )
        if not torch.allclose(self.targets.sum(1), torch.ones(len(self.targets)), atol=1e-4):
            raise DataError("SampleSet.targets rows must sum to 1")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def labels(self) -> torch.Tensor:
        """(N,) intended class: the argmax of each target."""
        return self.targets.argmax(1)

    @property
    def hard(self) -> torch.Tensor:
        """(N,) bool: True where the target is one-hot."""
        return self.targets.max(1).values > 1 - 1e-6

    def subset(self, index: torch.Tensor) -> SampleSet:
        return SampleSet(self.images[index], self.targets[index], self.method, self.class_names)


def save_samples(samples: SampleSet, path: Path) -> None:
    atomic_torch_save(
        {
            "images": samples.images,
            "targets": samples.targets,
            "method": samples.method,
            "class_names": list(samples.class_names),
        },
        Path(path),
    )


def load_samples(path: Path) -> SampleSet:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: sample file not found; run the stage that writes it first")
    p = torch.load(path, map_location="cpu", weights_only=True)
    return SampleSet(p["images"], p["targets"].float(), p["method"], tuple(p["class_names"]))


def two_class_mixtures(
    targets: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows of (N, K) `targets` mixing exactly two classes: (row, i, j, weight of i), i < j."""
    nonzero = targets > 1e-6
    rows = torch.nonzero(nonzero.sum(1) == 2).flatten()
    pairs = torch.nonzero(nonzero[rows])[:, 1].view(-1, 2)  # (R, 2), column indices ascending
    i, j = pairs[:, 0], pairs[:, 1]
    return rows, i, j, targets[rows, i]


def class_labels(num_classes: int, per_class: int) -> torch.Tensor:
    """(K * n,) labels grouped by class, [0]*n + [1]*n + ...: a grid of them has a row per class."""
    return torch.arange(num_classes).repeat_interleave(per_class)


def hard_targets(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(N,) class indices -> (N, K) one-hot float targets."""
    return torch.nn.functional.one_hot(labels, num_classes).float()


NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


def check_name(name: str, key: str) -> None:
    """Sample-set names become file names and DVC stage keys: lower-case letters, digits, '_'."""
    from pipeline.errors import ConfigError

    if not name or not name[0].isalpha() or any(ch not in NAME_CHARS for ch in name):
        raise ConfigError(f"{key}: '{name}' must be lower-case letters, digits and '_' only")
