"""Matplotlib figures (PNG, written atomically, no timestamp metadata so bytes are reproducible)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from pipeline.io import atomic_save_figure  # noqa: E402


def image_grid(images: torch.Tensor, rows: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> uint8 (rows*H, cols*W, C) grid, filled row by row, 1-px gaps."""
    n, c, h, w = images.shape
    cols = -(-n // rows)
    grid = torch.full((c, rows * (h + 1) - 1, cols * (w + 1) - 1), 255, dtype=torch.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        grid[:, r * (h + 1) : r * (h + 1) + h, q * (w + 1) : q * (w + 1) + w] = images[i]
    return grid.permute(1, 2, 0)


def save_grid(
    images: torch.Tensor,
    path: Path,
    rows: int,
    title: str = "",
    row_labels: Sequence[str] | None = None,
) -> None:
    """Save a sample grid; one row per class when `row_labels` are the class names."""
    if len(images) == 0:
        save_placeholder(path, "no hard samples", title)
        return
    grid = image_grid(images, rows)
    fig, ax = plt.subplots(figsize=(max(3.0, grid.shape[1] / 12), max(3.0, grid.shape[0] / 12)))
    ax.imshow(
        grid.squeeze(-1) if grid.shape[-1] == 1 else grid,
        cmap="gray",
        vmin=0,
        vmax=255,
        interpolation="nearest",
    )
    ax.set_xticks([])
    if row_labels:
        h = images.shape[2] + 1
        ax.set_yticks([i * h + h / 2 for i in range(len(row_labels))], list(row_labels))
    else:
        ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    atomic_save_figure(fig, path)
    plt.close(fig)


def save_curves(
    history: Sequence[Mapping[str, float]], keys: Sequence[str], path: Path, title: str
) -> None:
    """Line plot of per-epoch metrics `keys` from a training history."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for key in keys:
        ys = [row[key] for row in history if key in row]
        if ys:
            ax.plot(range(1, len(ys) + 1), ys, marker=".", label=key)
    ax.set_xlabel("epoch")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_save_figure(fig, path)
    plt.close(fig)


def save_placeholder(path: Path, text: str, title: str = "") -> None:
    """A small figure that only says `text` (e.g. "no soft samples"), so declared plots exist."""
    fig, ax = plt.subplots(figsize=(4, 1.2))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=9)
    ax.set_title(title, fontsize=9)
    atomic_save_figure(fig, path)
    plt.close(fig)


def save_strips(
    strips: Sequence[tuple[str, torch.Tensor, Sequence[str]]], path: Path, title: str = ""
) -> None:
    """One row per strip: (row label, uint8 (n, C, H, W) images, one caption per image)."""
    if not strips:
        save_placeholder(path, "no two-class soft samples", title)
        return
    cols = max(len(images) for _, images, _ in strips)
    size = (0.8 * cols + 0.6, 0.95 * len(strips) + 0.4)
    fig, axes = plt.subplots(len(strips), cols, figsize=size, squeeze=False)
    for r, (label, images, captions) in enumerate(strips):
        for q in range(cols):
            ax = axes[r][q]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if q < len(images):
                img = images[q].permute(1, 2, 0)
                ax.imshow(
                    img.squeeze(-1) if img.shape[-1] == 1 else img,
                    cmap="gray",
                    vmin=0,
                    vmax=255,
                    interpolation="nearest",
                )
                ax.set_xlabel(captions[q], fontsize=5)
        axes[r][0].set_ylabel(label, fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    atomic_save_figure(fig, path)
    plt.close(fig)


def save_round_lines(
    rounds: Sequence[str], series: Mapping[str, Sequence[float | None]], path: Path, title: str
) -> None:
    """One small line plot per metric across rounds (missing values are gaps)."""
    if not rounds or not series:
        save_placeholder(path, "no rounds listed", title)
        return
    n = len(series)
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    xs = list(range(len(rounds)))
    for k, (name, ys) in enumerate(series.items()):
        ax = axes[k // cols][k % cols]
        ax.plot(xs, [float("nan") if y is None else y for y in ys], marker="o")
        ax.set_xticks(xs, list(rounds))
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for k in range(n, rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    atomic_save_figure(fig, path)
    plt.close(fig)
