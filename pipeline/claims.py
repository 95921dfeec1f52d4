"""The papers' claims as testable rows, and the rule that turns measurements into a verdict.

Every claim compares two measured quantities, `a` and `b` (a metric of a sample set or of a
classifier), in a claimed direction. A verdict needs an interval for what is compared:
- one seed (the report): each side's 95% interval (judge-FID: bootstrap over samples;
  proportions: Wilson; means: normal approximation). The claim is *reproduced* when the intervals
  do not overlap and `a` is better; *not reproduced* when they do not overlap and `b` is better;
  *inconclusive* when they overlap. Non-overlap of two 95% intervals is a conservative test.
- several seeds (`cgen compare`): the per-seed differences a - b, and their t interval. The claim
  is *reproduced* when the interval excludes zero in the claimed direction, *not reproduced* when
  it excludes zero in the other, *inconclusive* otherwise.
A claim whose rows were not run says so; nothing is guessed.

Two judges read every claim about samples (judge-FID, discriminability): judge A, on whose
numbers settings are chosen, and judge B, a classifier of another architecture and seed. Each
gives a verdict by the rules here, its own generation test included; the claim's verdict is
theirs where they agree and *judge-dependent* where they do not (both readings are shown); a
judge that finds only the claimed side generating agrees with "reproduced", only the other side
with "not reproduced".
Claims judge B cannot read (a classifier's accuracy, the interpolation error, which the main
judge's class probabilities define, the label guarantee) rest on judge A alone.

Each claim is of one of two kinds: a *paper* claim, worded as the paper words it and carrying the
words it rests on (`source`, quoted in docs/methods.md), or an *ablation* hypothesis of this
project (a component's effect, a control or a peer comparison no paper states).

A claim about samples can only be tested between sets that generate: two sets of noise differ
in judge-FID without either being a generator. So each side of such a claim first passes the
generation test (`generates`): its discriminability interval lies above chance's (the Wilson
interval of 1/K at the same n), its discriminability reaches the floor read off the calibration
ladder (`class_floor`: as recognisable as the most degraded real images that still carry their
class), and its judge-FID interval lies below that of its null sampler (the method's own sampler
on a flat target; for a method without one, the lowest of the nulls). When a side fails, the
verdict is *untestable: neither side generates*, or *only the claimed side generates* / *only the
other side generates*, which is itself a result; the usual rule runs only when both sides
generate. Claims about classifiers (accuracy, the ReGene label guarantee)
need no generation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

Better = Literal["lower", "higher"]
Kind = Literal["paper", "ablation"]
Verdict = Literal[
    "reproduced",
    "not reproduced",
    "inconclusive",
    "judge-dependent",
    "not run",
    "untestable: neither side generates",
    "only the claimed side generates",
    "only the other side generates",
]
NEITHER: Verdict = "untestable: neither side generates"
ONLY_A: Verdict = "only the claimed side generates"
ONLY_B: Verdict = "only the other side generates"
JUDGE_DEPENDENT: Verdict = "judge-dependent"


@dataclass(frozen=True)
class Judge:
    """Where one judge's numbers sit in a sample set's metrics (its FID's interval beside it as
    `<fid>_lo` and `<fid>_hi`)."""

    name: str
    fid: str
    discriminability: str


JUDGE_A = Judge("A", "judge_fid", "discriminability")
JUDGE_B = Judge("B", "judge_b_fid", "judge_b_discriminability")
JUDGES = (JUDGE_A, JUDGE_B)
# metrics of sample sets: a claim on them needs both sides to generate (module docstring);
# `<fid>_x2` is twice a judge-FID (a "competitive with" bar)
SAMPLE_METRICS = frozenset({
    *(k for j in JUDGES for k in (j.fid, f"{j.fid}_x2", j.discriminability)),
    "interpolation_error",
})  # fmt: skip
Z95 = 1.959963984540054  # two-sided 95% normal quantile
# two-sided 95% Student t quantiles for 1..30 degrees of freedom (beyond: the normal one)
T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
       2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
       2.052, 2.048, 2.045, 2.042)  # fmt: skip


@dataclass(frozen=True)
class Interval:
    value: float
    lo: float
    hi: float


@dataclass(frozen=True)
class Quantity:
    """What one side of a claim measures: a metric of a row ("acc" is a classifier's accuracy)."""

    row: str
    metric: str


@dataclass(frozen=True)
class Claim:
    id: str
    text: str  # the claim in one sentence
    paper: str
    a: Quantity  # the side the paper says is better
    b: Quantity
    better: Better
    note: str = ""  # what limits the test (sample size, reading)
    kind: Kind = "ablation"
    source: str = ""  # a paper claim: the paper's words it rests on (quoted in docs/methods.md)


def read_by(claim: Claim, judge: Judge) -> Claim | None:
    """The claim as `judge` measures it (judge A's metrics swapped for the judge's own); None
    where it has no reading of its own (module docstring)."""
    swap = {
        JUDGE_A.fid: judge.fid,
        f"{JUDGE_A.fid}_x2": f"{judge.fid}_x2",
        JUDGE_A.discriminability: judge.discriminability,
    }
    if judge == JUDGE_A:
        return claim
    if claim.a.metric not in swap or claim.b.metric not in swap:
        return None
    return replace(claim, a=Quantity(claim.a.row, swap[claim.a.metric]),
                   b=Quantity(claim.b.row, swap[claim.b.metric]))  # fmt: skip


# what a judge that finds only one side generating says of the claim: the claimed side alone
# generating supports it as "reproduced" does, the other side alone refutes it as "not reproduced"
AS_VERDICT: dict[Verdict, Verdict] = {ONLY_A: "reproduced", ONLY_B: "not reproduced"}


def agreed(verdicts: Sequence[Verdict]) -> Verdict:
    """The claim's verdict from its judges' (module docstring): theirs where they agree, also
    where one reads "not reproduced" and the other finds only the other side generating (and
    likewise "reproduced" and only the claimed side)."""
    if len(set(verdicts)) == 1:
        return verdicts[0]
    read = {AS_VERDICT.get(v, v) for v in verdicts}
    return read.pop() if len(read) == 1 else JUDGE_DEPENDENT


@dataclass(frozen=True)
class Reading:
    """One judge's reading of a claim: each side's interval and the judge's verdict."""

    a: Interval | None
    b: Interval | None
    verdict: Verdict


@dataclass(frozen=True)
class Result:
    claim: Claim
    readings: tuple[Reading | None, ...]  # one per JUDGES; None: that judge cannot read it

    @property
    def verdict(self) -> Verdict:
        return agreed([r.verdict for r in self.readings if r is not None])


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion successes / n."""
    if n <= 0:
        return (math.nan, math.nan)
    p = successes / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def t_quantile(df: int) -> float:
    return T95[df - 1] if 1 <= df <= len(T95) else Z95


def mean_interval(values: Sequence[float]) -> Interval:
    """Mean and its 95% t interval (a single value: no interval)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return Interval(mean, math.nan, math.nan)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(n - 1) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half)


def chance_interval(num_classes: int, n: int) -> tuple[float, float]:
    """Where discriminability lands by chance: the Wilson interval of 1/K at n samples."""
    return wilson(n / num_classes, n)


def generates(
    fid: Interval | None,
    null_fid: Interval | None,
    discriminability: float | None,
    n: int,
    num_classes: int,
    floor: float | None = None,
) -> bool | None:
    """The generation test (module docstring): None when the set's numbers are missing; without
    a null sampler to compare with, discriminability alone decides. `floor`: the calibrated
    discriminability a set must reach (`class_floor`; None: chance's interval alone)."""
    if fid is None or discriminability is None or n <= 0:
        return None
    above_chance = wilson(discriminability * n, n)[0] > chance_interval(num_classes, n)[1]
    recognisable = above_chance and (floor is None or discriminability >= floor)
    if null_fid is None or math.isnan(fid.hi) or math.isnan(null_fid.lo):
        return recognisable
    return recognisable and fid.hi < null_fid.lo


def class_floor(
    rungs: Sequence[dict], ceiling: float | None, num_classes: int, judge: Judge
) -> float | None:
    """The discriminability a set must reach to generate, read off the calibration ladder
    (pipeline.ladder): the lowest `judge` discriminability among the rungs whose images still
    carry their class, i.e. whose classification accuracy score is at least halfway from chance
    (1/K) to the real images' `ceiling`. A set below it is less recognisable to the judge than
    the most degraded real images a classifier can still learn the classes from. None without
    a ladder or a ceiling."""
    if ceiling is None:
        return None
    half = (1 / num_classes + ceiling) / 2
    kept = [r[judge.discriminability] for r in rungs
            if r.get("cas") is not None and r["cas"] >= half
            and r.get(judge.discriminability) is not None]  # fmt: skip
    return min(kept) if kept else None


def gated(claim: Claim, a_generates: bool | None, b_generates: bool | None) -> Verdict | None:
    """The verdict a claim about samples gets when a side does not generate; None when the usual
    rule applies (both generate, a side is unknown, or the claim is not about samples)."""
    if not {claim.a.metric, claim.b.metric} <= SAMPLE_METRICS:
        return None
    if a_generates is False and b_generates is False:
        return NEITHER
    if a_generates is False and b_generates:
        return ONLY_B
    if b_generates is False and a_generates:
        return ONLY_A
    return None


def verdict_single(a: Interval | None, b: Interval | None, better: Better) -> Verdict:
    """The one-seed rule (module docstring)."""
    if a is None or b is None:
        return "not run"
    if any(math.isnan(x) for x in (a.lo, a.hi, b.lo, b.hi)):
        return "inconclusive"
    a_better = a.hi < b.lo if better == "lower" else a.lo > b.hi
    b_better = b.hi < a.lo if better == "lower" else b.lo > a.hi
    if a_better:
        return "reproduced"
    if b_better:
        return "not reproduced"
    return "inconclusive"


def verdict_seeds(
    differences: Sequence[float] | None, better: Better
) -> tuple[Verdict, Interval | None]:
    """The several-seed rule on per-seed differences a - b (module docstring)."""
    if not differences:
        return "not run", None
    ci = mean_interval(differences)
    if math.isnan(ci.lo):
        return "inconclusive", ci
    if (better == "lower" and ci.hi < 0) or (better == "higher" and ci.lo > 0):
        return "reproduced", ci
    if (better == "lower" and ci.lo > 0) or (better == "higher" and ci.hi < 0):
        return "not reproduced", ci
    return "inconclusive", ci


Lookup = Callable[[Quantity], Interval | None]


def judge_claims(
    claim_list: Sequence[Claim], lookup: Lookup, generating: Callable[[Judge, str], bool | None]
) -> list[Result]:
    """One-seed verdicts, each judge's and the agreed one, with `lookup` giving a side's
    interval and `generating(judge, row)` whether a row's set generates by that judge's numbers
    (`generates`; None: unknown)."""
    out = []
    for claim in claim_list:
        readings = []
        for judge in JUDGES:
            c = read_by(claim, judge)
            if c is None:
                readings.append(None)
                continue
            a, b = lookup(c.a), lookup(c.b)
            if c.a.metric == "label_guarantee":
                v: Verdict = "not run" if a is None else (
                    "reproduced" if a.value == 1.0 else "not reproduced")  # fmt: skip
            elif a is None or b is None:
                v = "not run"
            else:
                gen = (generating(judge, c.a.row), generating(judge, c.b.row))
                v = gated(c, *gen) or verdict_single(a, b, c.better)
            readings.append(Reading(a, b, v))
        out.append(Result(claim, tuple(readings)))
    return out
