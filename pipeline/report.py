"""The report: tables and figures from evaluation results, rendered as Markdown and as one
self-contained HTML page (images embedded as base64; `dvc plots show` needs a CDN).

Everything here works on values handed in (entries, paths, bytes); nothing reads params.yaml or
globs a folder: the stage passes exactly the rounds and methods that the parameters list.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pipeline import metrics as M

Kind = Literal["round", "method", "real"]
MISSING = "–"  # shown where a metric does not apply or was not computed


@dataclass(frozen=True)
class Entry:
    """One evaluated sample set (a STIC round, another method, or the real-data floor)."""

    name: str  # r1, acgan, real
    kind: Kind
    metrics: Mapping[str, Any]  # the evaluate stage's JSON
    accuracy: float | None = None  # real-test accuracy of the method's classifier, where it has one
    seconds_per_sample: float | None = None
    eval_seconds: float | None = None
    sampler: str | None = None  # rounds: the classifier that drew the samples (rounds[key].prev)
    figures: tuple[Path, ...] = field(default_factory=tuple)  # sample grid, interpolation strips


@dataclass(frozen=True)
class Reference:
    """A published number, shown only where dataset and metric match ours."""

    method: str
    dataset: str
    key: str  # metric key in our results (Inception-based only)
    value: float
    std: float | None
    source: str


PUBLISHED: tuple[Reference, ...] = (
    # Odena, Olah, Shlens 2017 (AC-GAN), Table 1: CIFAR-10 Inception Score
    Reference("acgan", "cifar10", M.INCEPTION_IS, 8.25, 0.07, "Odena et al. 2017, Table 1"),
)


# ----------------------------------------------------------------- pure helpers


def chain_order(rounds: Mapping[str, str]) -> list[str]:
    """Round keys in chain order from r0 ({r2: r1, r1: r0} -> [r1, r2]); unlinked ones last."""
    order, current = [], "r0"
    children = {prev: key for key, prev in rounds.items()}
    while current in children and children[current] not in order:
        current = children[current]
        order.append(current)
    return order + [k for k in rounds if k not in order]


def fmt(value: Any, digits: int = 3, std: Any = None) -> str:
    if value is None or isinstance(value, str):
        return MISSING
    text = f"{value:.{digits}f}"
    return f"{text} ± {std:.{digits}f}" if isinstance(std, int | float) else text


def fmt_seconds(value: float | None) -> str:
    return MISSING if value is None else f"{value:.3g}"


# (header, cell) for the method table and the per-round table
Column = tuple[str, Callable[[Entry], str]]

METRIC_COLUMNS: tuple[Column, ...] = (
    ("judge-FID ↓", lambda e: fmt(e.metrics.get(M.JUDGE_FID), 2)),
    ("judge-KID ↓", lambda e: fmt(e.metrics.get(M.JUDGE_KID), 3, e.metrics.get(M.JUDGE_KID_STD))),
    ("judge-IS ↑", lambda e: fmt(e.metrics.get(M.JUDGE_IS), 2, e.metrics.get(M.JUDGE_IS_STD))),
    ("precision ↑", lambda e: fmt(e.metrics.get(M.PRECISION))),
    ("recall ↑", lambda e: fmt(e.metrics.get(M.RECALL))),
    ("discriminability ↑", lambda e: fmt(e.metrics.get(M.DISCRIMINABILITY))),
    ("MS-SSIM ↓", lambda e: fmt(e.metrics.get(M.DIVERSITY))),
    ("diverse classes ↑", lambda e: fmt(e.metrics.get(M.DIVERSE_FRACTION), 2)),
    ("interp. error ↓", lambda e: fmt(e.metrics.get(M.INTERPOLATION_ERROR))),
)

INCEPTION_COLUMNS: tuple[Column, ...] = (
    ("Inception-FID ↓", lambda e: fmt(e.metrics.get(M.INCEPTION_FID), 2)),
    ("Inception-KID ↓", lambda e: fmt(e.metrics.get(M.INCEPTION_KID), 4)),
    (
        "Inception-IS ↑",
        lambda e: fmt(e.metrics.get(M.INCEPTION_IS), 2, e.metrics.get(M.INCEPTION_IS_STD)),
    ),
)


def _label(e: Entry) -> str:
    if e.kind == "real":
        return "real data (floor: test vs train)"
    if e.kind == "round":
        return f"STIC {e.name} (fakes by {e.sampler})" if e.sampler else f"STIC {e.name}"
    return e.name


def inception_computed(entries: Sequence[Entry]) -> bool:
    return any(e.metrics.get(M.INCEPTION_STATUS) == "computed" for e in entries)


def method_table(entries: Sequence[Entry]) -> tuple[list[str], list[list[str]]]:
    cols = METRIC_COLUMNS + (INCEPTION_COLUMNS if inception_computed(entries) else ())
    headers = [
        "method",
        "real-test acc. ↑",
        *[h for h, _ in cols],
        "s / sample",
        "n (hard/soft)",
        "eval s",
    ]
    rows = []
    for e in entries:
        n = f"{e.metrics.get(M.NUM_HARD, 0)}/{e.metrics.get(M.NUM_SOFT, 0)}"
        rows.append(
            [
                _label(e),
                fmt(e.accuracy),
                *[cell(e) for _, cell in cols],
                fmt_seconds(e.seconds_per_sample),
                n,
                fmt_seconds(e.eval_seconds),
            ]
        )
    return headers, rows


def round_table(
    r0_accuracy: float | None, rounds: Sequence[Entry]
) -> tuple[list[str], list[list[str]]]:
    """Classifier accuracy per round; sample metrics of the fakes each round trains on."""
    headers = [
        "round",
        "classifier test acc. ↑",
        "fakes drawn by",
        *[h for h, _ in METRIC_COLUMNS],
        "s / sample",
    ]
    rows = [["r0 (baseline)", fmt(r0_accuracy), MISSING, *[MISSING] * len(METRIC_COLUMNS), MISSING]]
    for e in rounds:
        rows.append(
            [
                e.name,
                fmt(e.accuracy),
                e.sampler or MISSING,
                *[cell(e) for _, cell in METRIC_COLUMNS],
                fmt_seconds(e.seconds_per_sample),
            ]
        )
    return headers, rows


ROUND_SERIES = (
    ("classifier test accuracy", None),
    ("judge-FID (fakes)", M.JUDGE_FID),
    ("judge-IS (fakes)", M.JUDGE_IS),
    ("precision (fakes)", M.PRECISION),
    ("recall (fakes)", M.RECALL),
    ("discriminability (fakes)", M.DISCRIMINABILITY),
    ("MS-SSIM (fakes)", M.DIVERSITY),
    ("interpolation error", M.INTERPOLATION_ERROR),
)


def round_series(
    r0_accuracy: float | None, rounds: Sequence[Entry]
) -> tuple[list[str], dict[str, list[float | None]]]:
    """x labels (r0, r1, ...) and one series per metric for the line plots across rounds."""
    xs = ["r0", *[e.name for e in rounds]]
    series: dict[str, list[float | None]] = {}
    for title, key in ROUND_SERIES:
        if key is None:
            series[title] = [r0_accuracy, *[e.accuracy for e in rounds]]
        else:
            series[title] = [None, *[e.metrics.get(key) for e in rounds]]
    return xs, series


def published_table(
    dataset: str, entries: Sequence[Entry]
) -> tuple[list[str], list[list[str]]] | None:
    """Published numbers beside ours, only where dataset and (Inception) metric match."""
    rows = []
    for ref in PUBLISHED:
        for e in entries:
            ours = e.metrics.get(ref.key)
            if e.name == ref.method and ref.dataset == dataset and isinstance(ours, int | float):
                rows.append(
                    [
                        ref.method,
                        ref.dataset,
                        ref.key,
                        fmt(ref.value, 2, ref.std),
                        fmt(ours, 2),
                        ref.source,
                    ]
                )
    if not rows:
        return None
    return ["method", "dataset", "metric", "published", "ours", "source"], rows


# ----------------------------------------------------------------- document model and rendering

Block = tuple  # ("h1" | "h2" | "p", text) | ("table", headers, rows) | ("img", path, caption)

JUDGE_NOTE = (
    "Judge-based numbers (judge-FID, judge-KID, judge-IS, precision, recall, discriminability, "
    "interpolation error) use the judge: a classifier trained separately on the real training "
    "split, never used for synthesis; FID/KID/precision/recall use its penultimate features and "
    "the IS analogue its class probabilities, all computed by torch-fidelity through a custom "
    "feature extractor. They are comparable across the rows of this report only, never with "
    "published Inception-based numbers. Inception-based FID/KID/IS are computed only when a local "
    "Inception-v3 weights file is given (eval.inception_weights), and only those are ever placed "
    "beside published numbers. MS-SSIM (pytorch_msssim, five scales, 3-tap window on images "
    "upsampled to pass its size check) is measured on the images themselves; noise-like samples "
    "score as very diverse, so read it together with judge-FID and precision."
)


def report_blocks(
    dataset: str,
    entries: Sequence[Entry],
    rounds: Sequence[Entry],
    r0_accuracy: float | None,
    rounds_figure: Path | None,
) -> list[Block]:
    """The report's content; `entries` are the table rows in order (rounds, methods, real)."""
    blocks: list[Block] = [("h1", f"Classifiers as generators: evaluation report ({dataset})")]
    real = next((e for e in entries if e.kind == "real"), None)
    blocks.append(
        (
            "p",
            "Rows: every STIC round and every method listed in params.yaml (rounds, "
            "eval.methods) and the real-data floor: held-out real test images measured "
            "against the training images at the same sample cap, i.e. what a perfect "
            "generator would score here. ↑/↓: higher/lower is better. Fidelity, "
            "discriminability and diversity use hard samples (one-hot targets); the "
            "interpolation error uses two-class soft samples.",
        )
    )
    blocks.append(("h2", "Method table"))
    blocks.append(("table", *method_table(entries)))
    if real is not None:
        status = real.metrics.get(M.INCEPTION_STATUS)
        blocks.append(("p", f"Inception-based metrics: {status}."))
    blocks.append(("h2", "Judge-based vs Inception-based numbers"))
    blocks.append(("p", JUDGE_NOTE))
    pub = published_table(dataset, entries)
    if pub is None:
        blocks.append(
            (
                "p",
                f"Published numbers: none shown. They exist for other datasets "
                f"(e.g. AC-GAN's CIFAR-10 Inception Score 8.25 ± 0.07) and are shown "
                f"only when the dataset is the same (here: {dataset}) and "
                f"Inception-based metrics were computed.",
            )
        )
    else:
        blocks.append(("table", *pub))
    blocks.append(("h2", "STIC rounds"))
    if rounds:
        blocks.append(
            (
                "p",
                "Round rK's classifier is trained on the fakes listed in its row, "
                "which were drawn by the previous round's classifier.",
            )
        )
        blocks.append(("table", *round_table(r0_accuracy, rounds)))
        if rounds_figure is not None:
            blocks.append(("img", rounds_figure, "Metrics across rounds"))
    else:
        blocks.append(("p", "No rounds are listed in params.yaml."))
    blocks.append(("h2", "Samples"))
    for e in entries:
        for path in e.figures:
            blocks.append(("img", path, _label(e)))
    return blocks


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(blocks: Sequence[Block], base: Path) -> str:
    """Markdown; image paths relative to `base` (the folder of the .md file)."""
    out = []
    for block in blocks:
        kind = block[0]
        if kind == "h1":
            out.append(f"# {block[1]}")
        elif kind == "h2":
            out.append(f"## {block[1]}")
        elif kind == "p":
            out.append(block[1])
        elif kind == "table":
            headers, rows = block[1], block[2]
            out.append("| " + " | ".join(map(_md_cell, headers)) + " |")
            out.append("|" + "---|" * len(headers))
            out += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in rows]
        elif kind == "img":
            rel = Path(os.path.relpath(Path(block[1]).resolve(), base.resolve()))
            out.append(f"![{block[2]}]({rel.as_posix()})")
        out.append("")
    return "\n".join(out)


CSS = (
    "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;font-size:13px;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
    "td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}"
    "figure{margin:1em 0}img{max-width:100%}figcaption{font-size:13px;color:#444}"
)


def render_html(blocks: Sequence[Block], read_bytes: Callable[[Path], bytes]) -> str:
    """One self-contained page: PNGs inlined as base64 data URIs."""
    title = next((b[1] for b in blocks if b[0] == "h1"), "report")
    out = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
    ]
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2"):
            out.append(f"<{kind}>{html.escape(block[1])}</{kind}>")
        elif kind == "p":
            out.append(f"<p>{html.escape(block[1])}</p>")
        elif kind == "table":
            out.append(
                "<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in block[1]) + "</tr>"
            )
            out += [
                "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                for row in block[2]
            ]
            out.append("</table>")
        elif kind == "img":
            data = base64.b64encode(read_bytes(Path(block[1]))).decode("ascii")
            out.append(
                f'<figure><img alt="{html.escape(block[2])}" '
                f'src="data:image/png;base64,{data}"><figcaption>'
                f"{html.escape(block[2])}</figcaption></figure>"
            )
    out.append("</body></html>")
    return "\n".join(out) + "\n"
