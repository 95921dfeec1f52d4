"""Sample panels for figures: hard samples one row per class, soft samples as interpolation strips.

Pure tensor layout (pipeline.figures draws them); used by the evaluate stages.
"""

from __future__ import annotations

from collections import Counter

import torch

from pipeline.samples import SampleSet, two_class_mixtures


def class_rows(samples: SampleSet, per_class: int) -> tuple[torch.Tensor, list[str]]:
    """Hard samples laid out one row per class, `per_class` columns, mid-grey where missing.

    Returns uint8 (K * per_class, C, H, W) images (row-major) and the row labels.
    """
    k = len(samples.class_names)
    _, c, h, w = samples.images.shape
    out = torch.full((k * per_class, c, h, w), 128, dtype=torch.uint8)
    hard_labels = torch.where(samples.hard, samples.labels, torch.full_like(samples.labels, -1))
    for cls in range(k):
        idx = torch.nonzero(hard_labels == cls).flatten()[:per_class]
        out[cls * per_class : cls * per_class + len(idx)] = samples.images[idx]
    return out, list(samples.class_names)


def interpolation_strips(
    samples: SampleSet, probs: torch.Tensor, max_pairs: int, per_strip: int
) -> list[tuple[str, torch.Tensor, list[str]]]:
    """Soft samples of the most frequent class pairs (i, j), sorted by the weight lambda of i.

    Each caption gives lambda and the judge's relative probability p(i) / (p(i) + p(j)).
    `probs` are the judge's (N, K) probabilities for all of `samples`.
    """
    rows, i, j, lam = two_class_mixtures(samples.targets)
    counts = Counter(zip(i.tolist(), j.tolist(), strict=True))
    strips = []
    for (a, b), _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max_pairs]:
        sel = torch.nonzero((i == a) & (j == b)).flatten()
        sel = sel[torch.argsort(lam[sel], stable=True)]
        if len(sel) > per_strip:  # evenly spread over the lambda range
            sel = sel[torch.linspace(0, len(sel) - 1, per_strip).round().long()]
        p = probs[rows[sel]]
        rel = p[:, a] / (p[:, a] + p[:, b]).clamp_min(1e-300)
        captions = [
            f"λ={x:.2f}\np={y:.2f}" for x, y in zip(lam[sel].tolist(), rel.tolist(), strict=True)
        ]
        names = samples.class_names
        strips.append((f"{names[a]}|{names[b]}", samples.images[rows[sel]], captions))
    return strips


def neighbour_pairs(
    shown: torch.Tensor, neighbours: torch.Tensor, train_images: torch.Tensor
) -> torch.Tensor:
    """Two rows: samples (uint8 (n, C, H, W)) above their nearest training images."""
    return torch.cat([shown, train_images[neighbours]])
