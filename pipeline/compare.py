"""The across-seed report: every headline metric of every row as a mean with its 95% t interval
over seeds, and the claims judged on the per-seed differences (pipeline.claims, several seeds)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pipeline import claims as C
from pipeline import metrics as M
from pipeline.claim_rows import claims as all_claims
from pipeline.report import Block, budgets, fmt, fmt_interval

# seed -> row name -> the row's metrics (evaluation and sampling merged)
Runs = Mapping[str, Mapping[str, Mapping[str, Any]]]
# seed -> judge -> the seed's calibrated generation floor (pipeline.claims.class_floor)
Floors = Mapping[str, Mapping[C.Judge, float | None]]

# the range a quantity can take: its t interval over few seeds is cut there (and says so)
BOUNDS: dict[str, tuple[float, float]] = {
    M.JUDGE_FID: (0.0, math.inf),
    f"{M.SECOND_JUDGE}_fid": (0.0, math.inf),
    M.PRECISION: (0.0, 1.0),
    M.RECALL: (0.0, 1.0),
    M.DISCRIMINABILITY: (0.0, 1.0),
    M.INTERPOLATION_ERROR: (0.0, 1.0),
    M.NN_PIXEL_RATIO: (0.0, math.inf),
    "classifier_test_accuracy": (0.0, 1.0),
}
METRICS: tuple[tuple[str, str, int], ...] = (
    (M.JUDGE_FID, "judge-FID ↓", 1),
    (f"{M.SECOND_JUDGE}_fid", "judge B: FID ↓", 1),
    (M.JUDGE_KID, "KID ↓", 3),
    (M.PRECISION, "precision ↑", 2),
    (M.RECALL, "recall ↑", 2),
    (M.DISCRIMINABILITY, "discriminability ↑", 3),
    (M.INTERPOLATION_ERROR, "interp. error ↓", 3),
    (M.NN_PIXEL_RATIO, "NN ratio (pixels)", 2),
    ("classifier_test_accuracy", "classifier acc.", 3),
)


def value(runs: Runs, seed: str, q: C.Quantity) -> float | None:
    """One seed's value of one side of a claim (as the one-seed lookup reads it)."""
    if q.row == "exact":
        return 1.0
    row = runs[seed].get(q.row)
    if row is None:
        return None
    if q.metric.endswith("_x2"):  # twice a judge-FID
        v = row.get(q.metric.removesuffix("_x2"))
        return None if v is None else 2 * v
    key = "classifier_test_accuracy" if q.metric == "acc" else q.metric
    v = row.get(key)
    return None if v is None else float(v)


def metric_interval(runs: Runs, row: str, key: str) -> C.Interval | None:
    """Mean over seeds and its 95% t interval, cut at the quantity's range (BOUNDS)."""
    values = [float(r[row][key]) for r in runs.values() if row in r and r[row].get(key) is not None]
    if not values:
        return None
    ci = C.mean_interval(values)
    lo, hi = BOUNDS.get(key, (-math.inf, math.inf))
    if math.isnan(ci.lo):
        return ci
    return C.Interval(ci.value, max(ci.lo, lo), min(ci.hi, hi))


def seed_generates(
    runs: Runs,
    seed: str,
    row: str,
    null_of: Callable[[str], str | None],
    num_classes: int,
    judge: C.Judge = C.JUDGE_A,
    floor: float | None = None,
) -> bool | None:
    """Whether `row`'s set generates on one seed by `judge`'s numbers, `floor` the seed's
    calibrated discriminability (pipeline.claims)."""
    rows = runs[seed]

    def fid(name: str | None) -> C.Interval | None:
        r = rows.get(name) if name else None
        if r is None or r.get(judge.fid) is None:
            return None
        lo, hi = r.get(f"{judge.fid}_lo"), r.get(f"{judge.fid}_hi")
        return C.Interval(r[judge.fid], math.nan if lo is None else lo,
                          math.nan if hi is None else hi)  # fmt: skip

    r = rows.get(row)
    if r is None:
        return None
    null = null_of(row)
    if null is None:  # no sampler of its own: the lowest-FID null of this seed
        nulls = [n for n in rows if n.startswith("null_") and rows[n].get(judge.fid) is not None]
        null = min(nulls, key=lambda n: rows[n][judge.fid], default=None)
    return C.generates(fid(row), fid(null), r.get(judge.discriminability),
                       int(r.get(M.NUM_HARD) or 0), num_classes, floor)  # fmt: skip


def seeds_verdict(
    runs: Runs,
    claim: C.Claim,
    null_of: Callable[[str], str | None],
    num_classes: int,
    judge: C.Judge = C.JUDGE_A,
    floors: Floors | None = None,
) -> tuple[C.Verdict, C.Interval | None, int]:
    """A claim across seeds as `judge` reads it (module pipeline.claims; `claim` already in
    the judge's metrics, `claims.read_by`): the t rule over the seeds where both sides generate,
    or the generation verdict when they do not; returns (verdict, interval of a - b, the number
    of seeds the verdict rests on)."""
    seeds = [s for s in runs if value(runs, s, claim.a) is not None
             and value(runs, s, claim.b) is not None]  # fmt: skip
    if claim.a.metric == "label_guarantee":
        got = [value(runs, s, claim.a) for s in seeds]
        if not got:
            return "not run", None, 0
        return ("reproduced" if all(v == 1 for v in got) else "not reproduced"), None, len(got)
    if not {claim.a.metric, claim.b.metric} <= C.SAMPLE_METRICS:
        diffs = [value(runs, s, claim.a) - value(runs, s, claim.b) for s in seeds]
        verdict, ci = C.verdict_seeds(diffs, claim.better)
        return verdict, ci, len(diffs)
    gen = {
        s: tuple(
            seed_generates(
                runs, s, q.row, null_of, num_classes, judge, (floors or {}).get(s, {}).get(judge)
            )
            for q in (claim.a, claim.b)
        )  # fmt: skip
        for s in seeds
    }
    both = [s for s in seeds if gen[s][0] is not False and gen[s][1] is not False]
    if both:
        diffs = [value(runs, s, claim.a) - value(runs, s, claim.b) for s in both]
        verdict, ci = C.verdict_seeds(diffs, claim.better)
        return verdict, ci, len(both)
    if not seeds:
        return "not run", None, 0
    a_any, b_any = any(g[0] for g in gen.values()), any(g[1] for g in gen.values())
    if not a_any and not b_any:
        return C.NEITHER, None, len(seeds)
    if a_any and not b_any:
        return C.ONLY_A, None, len(seeds)
    if b_any and not a_any:
        return C.ONLY_B, None, len(seeds)
    return "inconclusive", None, len(seeds)  # each side generates on some seeds, never together


def compare_blocks(
    runs: Runs,
    rows: Sequence[tuple[str, str]],
    chain: Sequence[str],
    null_of: Callable[[str], str | None],
    num_classes: int,
    floors: Floors | None = None,
) -> list[Block]:
    """The across-seed report. `rows`: (name, label) in table order; `null_of`: a row's null
    sampler set (None: it has none)."""
    seeds = list(runs)
    blocks: list[Block] = [("h1", f"Across seeds: {len(seeds)} experiments ({', '.join(seeds)})")]
    blocks.append(("p", (
        "Each number is the mean over the seeds that ran the row (n) with its 95% t interval in "
        "brackets, cut at the range the quantity can take (0 and 1 for proportions, 0 for FID "
        "and distance ratios). A claim about samples is judged on the seeds where both of its "
        "sides generate (pipeline.claims: discriminability above chance and at the floor the "
        "seed's calibration ladder sets, where its per-seed file has one, and judge-FID below the "
        "null sampler's, by their 95% intervals), on the per-seed differences a - b: "
        "reproduced when their 95% t interval excludes zero in the claimed direction, not "
        "reproduced when it excludes zero the other way, inconclusive otherwise (one seed gives "
        "no interval). Where a side generates on no seed, the verdict says which side does."
    )))  # fmt: skip
    blocks.append(("h2", "Claims"))
    blocks.append(("p", (
        "Each judge reads a claim about samples on its own numbers (judge A: settings are chosen "
        "on it; judge B: another architecture and seed), its generation test included; the "
        "verdict is theirs where they agree and judge-dependent where they do not. Accuracy and "
        "interpolation-error claims rest on judge A alone (–). Cost: network passes per training "
        "image and per sample, a vs b; matched: yes within 10%, or the side that spends no more "
        "on either (where it wins, it won despite the other's larger budget)."
    )))  # fmt: skip
    for kind, title in (("paper", "Paper claims"), ("ablation", "Ablation hypotheses")):
        table = []
        for claim in all_claims(chain, {}):
            if claim.kind != kind:
                continue
            cells, verdicts, counts = [], [], []
            for judge in C.JUDGES:
                c = C.read_by(claim, judge)
                if c is None:
                    cells += ["–", "–"]
                    continue
                verdict, ci, n = seeds_verdict(runs, c, null_of, num_classes, judge, floors)
                cells += [fmt_interval(ci, 3), verdict]
                verdicts.append(verdict)
                counts.append(n)
            # costs are the same on every seed (the budgets are params): the first that ran both
            ran = [runs[s] for s in seeds if {claim.a.row, claim.b.row} <= set(runs[s])]
            table.append([
                claim.text, claim.paper, f"{claim.a.metric}: {claim.a.row} - {claim.b.row}",
                *(budgets(claim, ran[0]) if ran else ("–", "–")),
                _mean([value(runs, s, claim.a) for s in seeds]),
                _mean([value(runs, s, claim.b) for s in seeds]),
                *cells, str(min(counts)), C.agreed(verdicts),
            ])  # fmt: skip
        blocks.append(("h3", title))
        blocks.append(("table", ["claim", "paper", "difference (judge A)",
                                 "cost: train; sample", "matched", "a", "b",
                                 "a - b [95% t], A", "judge A", "a - b [95% t], B", "judge B",
                                 "seeds", "verdict"], table))  # fmt: skip
    blocks.append(("h2", "Metrics"))
    headers = ["set", "n", *(label for _, label, _ in METRICS)]
    body = [
        [
            label,
            str(sum(name in r for r in runs.values())),
            *(fmt_interval(metric_interval(runs, name, key), digits) for key, _, digits in METRICS),
        ]
        for name, label in rows
    ]
    blocks.append(("table", headers, body))
    return blocks


def _mean(values: Sequence[float | None]) -> str:
    got = [v for v in values if v is not None and not math.isnan(v)]
    return fmt(sum(got) / len(got)) if got else "–"
