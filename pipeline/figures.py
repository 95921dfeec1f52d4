"""Matplotlib figures (PNG, written atomically, no timestamp metadata so bytes are reproducible)."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

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
    fig.suptitle(textwrap.fill(title, width=int(11 * size[0])), fontsize=8)
    fig.tight_layout()
    atomic_save_figure(fig, path)
    plt.close(fig)


@dataclass(frozen=True)
class Point:
    """A value with its 95% interval (nan bounds: none); None values are not drawn."""

    value: float | None
    lo: float = math.nan
    hi: float = math.nan


@dataclass(frozen=True)
class Panel:
    """One metric: its points (one per x), the axis it lives on, and reference lines."""

    title: str
    points: Sequence[Point]
    scale: Literal["log", "unit", "linear"]  # unit: the whole [0, 1] range, nothing zoomed
    references: Sequence[tuple[str, float, str]] = ()  # (label, value, matplotlib colour)
    band: tuple[float, float] | None = None  # a shaded range (e.g. chance's interval)


def _errorbars(points: Sequence[Point]) -> tuple[list[float], list[list[float]]]:
    """Values and their (below, above) error-bar lengths for matplotlib (0: no interval)."""

    def half(p: Point, bound: float, sign: float) -> float:
        if p.value is None or math.isnan(bound):
            return 0.0
        return max(0.0, sign * (bound - p.value))

    ys = [math.nan if p.value is None else p.value for p in points]
    return ys, [[half(p, p.lo, -1) for p in points], [half(p, p.hi, 1) for p in points]]


def save_round_panels(
    rounds: Sequence[str], panels: Sequence[Panel], path: Path, title: str
) -> None:
    """One plot per metric across rounds, with 95% error bars, reference lines (the null
    sampler, JEM, the real-data floor, chance) and an honest axis: proportions on [0, 1], FID on
    a log axis."""
    if not rounds or not panels:
        save_placeholder(path, "no rounds listed", title)
        return
    cols = min(2, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.0 * rows), squeeze=False)
    xs = list(range(len(rounds)))
    for k, panel in enumerate(panels):
        ax = axes[k // cols][k % cols]
        ys, err = _errorbars(panel.points)
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, color="black", label="STIC")
        if panel.band is not None:
            ax.axhspan(*panel.band, color="grey", alpha=0.2, label="chance (95%)")
        for label, value, colour in panel.references:
            ax.axhline(value, ls="--", lw=1, color=colour, label=label)
        if panel.scale == "log":
            ax.set_yscale("log")
        elif panel.scale == "unit":
            ax.set_ylim(-0.02, 1.02)
        ax.set_xticks(xs, list(rounds))
        ax.set_title(panel.title, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="best")
    for k in range(len(panels), rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    atomic_save_figure(fig, path)
    plt.close(fig)


@dataclass(frozen=True)
class MethodMark:
    """One sample set in the method comparison."""

    label: str
    fid: Point
    discriminability: Point
    kind: Literal["method", "null", "real"]


def save_method_comparison(
    marks: Sequence[MethodMark], chance: tuple[float, float, float], path: Path, title: str
) -> None:
    """Judge-FID (log axis) and discriminability ([0, 1]) of every set, with 95% intervals; the
    real-data floor as a line, the null samplers in grey, chance (1/K and its interval) shaded.
    `chance`: (1/K, lo, hi)."""
    if not marks:
        save_placeholder(path, "no sample sets", title)
        return
    colours = {"method": "black", "null": "grey", "real": "tab:green"}
    ys = list(range(len(marks)))[::-1]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.5, 0.32 * len(marks) + 1.4), sharey=True)
    for ax, attr in ((left, "fid"), (right, "discriminability")):
        for y, m in zip(ys, marks, strict=True):
            pt: Point = getattr(m, attr)
            if pt.value is None:
                continue
            xs, err = _errorbars([pt])
            ax.errorbar(xs, [y], xerr=err, fmt="o", ms=4, capsize=2, color=colours[m.kind])
        real = next((getattr(m, attr).value for m in marks if m.kind == "real"), None)
        if real is not None:
            ax.axvline(real, ls="--", lw=1, color="tab:green", label="real data (floor)")
        ax.grid(alpha=0.3, axis="x")
    left.set_xscale("log")
    left.set_xlabel("judge-FID (log axis) ↓", fontsize=8)
    right.axvspan(chance[1], chance[2], color="grey", alpha=0.2, label="chance (95%)")
    right.axvline(chance[0], ls=":", lw=1, color="grey")
    right.set_xlim(-0.02, 1.02)
    right.set_xlabel("discriminability ↑", fontsize=8)
    left.set_yticks(ys, [m.label for m in marks], fontsize=7)
    for ax in (left, right):
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="lower right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    atomic_save_figure(fig, path)
    plt.close(fig)


def save_overview(rows: Sequence[tuple[str, torch.Tensor]], path: Path, title: str) -> None:
    """A strip of thumbnails per set: (label, uint8 (n, C, H, W) images, e.g. one per class)."""
    if not rows:
        save_placeholder(path, "no sample sets", title)
        return
    cols = max(len(images) for _, images in rows)
    fig, axes = plt.subplots(len(rows), 1, figsize=(0.42 * cols + 1.8, 0.5 * len(rows) + 0.5),
                             squeeze=False)  # fmt: skip
    for (label, images), (ax,) in zip(rows, axes, strict=True):
        grid = image_grid(images, 1)
        ax.imshow(grid.squeeze(-1) if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0,
                  vmax=255, interpolation="nearest")  # fmt: skip
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    atomic_save_figure(fig, path)
    plt.close(fig)
