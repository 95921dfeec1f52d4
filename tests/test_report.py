"""The report: intervals behind every verdict, the document, its rendering, the headline file."""

from __future__ import annotations

import math

import torch

from pipeline import claims as C
from pipeline import metrics as M
from pipeline import report as R
from pipeline.claim_rows import claims as all_claims
from pipeline.figures import save_grid
from pipeline.panels import class_rows, interpolation_strips
from pipeline.samples import SampleSet


def row(name, group="method", fid=None, lo=None, hi=None, disc=None, n=200, **extra):
    """A set whose judge B reads it as judge A does, at a tenth of the FID."""
    ev = {M.JUDGE_FID: fid, M.JUDGE_FID_LO: lo, M.JUDGE_FID_HI: hi, M.DISCRIMINABILITY: disc,
          M.NUM_HARD: n, M.EVAL_COUNT: n, **extra}  # fmt: skip
    if lo is not None:
        ev |= {"judge_b_fid": fid / 10, "judge_b_fid_lo": lo / 10, "judge_b_fid_hi": hi / 10,
               "judge_b_discriminability": disc}  # fmt: skip
    return R.Row(name, group, name.upper(), ev, {})


def test_intervals_per_metric_kind():
    r = row("a", fid=20.0, lo=15.0, hi=26.0, disc=0.9, n=100)
    fid = R.interval(r, M.JUDGE_FID)
    assert (fid.value, fid.lo, fid.hi) == (20.0, 15.0, 26.0)
    disc = R.interval(r, M.DISCRIMINABILITY)
    assert disc.lo < 0.9 < disc.hi and (disc.lo, disc.hi) == C.wilson(90, 100)
    acc = R.interval(R.Row("r", "round", "r", {}, {"classifier_test_accuracy": 0.98}), "acc", 359)
    assert acc.hi - acc.lo > 0.02  # 359 test images cannot separate 1-image differences
    assert R.interval(None, M.JUDGE_FID) is None and R.interval(r, "missing_key") is None


def test_report_blocks_put_the_verdicts_first_and_say_what_was_not_run(tmp_path):
    rows = [
        row("r1", "round", fid=300.0, lo=280.0, hi=320.0, disc=0.3),
        row("r2", "round", fid=40.0, lo=35.0, hi=46.0, disc=0.9),
        row("stic", "method", fid=40.0, lo=35.0, hi=46.0, disc=0.9),
        row("jem", "method", fid=25.0, lo=22.0, hi=28.0, disc=0.95),
        row("null_stic", "reference", fid=900.0, lo=850.0, hi=950.0, disc=0.1),
        row("real", "real", fid=2.0, lo=1.5, hi=2.6, disc=0.99,
            **{M.INCEPTION_STATUS: "not computed: x"}),
    ]  # fmt: skip
    by_name = {r.name: r for r in rows}
    lookup = R.claim_lookup(by_name, 359)
    generating = {j: R.generation(by_name, lambda name: "null_stic", 10, j) for j in C.JUDGES}
    gen_a = generating[C.JUDGE_A]
    assert gen_a("r2") is True and gen_a("r1") is True and gen_a("real") is None
    results = C.judge_claims(
        all_claims(["r1", "r2"], {}), lookup, lambda j, name: generating[j](name)
    )
    verdicts = {r.claim.id: r.verdict for r in results}
    assert verdicts["stic_rounds_quality"] == "reproduced"  # 40 [35, 46] vs 300 [280, 320]
    assert verdicts["stic_matches_jem"] == "not reproduced"  # 40 [35, 46] vs 25 [22, 28]
    assert verdicts["score_beats_stic"] == "not run"
    blocks = R.report_blocks(
        dataset="digits", rows=rows, chain=["r1", "r2"], r0_accuracy=0.99, test_images=359,
        claim_results=results, figures=R.Figures(), generating=generating,
        data_files={"sklearn/datasets/data/digits.csv.gz": {"bytes": 57523, "sha256": "09f6"}},
    )  # fmt: skip
    headings = [b[1] for b in blocks if b[0] == "h2"]
    assert headings[0] == "Verdicts" and "Methods" in headings and "Memorisation" in headings
    assert [b[1] for b in blocks if b[0] == "h3"] == ["Paper claims", "Ablation hypotheses"]
    paper, ablations = [b for b in blocks if b[0] == "table"][:2]
    assert paper[1][-1] == "verdict" and len(paper[2]) + len(ablations[2]) == len(results)
    quality = paper[2][0]
    assert quality[0] == "STIC's rounds improve sample quality" and "“" in quality[1]
    assert quality[5:8] == ["40.0 [35.0, 46.0]", "300.0 [280.0, 320.0]", "reproduced"]
    assert quality[8:] == ["4.0 [3.5, 4.6]", "30.0 [28.0, 32.0]", "reproduced", "reproduced"]
    accuracy = paper[2][1]
    assert accuracy[8:11] == ["–", "–", "–"]  # judge B does not read a classifier's accuracy
    text = R.render_markdown(blocks, tmp_path)
    assert "This report rests on 1 seed" in text and "n = 200" in text
    assert (
        "Data read from `sklearn/datasets/data/digits.csv.gz` (57,523 bytes, SHA-256 `09f6`)"
        in text
    )
    assert "[Verdicts](#verdicts)" in text  # the table of contents
    page = R.render_html(blocks, lambda p: p.read_bytes(), tmp_path)
    assert '<h2 id="stic-rounds">' in page and '<a href="#stic-rounds">' in page


def test_the_data_note_lists_a_few_files_and_counts_the_rest():
    files = {f"c/{i}.png": {"bytes": 10, "sha256": f"{i:064x}"} for i in range(10)}
    note = R.data_note(files)
    assert note.count("SHA-256") == R.DATA_FILES_SHOWN and "and 6 more" in note


def test_grids_are_linked_thumbnails_and_figures_are_inlined(tmp_path):
    png = tmp_path / "figures" / "eval" / "r1_samples.png"
    save_grid(torch.zeros(4, 1, 8, 8, dtype=torch.uint8), png, rows=2, title="t")
    blocks = [("h1", "T"), ("thumbs", [(png, "STIC r1: hard samples")]), ("img", png, "fig")]
    page = R.render_html(blocks, lambda p: p.read_bytes(), tmp_path)
    assert '<a href="figures/eval/r1_samples.png"><img loading="lazy"' in page
    assert page.count("data:image/png;base64,") == 1  # the grid is linked, the figure inlined
    md = R.render_markdown(blocks, tmp_path)
    assert "- [STIC r1: hard samples](figures/eval/r1_samples.png)" in md


def test_the_report_figures_draw_intervals_and_references(tmp_path):
    from pipeline.figures import save_method_comparison, save_round_panels

    rows = {
        "r1": row("r1", "round", fid=300.0, lo=280.0, hi=320.0, disc=0.3),
        "jem": row("jem", fid=25.0, lo=22.0, hi=28.0, disc=0.95),
        "null_stic": row("null_stic", "reference", fid=900.0, lo=850.0, hi=950.0, disc=0.1),
        "real": row("real", "real", fid=2.0, lo=1.5, hi=2.6, disc=0.99),
    }
    panels = R.round_panels(rows, ["r1"], 0.97, 359, "null_stic", (0.07, 0.14))
    fid = panels[0]
    assert fid.scale == "log" and fid.points[1] == R.F.Point(300.0, 280.0, 320.0)
    assert {label for label, _, _ in fid.references} == {"null sampler", "JEM", "real data"}
    assert panels[1].scale == "unit" and panels[1].band == (0.07, 0.14)
    assert panels[3].points[0].value == 0.97  # r0's accuracy, with its Wilson interval
    marks = R.method_marks(list(rows.values()))
    assert [m.kind for m in marks] == ["method", "null", "real"]  # rounds are not methods
    save_round_panels(["r0", "r1"], panels, tmp_path / "rounds.png", "t")
    save_method_comparison(marks, (0.1, 0.07, 0.14), tmp_path / "methods.png", "t")
    assert (tmp_path / "rounds.png").stat().st_size > 1000
    assert (tmp_path / "methods.png").stat().st_size > 1000


def test_published_numbers_only_where_dataset_and_inception_metric_match():
    rows = {"acgan": row("acgan", **{M.INCEPTION_IS: 7.5})}
    assert R.published_table("digits", rows) is None
    table = R.published_table("cifar10", rows)
    assert table[2][0][3] == "8.25 ± 0.07" and table[2][0][4] == "7.50"


def test_html_is_self_contained_and_markdown_paths_are_relative(tmp_path):
    png = tmp_path / "figures" / "g.png"
    save_grid(torch.zeros(4, 1, 8, 8, dtype=torch.uint8), png, rows=2, title="t")
    blocks = [("h1", "T"), ("p", "x < y"), ("table", ["a", "verdict"], [["1", "reproduced"]]),
              ("img", png, "grid")]  # fmt: skip
    html = R.render_html(blocks, lambda p: p.read_bytes())
    assert "data:image/png;base64," in html and 'src="http' not in html and "x &lt; y" in html
    assert 'class="verdict-reproduced"' in html
    md = R.render_markdown(blocks, tmp_path)
    assert "![grid](figures/g.png)" in md


def test_summary_holds_headline_metrics_only():
    rows = [row("stic", fid=40.123456, disc=0.9), row("jem", fid=25.0, disc=0.95)]
    out = R.summary(rows, ("stic", "jem", "absent"))
    assert out == {"stic": {"judge_fid": 40.1235, "discriminability": 0.9},
                   "jem": {"judge_fid": 25.0, "discriminability": 0.95}}  # fmt: skip


def test_panels_lay_out_hard_samples_by_class_and_soft_ones_by_pair():
    images = torch.arange(8, dtype=torch.uint8).view(8, 1, 1, 1).expand(8, 1, 4, 4).contiguous()
    hard = [[1.0, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 1]]
    soft = [[0.3, 0.7, 0], [0.8, 0.2, 0], [0, 0.5, 0.5], [0.1, 0.9, 0]]
    targets = torch.tensor(hard + soft)
    samples = SampleSet(images, targets, "x", ("a", "b", "c"))
    grid, labels = class_rows(samples, 2)
    assert labels == ["a", "b", "c"] and grid.shape == (6, 1, 4, 4)
    assert grid[0, 0, 0, 0] == 0 and grid[1, 0, 0, 0] == 2 and grid[3, 0, 0, 0] == 128
    probs = torch.full((8, 3), 1 / 3, dtype=torch.float64)
    strips = interpolation_strips(samples, probs, 2, 5)
    assert strips[0][0] == "a|b" and len(strips[0][1]) == 3  # three a|b mixes, sorted by lambda
    assert [c.split("\n")[0] for c in strips[0][2]] == ["λ=0.10", "λ=0.30", "λ=0.80"]
    assert math.isclose(float(strips[0][2][0].split("p=")[1]), 0.5)


def test_costs_are_matched_or_name_the_cheaper_side():
    """A claim's sides are matched when both costs lie within 10%; otherwise the side spending no
    more on either is named (its win holds at matched budgets), else the sides are unmatched."""
    assert R.matching([(333, 352), (201, 201)]) == "yes"
    assert R.matching([(70, 333), (201, 201)]) == "a cheaper"
    assert R.matching([(333, 63), (201, 1)]) == "b cheaper"
    assert R.matching([(333, 333), (352, 64)]) == "b cheaper"
    assert R.matching([(70, 333), (1011, 201)]) == "no"
    claim = next(c for c in all_claims(["r1", "r2", "r3"]) if c.a.row == "score_stic")
    rows = {
        "score_stic": row("score_stic", train_passes_per_image=70.4, passes_per_sample=201),
        "r3": row("r3", train_passes_per_image=333.0, passes_per_sample=201),
    }
    assert R.budgets(claim, rows) == ("70 vs 333; 201 vs 201", "a cheaper")
    del rows["r3"].eval["passes_per_sample"]
    assert R.budgets(claim, rows) == (R.MISSING, R.MISSING)
