"""The report: the claims with their verdicts, the tables and the figures, from evaluation results,
rendered as Markdown and as one self-contained HTML page (images inlined as base64; `dvc plots
show` needs a CDN).

Everything here works on values handed in (rows, paths, bytes); nothing reads params.yaml or
globs a folder: the stage passes exactly the rounds and sample sets the parameters list.
"""

from __future__ import annotations

import base64
import html
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pipeline import claims as C
from pipeline import metrics as M

Group = Literal["method", "round", "ablation", "reference", "real"]
MISSING = "–"  # shown where a metric does not apply or was not computed


@dataclass(frozen=True)
class Row:
    """One evaluated sample set (a method, a STIC round or ablation, a reference, the floor)."""

    name: str
    group: Group
    label: str
    eval: Mapping[str, Any]  # the evaluate stage's metrics
    sampling: Mapping[str, Any] = field(default_factory=dict)  # the sampling stage's metrics
    figures: tuple[tuple[Path, str], ...] = ()  # (PNG, caption)

    def get(self, key: str) -> Any:
        return self.eval.get(key, self.sampling.get(key))


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
    # Grathwohl et al. 2020 (JEM), Table 1 / 2: CIFAR-10 FID
    Reference("jem", "cifar10", M.INCEPTION_FID, 38.4, None, "Grathwohl et al. 2020"),
)


# ----------------------------------------------------------------- numbers


def fmt(value: Any, digits: int = 3) -> str:
    if value is None or isinstance(value, str) or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return f"{value:.{digits}f}"


def fmt_interval(iv: C.Interval | None, digits: int = 3) -> str:
    if iv is None:
        return MISSING
    if math.isnan(iv.lo):
        return fmt(iv.value, digits)
    return f"{fmt(iv.value, digits)} [{fmt(iv.lo, digits)}, {fmt(iv.hi, digits)}]"


def interval(row: Row | None, metric: str, accuracy_n: int | None = None) -> C.Interval | None:
    """A row's metric with its 95% interval (module claims: how each kind gets one)."""
    if row is None:
        return None
    if metric == "acc":
        acc, n = row.get("classifier_test_accuracy"), accuracy_n
        if acc is None or not n:
            return None
        return C.Interval(acc, *C.wilson(acc * n, n))
    value = row.get(metric)
    if value is None:
        return None
    if metric == M.JUDGE_FID:
        lo, hi = row.get(M.JUDGE_FID_LO), row.get(M.JUDGE_FID_HI)
        return C.Interval(
            value, lo if lo is not None else math.nan, hi if hi is not None else math.nan
        )
    if metric in (M.DISCRIMINABILITY, M.PRECISION, M.RECALL):
        n = int(row.get(M.NUM_HARD) or 0)
        return C.Interval(value, *C.wilson(value * n, n))
    if metric == M.INTERPOLATION_ERROR:
        lo, hi = row.get(M.INTERPOLATION_LO), row.get(M.INTERPOLATION_HI)
        return C.Interval(
            value, lo if lo is not None else math.nan, hi if hi is not None else math.nan
        )
    return C.Interval(value, math.nan, math.nan)


def claim_lookup(rows: Mapping[str, Row], accuracy_n: int) -> C.Lookup:
    def lookup(q: C.Quantity) -> C.Interval | None:
        if q.row == "exact":
            return C.Interval(1.0, 1.0, 1.0)
        if q.metric == "fid_x2":
            iv = interval(rows.get(q.row), M.JUDGE_FID)
            return None if iv is None else C.Interval(2 * iv.value, 2 * iv.lo, 2 * iv.hi)
        return interval(rows.get(q.row), q.metric, accuracy_n)

    return lookup


# ----------------------------------------------------------------- tables

Column = tuple[str, Callable[[Row], str]]

FIDELITY: tuple[Column, ...] = (
    ("judge-FID ↓ [95% bootstrap]", lambda r: fmt_interval(interval(r, M.JUDGE_FID), 1)),
    ("FID vs test ↓", lambda r: fmt(r.get(M.JUDGE_FID_TEST), 1)),
    ("KID ↓", lambda r: fmt(r.get(M.JUDGE_KID), 3)),
    ("precision ↑", lambda r: fmt(r.get(M.PRECISION), 2)),
    ("recall ↑", lambda r: fmt(r.get(M.RECALL), 2)),
    ("discriminability ↑", lambda r: fmt(r.get(M.DISCRIMINABILITY), 3)),
    ("judge B: FID ↓", lambda r: fmt(r.get(f"{M.SECOND_JUDGE}_fid"), 1)),
    ("judge B: discr. ↑", lambda r: fmt(r.get(f"{M.SECOND_JUDGE}_discriminability"), 3)),
    ("distinct ↑", lambda r: fmt(r.get(M.DISTINCT_SHARE), 2)),
    ("MS-SSIM ↓", lambda r: fmt(r.get(M.DIVERSITY), 3)),
    ("interp. error ↓ (chance)", lambda r: _interp(r)),
    ("pair mass ↑", lambda r: fmt(r.get(M.PAIR_MASS), 2)),
    ("classifier acc.", lambda r: fmt(r.get("classifier_test_accuracy"), 3)),
    ("passes / sample", lambda r: fmt(r.get("passes_per_sample"), 0)),
    ("train passes / image", lambda r: fmt(r.get("train_passes_per_image"), 0)),
)


def _interp(r: Row) -> str:
    err, chance = r.get(M.INTERPOLATION_ERROR), r.get(M.INTERPOLATION_CHANCE)
    return MISSING if err is None else f"{fmt(err)} ({fmt(chance)})"


def table(rows: Sequence[Row], columns: Sequence[Column], first: str = "set") -> tuple:
    return (
        "table",
        [first, *(h for h, _ in columns)],
        [[r.label, *(c(r) for _, c in columns)] for r in rows],
    )


ROUND_COLUMNS: tuple[Column, ...] = (
    ("from", lambda r: str(r.sampling.get("prev", MISSING))),
    ("test acc. ↑", lambda r: fmt(r.get("classifier_test_accuracy"), 3)),
    ("judge-FID ↓ [95%]", lambda r: fmt_interval(interval(r, M.JUDGE_FID), 1)),
    ("discriminability ↑", lambda r: fmt(r.get(M.DISCRIMINABILITY), 3)),
    ("precision ↑", lambda r: fmt(r.get(M.PRECISION), 2)),
    ("interp. error ↓", lambda r: fmt(r.get(M.INTERPOLATION_ERROR), 3)),
    ("acceptance", lambda r: fmt(r.get("acceptance_rate"), 2)),
    ("step size", lambda r: fmt(r.get("final_step_size"), 6)),
    ("stuck chains", lambda r: fmt(r.get("stuck_share"), 2)),
    ("p(fake) of samples", lambda r: fmt(r.get("p_fake"), 3)),
    ("train passes / image", lambda r: fmt(r.get("train_passes_per_image"), 0)),
)

MEMORY_COLUMNS: tuple[Column, ...] = (
    ("NN distance ratio, judge features", lambda r: fmt(r.get(M.NN_FEATURE_RATIO), 2)),
    ("NN distance ratio, pixels", lambda r: fmt(r.get(M.NN_PIXEL_RATIO), 2)),
    ("near-copies of training images", lambda r: fmt(r.get(M.COPY_SHARE), 2)),
)


def claims_table(
    results: Sequence[tuple[C.Claim, C.Interval | None, C.Interval | None, C.Verdict]],
) -> tuple:
    headers = ["claim", "paper", "measured: a vs b", "a", "b", "verdict"]
    rows = []
    for c, a, b, v in results:
        measured = f"{c.a.metric} of {c.a.row} vs {c.b.row}" + (f" ({c.note})" if c.note else "")
        rows.append([c.text, c.paper, measured, fmt_interval(a, 3), fmt_interval(b, 3), v])
    return ("table", headers, rows)


def published_table(dataset: str, rows: Mapping[str, Row]) -> tuple | None:
    """Published numbers beside ours, only where dataset and (Inception) metric match."""
    out = []
    for ref in PUBLISHED:
        row = rows.get(ref.method)
        ours = row.get(ref.key) if row is not None else None
        if ref.dataset == dataset and isinstance(ours, int | float):
            pub = fmt(ref.value, 2) + ("" if ref.std is None else f" ± {fmt(ref.std, 2)}")
            out.append([ref.method, ref.dataset, ref.key, pub, fmt(ours, 2), ref.source])
    if not out:
        return None
    return ("table", ["method", "dataset", "metric", "published", "ours", "source"], out)


# ----------------------------------------------------------------- the document

Block = tuple  # ("h1" | "h2" | "p", text) | ("table", headers, rows) | ("img", path, caption)

JUDGE_NOTE = (
    "Judge-based numbers use the judge: a classifier trained separately on the real training "
    "split, never used for synthesis; FID, KID and precision/recall use its penultimate features, "
    "all through torch-fidelity's metric functions. They compare across the rows of this report "
    "only, never with published Inception-based numbers, which are shown only when Inception "
    "weights were given and the dataset matches. Judge B (another seed and architecture) repeats "
    "FID and discriminability: settings chosen by looking at the judge are read with judge B too."
)
REFERENCE_NOTE = (
    "Reference rows: the real-data floor (held-out test images measured like samples: what a "
    "perfect generator scores here); null samplers (each method's evaluation sampler with its "
    "gradient zeroed: what the canvas and the sampler's noise score, i.e. chance); real "
    "pixel-mixup (blends of two held-out images: the interpolation reference). Chance "
    "discriminability is 1/K. The interpolation error's chance (in brackets) is the error of "
    "always answering 0.5; pair mass is the judge's probability on the two mixed classes."
)
MEMORY_NOTE = (
    "Memorisation: the median distance from each hard sample to its nearest training image, "
    "divided by the same for held-out test images (1: samples sit as far from the training set as "
    "unseen real images do; well below 1: they sit on training images), in the judge's feature "
    "space and in pixels; and the share of samples nearer a training image than 95% of held-out "
    "images are (near-copies; 0.05 for held-out images by construction)."
)


def report_blocks(
    *,
    dataset: str,
    rows: Sequence[Row],
    chain: Sequence[str],
    r0_accuracy: float | None,
    test_images: int,
    claim_results: Sequence[tuple[C.Claim, C.Interval | None, C.Interval | None, C.Verdict]],
    rounds_figure: Path | None,
    seeds: int = 1,
) -> list[Block]:
    """The report's content (rows in table order)."""
    by_name = {r.name: r for r in rows}
    real = next((r for r in rows if r.group == "real"), None)
    n = real.eval.get(M.EVAL_COUNT) if real else None
    blocks: list[Block] = [("h1", f"Classifiers as generators: evaluation report ({dataset})")]
    blocks.append(("p", (
        f"This report rests on {seeds} seed{'s' if seeds != 1 else ''} (runtime.seed); "
        "`cgen compare` gives the across-seed report with intervals over seeds. Every sample set "
        f"is measured at the same number of hard samples, n = {fmt(n)} (min(eval.num_samples, "
        f"{test_images} held-out images)), against all training images. ↑/↓: higher/lower is "
        "better."
    )))  # fmt: skip
    blocks.append(("h2", "Claims"))
    blocks.append(("p", (
        "Verdict rule (one seed): reproduced when the two 95% intervals do not overlap and the "
        "claimed side is better; not reproduced when they do not overlap and the other side is "
        "better; inconclusive when they overlap (judge-FID: bootstrap over samples; proportions: "
        "Wilson; interpolation error: normal approximation). A claim whose rows were not run "
        "says so."
    )))  # fmt: skip
    blocks.append(claims_table(claim_results))
    methods = [r for r in rows if r.group in ("method", "reference", "real")]
    blocks.append(("h2", "Methods"))
    blocks.append(table(methods, FIDELITY))
    blocks.append(("p", REFERENCE_NOTE))
    blocks.append(("p", JUDGE_NOTE))
    status = real.eval.get(M.INCEPTION_STATUS) if real else None
    blocks.append(("p", f"Inception-based metrics: {status}."))
    pub = published_table(dataset, by_name)
    if pub is not None:
        blocks.append(pub)
    blocks.append(("h2", "STIC rounds"))
    round_rows = [r for r in rows if r.group == "round"]
    blocks.append(("p", (
        f"Round r0 is the baseline classifier (test accuracy {fmt(r0_accuracy)}); each later "
        "round starts from the previous one's weights and chains, trains against its own "
        "sampler, and is evaluated on fresh chains from the canvas after its training."
    )))  # fmt: skip
    blocks.append(table(round_rows, ROUND_COLUMNS, "round"))
    if rounds_figure is not None:
        blocks.append(("img", rounds_figure, "Metrics across rounds"))
    ablations = [r for r in rows if r.group == "ablation"]
    if ablations:
        blocks.append(("h2", "Ablations"))
        blocks.append(("p", (
            "Each ablation is one round from the same start as the chain round at its depth "
            "(its 'from' column), with one part of STIC switched off; compare it with that "
            "chain round at the same training budget."
        )))  # fmt: skip
        compare = [by_name[c] for c in chain[:1] if c in by_name]
        blocks.append(table(compare + ablations, ROUND_COLUMNS, "round"))
    blocks.append(("h2", "Memorisation"))
    blocks.append(("p", MEMORY_NOTE))
    blocks.append(table([r for r in rows if r.group != "real"], MEMORY_COLUMNS))
    blocks.append(("h2", "Samples"))
    for r in rows:
        for path, caption in r.figures:
            blocks.append(("img", path, f"{r.label}: {caption}"))
    return blocks


def summary(rows: Sequence[Row], names: Sequence[str]) -> dict[str, dict[str, float | None]]:
    """The headline metrics `dvc exp show` lists: judge-FID and discriminability per named row."""
    by_name = {r.name: r for r in rows}
    return {
        name: {
            "judge_fid": _rounded(by_name[name].get(M.JUDGE_FID)),
            "discriminability": _rounded(by_name[name].get(M.DISCRIMINABILITY)),
        }
        for name in names
        if name in by_name
    }


def _rounded(value: Any) -> float | None:
    return None if value is None else round(float(value), 4)


# ----------------------------------------------------------------- rendering


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


TEXT = re.compile(r"[A-Za-z]{3,}.* ")
CSS = (
    "body{font-family:sans-serif;max-width:1400px;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;font-size:12px;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right;vertical-align:top}"
    "td:first-child,th:first-child,td.text{text-align:left}th{background:#f3f3f3}"
    "figure{margin:1em 0}img{max-width:100%}figcaption{font-size:13px;color:#444}"
    ".verdict-reproduced{background:#dff0d8}.verdict-not-reproduced{background:#f2dede}"
    ".verdict-inconclusive{background:#fcf8e3}"
)


def _cell(text: str) -> str:
    cls = ""
    if text in ("reproduced", "not reproduced", "inconclusive"):
        cls = f' class="verdict-{text.replace(" ", "-")}"'
    elif TEXT.search(text):  # prose (a claim, a measurement) reads left-aligned; numbers right
        cls = ' class="text"'
    return f"<td{cls}>{html.escape(text)}</td>"


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
            out += ["<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in block[2]]
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
