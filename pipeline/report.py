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
from pipeline import figures as F
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


def fmt_sci(value: Any) -> str:
    """A small positive number (a step size) in scientific notation."""
    if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
        return MISSING
    return f"{value:.1e}"


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
    if metric.endswith("_x2"):  # twice a judge-FID: a "competitive with" bar
        iv = interval(row, metric.removesuffix("_x2"))
        return None if iv is None else C.Interval(2 * iv.value, 2 * iv.lo, 2 * iv.hi)
    value = row.get(metric)
    if value is None:
        return None
    if metric in (j.fid for j in C.JUDGES):
        lo, hi = row.get(f"{metric}_lo"), row.get(f"{metric}_hi")
        return C.Interval(
            value, lo if lo is not None else math.nan, hi if hi is not None else math.nan
        )
    if metric in (*(j.discriminability for j in C.JUDGES), M.PRECISION, M.RECALL):
        n = int(row.get(M.NUM_HARD) or 0)
        return C.Interval(value, *C.wilson(value * n, n))
    if metric == M.INTERPOLATION_ERROR:
        lo, hi = row.get(M.INTERPOLATION_LO), row.get(M.INTERPOLATION_HI)
        return C.Interval(
            value, lo if lo is not None else math.nan, hi if hi is not None else math.nan
        )
    return C.Interval(value, math.nan, math.nan)


def generation(
    rows: Mapping[str, Row],
    null_of: Callable[[str], str | None],
    num_classes: int,
    judge: C.Judge = C.JUDGE_A,
    floor: float | None = None,
) -> Callable[[str], bool | None]:
    """Whether each row's set generates by `judge`'s numbers (pipeline.claims.generates), its
    null sampler's row named by `null_of` (None: the lowest-FID null among the rows of group
    "reference"), and `floor` the calibrated discriminability (pipeline.claims.class_floor)."""
    nulls = [r for r in rows.values() if r.group == "reference" and r.get(judge.fid) is not None]

    def test(name: str) -> bool | None:
        row = rows.get(name)
        if row is None or row.group in ("reference", "real"):
            return None
        own = null_of(name)
        null = rows.get(own) if own else min(nulls, key=lambda r: r.get(judge.fid), default=None)
        return C.generates(
            interval(row, judge.fid),
            interval(null, judge.fid),
            row.get(judge.discriminability),
            int(row.get(M.NUM_HARD) or 0),
            num_classes,
            floor,
        )

    return test


def claim_lookup(rows: Mapping[str, Row], accuracy_n: int) -> C.Lookup:
    def lookup(q: C.Quantity) -> C.Interval | None:
        if q.row == "exact":
            return C.Interval(1.0, 1.0, 1.0)
        return interval(rows.get(q.row), q.metric, accuracy_n)

    return lookup


# ----------------------------------------------------------------- figures' data


def point(iv: C.Interval | None) -> F.Point:
    return F.Point(None) if iv is None else F.Point(iv.value, iv.lo, iv.hi)


def method_marks(rows: Sequence[Row]) -> list[F.MethodMark]:
    """The method comparison's marks: methods, then the null samplers, then the real floor."""
    kind = {"method": "method", "reference": "null", "real": "real"}
    shown = [r for r in rows if r.group in kind and r.get(M.JUDGE_FID) is not None]
    shown.sort(key=lambda r: ("method", "reference", "real").index(r.group))
    return [
        F.MethodMark(
            r.label,
            point(interval(r, M.JUDGE_FID)),
            point(interval(r, M.DISCRIMINABILITY)),
            kind[r.group],
        )  # fmt: skip
        for r in shown
    ]


def round_panels(
    rows: Mapping[str, Row],
    chain: Sequence[str],
    r0_accuracy: float | None,
    accuracy_n: int,
    null: str | None,
    chance: tuple[float, float],
) -> list[F.Panel]:
    """The rounds figure's panels over r0, r1, ...: each metric with its 95% interval, the null
    sampler, JEM and the real-data floor as lines, chance shaded; r0 has accuracy only."""
    chain_rows = [rows.get(r) for r in chain]

    def series(metric: str) -> list[F.Point]:
        return [F.Point(None), *(point(interval(r, metric)) for r in chain_rows)]

    def refs(metric: str) -> list[tuple[str, float, str]]:
        out = []
        for name, label, colour in ((null, "null sampler", "grey"), ("jem", "JEM", "tab:blue"),
                                    ("real", "real data", "tab:green")):  # fmt: skip
            value = rows[name].get(metric) if name in rows else None
            if isinstance(value, int | float):
                out.append((label, float(value), colour))
        return out

    r0 = C.Interval(r0_accuracy, *C.wilson(r0_accuracy * accuracy_n, accuracy_n)) if (
        r0_accuracy is not None) else None  # fmt: skip
    accuracy = [point(r0), *(point(interval(r, "acc", accuracy_n)) for r in chain_rows)]
    return [
        F.Panel("judge-FID ↓ (log axis)", series(M.JUDGE_FID), "log", refs(M.JUDGE_FID)),
        F.Panel(
            "discriminability ↑",
            series(M.DISCRIMINABILITY),
            "unit",
            refs(M.DISCRIMINABILITY),
            band=chance,
        ),  # fmt: skip
        F.Panel("precision ↑", series(M.PRECISION), "unit", refs(M.PRECISION)),
        F.Panel("real-test accuracy of the classifier ↑", accuracy, "unit"),
    ]


ROUND_SERIES = (M.JUDGE_FID, M.JUDGE_FID_LO, M.JUDGE_FID_HI, M.DISCRIMINABILITY, M.PRECISION,
                "classifier_test_accuracy", "acceptance_rate")  # fmt: skip


def rounds_tsv(rows: Mapping[str, Row], chain: Sequence[str]) -> str:
    """The chain's metrics per round as TSV (depth 0 is r0, the baseline, with its accuracy
    only): the data of the rounds figure, for `dvc plots diff` to overlay experiments."""
    lines = ["\t".join(["depth", "round", *ROUND_SERIES])]
    for depth, name in enumerate(["r0", *chain]):
        row = rows.get(name)
        values = [row.get(k) if row is not None else None for k in ROUND_SERIES]
        cells = ["" if v is None else f"{v:.6g}" for v in values]
        lines.append("\t".join([str(depth), name, *cells]))
    return "\n".join(lines) + "\n"


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
    ("CAS ↑", lambda r: fmt(r.get(M.CAS), 3)),
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
    ("median eps", lambda r: fmt_sci(r.get("median_step_size"))),
    ("stuck chains", lambda r: fmt(r.get("stuck_share"), 2)),
    ("p(fake) of samples", lambda r: fmt(r.get("p_fake"), 3)),
    ("train passes / image", lambda r: fmt(r.get("train_passes_per_image"), 0)),
)

MEMORY_COLUMNS: tuple[Column, ...] = (
    ("NN distance ratio, judge features", lambda r: fmt(r.get(M.NN_FEATURE_RATIO), 2)),
    ("NN distance ratio, pixels", lambda r: fmt(r.get(M.NN_PIXEL_RATIO), 2)),
    ("near-copies of training images", lambda r: fmt(r.get(M.COPY_SHARE), 2)),
)


def digits_of(metric: str) -> int:
    """Decimals a metric is shown with: FIDs to one, proportions and errors to three."""
    return 1 if "fid" in metric else 3


COSTS = ("train_passes_per_image", "passes_per_sample")  # what a set cost: training, sampling


def budgets(claim: C.Claim, rows: Mapping[str, Row]) -> tuple[str, str]:
    """A claim's two sides' costs ("a vs b" in network passes: per training image; per sample)
    and how they compare: "yes" (matched: both within 10% of each other), "a cheaper" or
    "b cheaper" (that side spends at most 10% more on both, less on one: where it wins, it won
    despite the other's larger budget), "no" (each spends more on one); '–' where a side has
    none."""
    costs = []
    for key in COSTS:
        pair = [rows[q.row].get(key) if q.row in rows else None for q in (claim.a, claim.b)]
        if any(not isinstance(v, int | float) for v in pair):
            return MISSING, MISSING
        costs.append(pair)
    text = "; ".join(f"{fmt(a, 0)} vs {fmt(b, 0)}" for a, b in costs)
    return text, matching(costs)


def matching(costs: Sequence[Sequence[float]]) -> str:
    """"yes", "a cheaper", "b cheaper" or "no" for (a, b) cost pairs (see budgets)."""

    def within(x: float, y: float) -> bool:  # x at most 10% above y
        return x <= y + 0.1 * max(abs(x), abs(y))

    a_within = all(within(a, b) for a, b in costs)
    b_within = all(within(b, a) for a, b in costs)
    if a_within and b_within:
        return "yes"
    return "a cheaper" if a_within else "b cheaper" if b_within else "no"


def claims_table(results: Sequence[C.Result], rows: Mapping[str, Row]) -> tuple:
    """The claims with each judge's reading and the agreed verdict."""
    headers = ["claim", "source", "measured: a vs b", "cost: train; sample", "matched",
               "a (A)", "b (A)", "judge A", "a (B)", "b (B)", "judge B", "verdict"]  # fmt: skip
    body = []
    for res in results:
        c = res.claim
        measured = f"{c.a.metric} of {c.a.row} vs {c.b.row}" + (f" ({c.note})" if c.note else "")
        source = f"{c.paper}: “{c.source}”" if c.source else c.paper
        cells = []
        for reading in res.readings:
            if reading is None:
                cells += [MISSING] * 3
                continue
            d = digits_of(c.a.metric)
            cells += [fmt_interval(reading.a, d), fmt_interval(reading.b, d), reading.verdict]
        body.append([c.text, source, measured, *budgets(c, rows), *cells, res.verdict])
    return ("table", headers, body)


LADDER_COLUMNS: tuple[tuple[str, Callable[[Mapping[str, Any]], str]], ...] = (
    ("judge-FID A ↓ [95%]", lambda r: fmt_interval(ladder_interval(r, C.JUDGE_A.fid), 1)),
    ("discr. A ↑", lambda r: fmt(r.get(C.JUDGE_A.discriminability), 3)),
    ("judge-FID B ↓ [95%]", lambda r: fmt_interval(ladder_interval(r, C.JUDGE_B.fid), 1)),
    ("discr. B ↑", lambda r: fmt(r.get(C.JUDGE_B.discriminability), 3)),
    ("precision ↑", lambda r: fmt(r.get(M.PRECISION), 2)),
    ("CAS ↑", lambda r: fmt(r.get(M.CAS), 3)),
)


def ladder_interval(rung: Mapping[str, Any], fid: str) -> C.Interval | None:
    value, lo, hi = rung.get(fid), rung.get(f"{fid}_lo"), rung.get(f"{fid}_hi")
    if value is None:
        return None
    return C.Interval(value, math.nan if lo is None else lo, math.nan if hi is None else hi)


def ladder_table(rungs: Mapping[str, Mapping[str, Any]], real: Row | None) -> tuple:
    """The calibration ladder, the real floor first: each rung's numbers as a set's."""
    rows = [("real test images", dict(real.eval) if real else {})]
    rows += [(name, rung) for name, rung in rungs.items()]
    body = [[name, *(f(r) for _, f in LADDER_COLUMNS)] for name, r in rows]
    return ("table", ["rung", *(h for h, _ in LADDER_COLUMNS)], body)


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

# ("h1" | "h2" | "h3" | "p", text) | ("table", headers, rows) | ("img", path, caption) | ("toc",)
# | ("thumbs", [(path, caption), ...])
Block = tuple

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


KIND_NOTE = {
    "paper": "Each claim as its paper words it, with the words it rests on (docs/methods.md "
    "quotes them in context).",
    "ablation": "This project's hypotheses: what a component adds, controls and peer "
    "comparisons that no paper states.",
}
JUDGES_NOTE = (
    "Two judges read each claim about samples: judge A (on whose numbers settings are chosen) "
    "and judge B (another architecture and seed), each with its own generation test; the "
    "verdict is theirs where they agree and judge-dependent where they do not. Claims on a "
    "classifier's accuracy or on the interpolation error rest on judge A alone (–). Cost: "
    "network passes per training image (chain steps included) and per sample, side a vs side "
    "b; matched: yes where both are within 10% of each other; a (or b) cheaper where that side "
    "spends no more on either (where it wins, it won despite the other's larger budget); no "
    "otherwise."
)


def summary_sentence(results: Sequence[C.Result], seeds: int) -> str:
    """The report's first line: how the paper claims fared on this run, and where the across-seed
    verdicts are."""
    paper = [r.verdict for r in results if r.claim.kind == "paper"]
    counts = {v: paper.count(v) for v in dict.fromkeys(paper)}
    parts = ", ".join(f"{n} {v}" for v, n in counts.items())
    where = "on this seed" if seeds == 1 else f"on these {seeds} seeds"
    return (
        f"Of {len(paper)} paper claims, {where} and by both judges: {parts}. The verdicts across "
        "seeds, which this page's single-seed ones stand behind, are in compare.md "
        "(`bin/cgen compare`)."
    )


def floor_note(floors: Mapping[C.Judge, float | None]) -> str:
    """What the ladder set the generation test to."""
    read = [f"judge {j.name} {fmt(v, 3)}" for j, v in floors.items() if v is not None]
    if not read:
        return ("No rung kept its class by the classification accuracy score: the test falls "
                "back to discriminability above chance.")  # fmt: skip
    return (
        "The calibrated floor: a set generates by a judge's numbers only when its "
        "discriminability reaches the lowest that judge gives a rung whose classification "
        "accuracy score is at least halfway from chance to the real images' ("
        + ", ".join(read)
        + "), on top of being above chance and below its null sampler's judge-FID."
    )


LADDER_NOTE = (
    "Held-out real images degraded step by step (Gaussian blur of sigma pixels, additive "
    "Gaussian noise of the given standard deviation on the pixel range of 2, and a share of each "
    "image's pixel positions shuffled), each rung measured exactly as a sample set is, with both "
    "judges and the classification accuracy score (CAS: a classifier of the judge's architecture "
    "trained on the rung's n images alone, scored on the held-out images not among them). The "
    "rungs show which numbers images whose class is known to be there, or known to be gone, get."
)
GENERATION_NOTE = (
    "A claim about samples is tested only between sets that generate. A set generates when its "
    "discriminability interval lies above chance's (the Wilson interval of 1/K at the same n), "
    "its discriminability reaches the floor the calibration ladder sets (section Generation "
    "test), and its judge-FID interval lies below its null sampler's (the method's own sampler "
    "on a flat target; for a method without one, the lowest-FID null). Where a side does not "
    "generate, the verdict says so (untestable: neither side generates; only the claimed or "
    "only the other side generates) instead of comparing two sets of noise."
)


@dataclass(frozen=True)
class Figures:
    """The report's own figures (embedded in the HTML) and the per-set grids (linked)."""

    methods: Path | None = None  # judge-FID and discriminability of every set
    rounds: Path | None = None  # metrics across STIC's rounds, with error bars
    overview: Path | None = None  # one sample per class of each set
    ladder: Path | None = None  # the calibration ladder's rungs


DATA_FILES_SHOWN = 4  # a folder dataset lists every image in reports/data.json; the report, a few


def data_note(files: Mapping[str, Mapping[str, Any]]) -> str:
    """Which files the data came from (prepare's `files`: name -> bytes and SHA-256)."""
    shown = [f"`{name}` ({info['bytes']:,} bytes, SHA-256 `{info['sha256']}`)"
             for name, info in list(sorted(files.items()))[:DATA_FILES_SHOWN]]  # fmt: skip
    more = len(files) - len(shown)
    tail = f" and {more:,} more (reports/data.json lists them all)" if more > 0 else ""
    return f"Data read from {', '.join(shown)}{tail}."


def generation_cell(generating: Mapping[C.Judge, Callable[[str], bool | None]], name: str) -> str:
    """Whether a set generates by each judge's numbers: "yes / no" (judge A / judge B)."""
    cells = [{True: "yes", False: "no"}.get(generating[j](name), MISSING) for j in C.JUDGES]
    return MISSING if set(cells) == {MISSING} else " / ".join(cells)


def report_blocks(
    *,
    dataset: str,
    rows: Sequence[Row],
    chain: Sequence[str],
    r0_accuracy: float | None,
    test_images: int,
    claim_results: Sequence[C.Result],
    figures: Figures,
    generating: Mapping[C.Judge, Callable[[str], bool | None]],
    data_files: Mapping[str, Mapping[str, Any]] | None = None,
    seeds: int = 1,
    ladder: Mapping[str, Mapping[str, Any]] | None = None,
    floors: Mapping[C.Judge, float | None] | None = None,
) -> list[Block]:
    """The report's content (rows in table order): the verdicts first, then the evidence."""
    by_name = {r.name: r for r in rows}
    real = next((r for r in rows if r.group == "real"), None)
    n = real.eval.get(M.EVAL_COUNT) if real else None
    gen_col: Column = ("generates (A / B)", lambda r: generation_cell(generating, r.name))
    blocks: list[Block] = [("h1", f"Classifiers as generators: evaluation report ({dataset})")]
    blocks.append(("p", summary_sentence(claim_results, seeds)))
    if figures.overview is not None:
        blocks.append(("img", figures.overview, "One hard sample per class of each set (the "
                       "first of each class), real test digits last"))  # fmt: skip
    blocks.append(("p", (
        f"This report rests on {seeds} seed{'s' if seeds != 1 else ''} (runtime.seed); "
        "`bin/cgen compare` gives the verdicts across seeds (reports/compare.md). Every sample "
        f"set is measured at the same number of hard samples, n = {fmt(n)} "
        f"(min(eval.num_samples, {test_images} held-out images)), against all training images. "
        "↑/↓: higher/lower is better."
    )))  # fmt: skip
    if data_files:
        blocks.append(("p", data_note(data_files)))
    blocks.append(("toc",))
    blocks.append(("h2", "Verdicts"))
    blocks.append(("p", (
        "One seed: reproduced when the two 95% intervals do not overlap and the claimed side is "
        "better; not reproduced when they do not overlap and the other side is better; "
        "inconclusive when they overlap (judge-FID: bootstrap over samples; proportions: Wilson; "
        "interpolation error: normal approximation). " + GENERATION_NOTE + " " + JUDGES_NOTE
    )))  # fmt: skip
    for kind, title in (("paper", "Paper claims"), ("ablation", "Ablation hypotheses")):
        blocks.append(("h3", title))
        blocks.append(("p", KIND_NOTE[kind]))
        blocks.append(claims_table([r for r in claim_results if r.claim.kind == kind], by_name))
    methods = [r for r in rows if r.group in ("method", "reference", "real")]
    blocks.append(("h2", "Methods"))
    if figures.methods is not None:
        blocks.append(("img", figures.methods, "Every sample set: judge-FID (log axis) and "
                       "discriminability with 95% intervals; grey: null samplers; green: the "
                       "real-data floor; shaded: chance"))  # fmt: skip
    blocks.append(table(methods, (gen_col, *FIDELITY)))
    blocks.append(("p", REFERENCE_NOTE))
    blocks.append(("p", JUDGE_NOTE))
    status = real.eval.get(M.INCEPTION_STATUS) if real else None
    blocks.append(("p", f"Inception-based metrics: {status}."))
    if ladder:
        blocks.append(("h2", "Generation test"))
        blocks.append(("p", LADDER_NOTE))
        if figures.ladder is not None:
            blocks.append(("img", figures.ladder, "The calibration ladder: one held-out image "
                           "per class, real first, then each rung"))  # fmt: skip
        blocks.append(ladder_table(ladder, real))
        if floors:
            blocks.append(("p", floor_note(floors)))
    pub = published_table(dataset, by_name)
    if pub is not None:
        blocks.append(pub)
    blocks.append(("h2", "Samples"))
    grids = [(path, f"{r.label}: {caption}") for r in rows for path, caption in r.figures]
    blocks.append(("thumbs", grids))
    blocks.append(("h2", "STIC rounds"))
    round_rows = [r for r in rows if r.group == "round"]
    blocks.append(("p", (
        f"Round r0 is the baseline classifier (test accuracy {fmt(r0_accuracy)}); each later "
        "round starts from the previous one (its weights or a new network, `stic.init`, and its "
        "chains), trains against its own sampler, and is evaluated on fresh chains from the "
        "canvas after its training."
    )))  # fmt: skip
    blocks.append(table(round_rows, (gen_col, *ROUND_COLUMNS), "round"))
    if figures.rounds is not None:
        blocks.append(("img", figures.rounds, "Metrics across rounds with 95% intervals and "
                       "the reference sets"))  # fmt: skip
    ablations = [r for r in rows if r.group == "ablation"]
    if ablations:
        blocks.append(("h2", "Ablations"))
        blocks.append(("p", (
            "Each ablation is one round from the same start as the chain round at its depth "
            "(its 'from' column), with one part of STIC switched off; compare it with that "
            "chain round at the same training budget."
        )))  # fmt: skip
        compare = [by_name[c] for c in chain[:1] if c in by_name]
        blocks.append(table(compare + ablations, (gen_col, *ROUND_COLUMNS), "round"))
    blocks.append(("h2", "Memorisation"))
    blocks.append(("p", MEMORY_NOTE))
    blocks.append(table([r for r in rows if r.group != "real"], MEMORY_COLUMNS))
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


def anchor(title: str) -> str:
    """The anchor of a heading, as GitHub makes it (lower case, spaces to '-')."""
    return re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-")


def _relative(path: Path, base: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), base.resolve())).as_posix()


def _headings(blocks: Sequence[Block]) -> list[str]:
    return [b[1] for b in blocks if b[0] == "h2"]


def render_markdown(blocks: Sequence[Block], base: Path) -> str:
    """Markdown; image paths relative to `base` (the folder of the .md file)."""
    out = []
    for block in blocks:
        kind = block[0]
        if kind == "h1":
            out.append(f"# {block[1]}")
        elif kind == "toc":
            out.append(" · ".join(f"[{h}](#{anchor(h)})" for h in _headings(blocks)))
        elif kind == "thumbs":
            out += [f"- [{caption}]({_relative(path, base)})" for path, caption in block[1]]
        elif kind == "h2":
            out.append(f"## {block[1]}")
        elif kind == "h3":
            out.append(f"### {block[1]}")
        elif kind == "p":
            out.append(block[1])
        elif kind == "table":
            headers, rows = block[1], block[2]
            out.append("| " + " | ".join(map(_md_cell, headers)) + " |")
            out.append("|" + "---|" * len(headers))
            out += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in rows]
        elif kind == "img":
            out.append(f"![{block[2]}]({_relative(block[1], base)})")
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
    ".verdict-inconclusive{background:#fcf8e3}.verdict-untestable{background:#e8e8e8}"
    ".verdict-only-claimed{background:#e6f2e0}.verdict-only-other{background:#f5e6e6}"
    ".verdict-judge-dependent{background:#e3ecf7}"
    "nav{font-size:14px;margin:1em 0}nav a{margin-right:1em}"
    ".thumbs{display:flex;flex-wrap:wrap;gap:8px}.thumbs a{width:150px;font-size:11px;"
    "color:#333;text-decoration:none}.thumbs img{width:150px;border:1px solid #ddd}"
)
VERDICT_CLASS = {
    "reproduced": "verdict-reproduced",
    "not reproduced": "verdict-not-reproduced",
    "inconclusive": "verdict-inconclusive",
    C.NEITHER: "verdict-untestable",
    C.ONLY_A: "verdict-only-claimed",
    C.ONLY_B: "verdict-only-other",
    C.JUDGE_DEPENDENT: "verdict-judge-dependent",
}


def _cell(text: str) -> str:
    cls = ""
    if text in VERDICT_CLASS:
        cls = f' class="{VERDICT_CLASS[text]}"'
    elif TEXT.search(text):  # prose (a claim, a measurement) reads left-aligned; numbers right
        cls = ' class="text"'
    return f"<td{cls}>{html.escape(text)}</td>"


def render_html(
    blocks: Sequence[Block], read_bytes: Callable[[Path], bytes], base: Path | None = None
) -> str:
    """One page: the report's own figures inlined as base64 data URIs; the per-set grids
    ("thumbs") as thumbnails linking to their files, relative to `base` (the page's folder), so
    the page stays small."""
    title = next((b[1] for b in blocks if b[0] == "h1"), "report")
    out = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
    ]
    for block in blocks:
        kind = block[0]
        if kind == "h1":
            out.append(f"<h1>{html.escape(block[1])}</h1>")
        elif kind in ("h2", "h3"):
            out.append(f'<{kind} id="{anchor(block[1])}">{html.escape(block[1])}</{kind}>')
        elif kind == "toc":
            links = "".join(
                f'<a href="#{anchor(h)}">{html.escape(h)}</a>' for h in _headings(blocks)
            )
            out.append(f"<nav>{links}</nav>")
        elif kind == "thumbs":
            cells = []
            for path, caption in block[1]:
                rel = html.escape(_relative(path, base or Path(".")))
                cells.append(f'<a href="{rel}"><img loading="lazy" alt="{html.escape(caption)}" '
                             f'src="{rel}"><br>{html.escape(caption)}</a>')  # fmt: skip
            out.append(f'<div class="thumbs">{"".join(cells)}</div>')
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
