"""The verdict rules, the intervals they rest on, and the claims on a run's row names."""

from __future__ import annotations

import math

import pytest
import torch

from pipeline import claims as C
from pipeline.claim_rows import claims as all_claims
from pipeline.metrics import bootstrap_interval

Iv = C.Interval


@pytest.mark.parametrize(
    ("a", "b", "better", "verdict"),
    [
        (Iv(10, 8, 12), Iv(30, 25, 35), "lower", "reproduced"),  # clear win
        (Iv(30, 25, 35), Iv(10, 8, 12), "lower", "not reproduced"),  # clear loss
        (Iv(10, 8, 20), Iv(15, 12, 18), "lower", "inconclusive"),  # overlap
        (Iv(0.9, 0.85, 0.95), Iv(0.5, 0.4, 0.6), "higher", "reproduced"),
        (Iv(0.5, 0.4, 0.6), Iv(0.9, 0.85, 0.95), "higher", "not reproduced"),
        (Iv(1.0, math.nan, math.nan), Iv(2.0, 1.5, 2.5), "lower", "inconclusive"),
        (None, Iv(2.0, 1.5, 2.5), "lower", "not run"),
    ],
)
def test_single_seed_verdicts(a, b, better, verdict):
    assert C.verdict_single(a, b, better) == verdict


def test_seed_verdicts_use_the_t_interval_of_the_differences():
    assert C.verdict_seeds([-5.0, -6.0, -4.5], "lower")[0] == "reproduced"
    assert C.verdict_seeds([5.0, 6.0, 4.5], "lower")[0] == "not reproduced"
    assert C.verdict_seeds([-5.0, 6.0, 1.0], "lower")[0] == "inconclusive"
    assert C.verdict_seeds([0.1, 0.2, 0.15], "higher")[0] == "reproduced"
    assert C.verdict_seeds([-1.0], "lower")[0] == "inconclusive"  # one seed: no interval
    assert C.verdict_seeds([], "lower")[0] == "not run"
    _, ci = C.verdict_seeds([1.0, 2.0, 3.0], "lower")
    assert ci.value == 2.0 and ci.lo == pytest.approx(2 - 4.303 * 1 / math.sqrt(3), abs=1e-3)


def test_wilson_interval():
    lo, hi = C.wilson(90, 100)
    assert 0.82 < lo < 0.84 and 0.94 < hi < 0.95  # the textbook values 0.825, 0.944
    assert C.wilson(0, 10)[0] == 0 and C.wilson(10, 10)[1] == pytest.approx(1)


def test_bootstrap_interval_covers_a_known_mean_at_about_the_stated_rate():
    gen = torch.Generator().manual_seed(0)
    hits, trials = 0, 200
    for _ in range(trials):
        x = torch.randn(60, generator=gen, dtype=torch.float64) + 3.0
        lo, hi = bootstrap_interval(lambda idx, x=x: float(x[idx].mean()), 60, 200, 0.95, gen)
        hits += lo <= 3.0 <= hi
    assert 0.88 <= hits / trials <= 0.99  # 95% nominal; the basic bootstrap runs a bit short


def test_claims_name_this_runs_rows_and_a_missing_row_is_not_run():
    claims = all_claims(["r1", "r2", "r3"], {})
    by_id = {c.id: c for c in claims}
    assert by_id["stic_rounds_quality"].a.row == "r3" and by_id["stic_rounds_quality"].b.row == "r1"
    assert by_id["score_beats_stic"].b.row == "r3"
    lookup = {
        ("r3", "judge_fid"): Iv(20, 15, 25),
        ("r1", "judge_fid"): Iv(50, 45, 60),
        ("r3", "judge_b_fid"): Iv(5, 4, 6),
        ("r1", "judge_b_fid"): Iv(9, 8, 10),
    }
    results = C.judge_claims(claims, lambda q: lookup.get((q.row, q.metric)), lambda j, row: True)
    verdicts = {r.claim.id: r.verdict for r in results}
    assert verdicts["stic_rounds_quality"] == "reproduced"
    assert verdicts["score_beats_stic"] == "not run"
    assert verdicts["regene_labels"] == "not run"


def test_a_verdict_needs_both_judges_and_reads_judge_dependent_where_they_differ():
    by_id = {c.id: c for c in all_claims(["r1", "r2", "r3"], {})}
    picked = [by_id[k] for k in ("stic_rounds_quality", "stic_rounds_accuracy")]
    lookup = {
        ("r3", "judge_fid"): Iv(20, 15, 25),
        ("r1", "judge_fid"): Iv(50, 45, 60),
        ("r3", "acc"): Iv(0.98, 0.97, 0.99),
        ("r0", "acc"): Iv(0.9, 0.88, 0.92),
    }
    for b_r3, expected in ((Iv(5, 4, 6), "reproduced"), (Iv(9, 8, 10), C.JUDGE_DEPENDENT),
                           (Iv(30, 25, 35), C.JUDGE_DEPENDENT)):  # fmt: skip
        lookup |= {("r3", "judge_b_fid"): b_r3, ("r1", "judge_b_fid"): Iv(9, 8.5, 10)}
        quality, accuracy = C.judge_claims(picked, lambda q, t=lookup: t.get((q.row, q.metric)),
                                           lambda j, row: True)  # fmt: skip
        assert quality.verdict == expected, b_r3
        assert [r.verdict for r in quality.readings][0] == "reproduced"
        # a classifier's accuracy has no second judge: judge A's verdict alone
        assert accuracy.readings[1] is None and accuracy.verdict == "reproduced"
    # judge B's own generation test gates its reading
    gen = {(C.JUDGE_A, "r3"): True, (C.JUDGE_A, "r1"): True, (C.JUDGE_B, "r3"): True,
           (C.JUDGE_B, "r1"): False}  # fmt: skip
    lookup[("r3", "judge_b_fid")] = Iv(5, 4, 6)
    (quality,) = C.judge_claims(
        picked[:1], lambda q: lookup.get((q.row, q.metric)), lambda j, row: gen[(j, row)]
    )
    assert [r.verdict for r in quality.readings] == ["reproduced", C.ONLY_A]
    # only the claimed side generating supports the claim as "reproduced" does
    assert quality.verdict == "reproduced"


def test_a_judge_finding_one_side_alone_generating_agrees_with_the_matching_verdict():
    assert C.agreed(["not reproduced", C.ONLY_B]) == "not reproduced"
    assert C.agreed([C.ONLY_A, "reproduced"]) == "reproduced"
    assert C.agreed(["reproduced", C.ONLY_B]) == C.JUDGE_DEPENDENT
    assert C.agreed(["inconclusive", C.ONLY_A]) == C.JUDGE_DEPENDENT
    assert C.agreed([C.ONLY_B, C.ONLY_B]) == C.ONLY_B  # both: the finer reading stays
    assert C.agreed([C.NEITHER, "not reproduced"]) == C.JUDGE_DEPENDENT


def test_every_paper_claim_quotes_its_source_in_docs_methods():
    """A paper claim carries the paper's words; docs/methods.md quotes them in context."""
    from pathlib import Path

    docs = " ".join((Path(__file__).parents[1] / "docs" / "methods.md").read_text().split())
    claims = all_claims(["r1", "r2", "r3"], {})
    assert {c.kind for c in claims} == {"paper", "ablation"}
    for c in claims:
        if c.kind == "paper":
            assert c.source and " ".join(c.source.split()) in docs, c.id


def test_compare_reads_only_what_a_targeted_experiment_made_itself():
    """An experiment run with --target keeps its base commit's entries for the other stages:
    those whose recorded params differ from the experiment's, and everything downstream, were
    not made by it (their files are another seed's)."""
    from stages.compare import not_made

    def entry(params, deps=(), outs=()):
        return {"params": {"params.yaml": params}, "deps": [{"path": d} for d in deps],
                "outs": [{"path": o} for o in outs]}  # fmt: skip

    params = {"runtime": {"seed": 1}, "data": {"size": 16}, "stic": {"rounds": {"r1": {"n": 2}}}}
    lock = {"stages": {
        "prepare": entry({"data": {"size": 16}}, outs=["data/train.pt"]),
        "r1": entry({"runtime": {"seed": 1}, "stic.rounds.r1": {"n": 2}}, ["data/train.pt"],
                    ["data/models/r1.pt"]),
        "r2": entry({"runtime": {"seed": 0}}, ["data/models/r1.pt"], ["data/models/r2.pt"]),
        "eval_r2": entry({}, ["data/models/r2.pt"], ["reports/eval"]),
        "eval_r1": entry({"eval": 1}, ["data/models/r1.pt"], ["reports/eval_r1.json"]),
        "sample_r1": entry({}, ["data/models/r1.pt"], ["data/samples/r1.pt"]),
        # an entry of a stage since removed, with old params, naming a file a live stage makes:
        # that file, and what reads it, were made
        "synthesize": entry({"runtime": {"seed": 7}}, ["data/train.pt"], ["data/models/r1.pt"]),
    }}  # fmt: skip
    stale = not_made(lock, params)
    # r2 ran with seed 0 (the base commit's), eval_r2 downstream of it, eval_r1 reads a key
    # the experiment's params do not have; prepare, r1 and sample_r1 match the experiment's
    assert stale == {"data/models/r2.pt", "reports/eval", "reports/eval_r1.json"}
    params["runtime"]["seed"] = 0  # the base commit itself: r1 was not made with seed 0
    assert "data/models/r1.pt" in not_made(lock, params)


def test_the_generation_test():
    null = Iv(1800, 1750, 1850)
    # digits: discriminability far above 1/10 and a FID far below the null's
    assert C.generates(Iv(20, 15, 25), null, 0.95, 200, 10) is True
    # noise that the judge calls chance, even with a FID below the null's
    assert C.generates(Iv(1500, 1400, 1600), null, 0.11, 200, 10) is False
    # above chance, but its FID interval reaches the null's
    assert C.generates(Iv(1700, 1600, 1760), null, 0.5, 200, 10) is False
    # no null to compare with: discriminability alone
    assert C.generates(Iv(40, 30, 50), None, 0.9, 200, 10) is True
    assert C.generates(None, null, 0.9, 200, 10) is None
    lo, hi = C.chance_interval(10, 200)
    assert lo < 0.1 < hi and hi < 0.16


def test_a_claim_between_sets_that_do_not_both_generate_is_not_judged_by_the_rule():
    by_id = {c.id: c for c in all_claims(["r1", "r2", "r3"], {})}
    noise = {"r3": Iv(1590, 1500, 1620), "r1": Iv(1728, 1650, 1800), "jem": Iv(18, 14, 24)}
    lookup = {(row, "judge_fid"): iv for row, iv in noise.items()}
    lookup[("r3", "acc")] = Iv(0.98, 0.96, 0.99)
    lookup[("r0", "acc")] = Iv(0.97, 0.95, 0.98)
    gen = {"r1": False, "r3": False, "jem": True}
    picked = [by_id[k] for k in ("stic_rounds_quality", "stic_matches_jem", "stic_rounds_accuracy")]
    lookup |= {(row, "judge_b_fid"): iv for row, iv in noise.items()}
    results = C.judge_claims(
        picked, lambda q: lookup.get((q.row, q.metric)), lambda j, row: gen.get(row)
    )
    verdicts = {r.claim.id: r.verdict for r in results}
    # the old rule called this "reproduced" (the intervals do not overlap): two sets of noise
    assert C.verdict_single(noise["r3"], noise["r1"], "lower") == "reproduced"
    assert verdicts["stic_rounds_quality"] == C.NEITHER
    assert verdicts["stic_matches_jem"] == C.ONLY_B
    assert verdicts["stic_rounds_accuracy"] == "inconclusive"  # about classifiers: no gate


def test_across_seeds_a_claim_rests_on_the_seeds_where_both_sides_generate():
    from pipeline.compare import metric_interval, seeds_verdict

    def row(fid, disc):
        return {"judge_fid": fid, "judge_fid_lo": fid * 0.8, "judge_fid_hi": fid * 1.2,
                "discriminability": disc, "num_hard_samples": 200}  # fmt: skip

    null = row(1800, 0.1)
    runs = {
        "seed-0": {"r1": row(30, 0.9), "jem": row(20, 0.95), "null_stic": null, "null_jem": null},
        "seed-1": {"r1": row(25, 0.92), "jem": row(22, 0.94), "null_stic": null, "null_jem": null},
        "seed-2": {"r1": row(1500, 0.1), "jem": row(18, 0.96), "null_stic": null,
                   "null_jem": null},
    }  # fmt: skip
    claim = next(c for c in all_claims(["r1"], {}) if c.id == "stic_matches_jem")
    null_of = {"r1": "null_stic", "jem": "null_jem"}.get
    verdict, ci, n = seeds_verdict(runs, claim, null_of, 10)
    assert n == 2 and ci.value == pytest.approx(6.5)  # seed-2's r1 does not generate: left out
    for seed in ("seed-0", "seed-1"):
        runs[seed]["r1"] = row(1400, 0.1)
    assert seeds_verdict(runs, claim, null_of, 10)[0] == C.ONLY_B
    # a proportion's interval over three seeds stays inside [0, 1]
    runs = {"a": {"jem": {"discriminability": 0.99}}, "b": {"jem": {"discriminability": 1.0}},
            "c": {"jem": {"discriminability": 0.8}}}  # fmt: skip
    iv = metric_interval(runs, "jem", "discriminability")
    assert iv.hi == 1.0 and iv.lo > 0


def test_the_generation_floor_is_read_off_the_rungs_that_keep_their_class():
    rungs = [
        {"cas": 0.80, "discriminability": 0.90, "judge_b_discriminability": 0.99},  # keeps
        {"cas": 0.60, "discriminability": 0.30, "judge_b_discriminability": 0.75},  # keeps
        {"cas": 0.40, "discriminability": 0.15, "judge_b_discriminability": 0.70},  # lost
    ]
    # halfway from chance (0.1) to the real images' 0.9 is 0.5: the second rung is the weakest kept
    assert C.class_floor(rungs, 0.9, 10, C.JUDGE_A) == 0.30
    assert C.class_floor(rungs, 0.9, 10, C.JUDGE_B) == 0.75
    assert C.class_floor(rungs, None, 10, C.JUDGE_A) is None  # no ceiling, no floor
    assert C.class_floor(rungs[2:], 0.9, 10, C.JUDGE_A) is None  # no rung keeps its class
    null = Iv(1800, 1750, 1850)
    # above chance and below the null, but less recognisable than the floor: does not generate
    assert C.generates(Iv(500, 450, 550), null, 0.25, 200, 10) is True
    assert C.generates(Iv(500, 450, 550), null, 0.25, 200, 10, floor=0.30) is False
    assert C.generates(Iv(500, 450, 550), null, 0.35, 200, 10, floor=0.30) is True
