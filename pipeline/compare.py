"""The across-seed report: every headline metric of every row as a mean with its 95% t interval
over seeds, and the claims judged on the per-seed differences (pipeline.claims, several seeds)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline import claims as C
from pipeline import metrics as M
from pipeline.report import Block, fmt, fmt_interval

# seed -> row name -> the row's metrics (evaluation and sampling merged)
Runs = Mapping[str, Mapping[str, Mapping[str, Any]]]

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
    if q.metric == "fid_x2":
        v = row.get(M.JUDGE_FID)
        return None if v is None else 2 * v
    key = "classifier_test_accuracy" if q.metric == "acc" else q.metric
    v = row.get(key)
    return None if v is None else float(v)


def differences(runs: Runs, claim: C.Claim) -> list[float]:
    """Per-seed a - b where both sides were measured."""
    out = []
    for seed in runs:
        a, b = value(runs, seed, claim.a), value(runs, seed, claim.b)
        if a is not None and b is not None:
            out.append(a - b)
    return out


def metric_interval(runs: Runs, row: str, key: str) -> C.Interval | None:
    values = [float(r[row][key]) for r in runs.values() if row in r and r[row].get(key) is not None]
    return C.mean_interval(values) if values else None


def compare_blocks(
    runs: Runs, rows: Sequence[tuple[str, str]], chain: Sequence[str]
) -> list[Block]:
    """The across-seed report. `rows`: (name, label) in table order."""
    seeds = list(runs)
    blocks: list[Block] = [("h1", f"Across seeds: {len(seeds)} runs ({', '.join(seeds)})")]
    blocks.append(("p", (
        "Each number is the mean over seeds with its 95% t interval in brackets. Claims are "
        "judged on the per-seed differences a - b: reproduced when their 95% t interval excludes "
        "zero in the claimed direction, not reproduced when it excludes zero the other way, "
        "inconclusive otherwise; fewer than two seeds give no interval."
    )))  # fmt: skip
    blocks.append(("h2", "Claims"))
    table = []
    for claim in C.claims(chain, {}):
        diffs = differences(runs, claim)
        verdict, ci = C.verdict_seeds(diffs, claim.better)
        if claim.a.metric == "label_guarantee":
            vals = [value(runs, s, claim.a) for s in seeds]
            got = [v for v in vals if v is not None]
            verdict = (
                "not run"
                if not got
                else ("reproduced" if all(v == 1 for v in got) else "not reproduced")
            )
        mean_a = [value(runs, s, claim.a) for s in seeds]
        mean_b = [value(runs, s, claim.b) for s in seeds]
        table.append([
            claim.text, claim.paper, f"{claim.a.metric}: {claim.a.row} - {claim.b.row}",
            _mean(mean_a), _mean(mean_b), fmt_interval(ci, 3), str(len(diffs)), verdict,
        ])  # fmt: skip
    blocks.append(("table", ["claim", "paper", "difference", "a", "b", "a - b [95% t]", "seeds",
                             "verdict"], table))  # fmt: skip
    blocks.append(("h2", "Metrics"))
    headers = ["set", *(label for _, label, _ in METRICS)]
    body = [
        [
            label,
            *(fmt_interval(metric_interval(runs, name, key), digits) for key, _, digits in METRICS),
        ]
        for name, label in rows
    ]
    blocks.append(("table", headers, body))
    return blocks


def _mean(values: Sequence[float | None]) -> str:
    got = [v for v in values if v is not None and not math.isnan(v)]
    return fmt(sum(got) / len(got)) if got else "–"
