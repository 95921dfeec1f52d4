"""pipeline.report and the `report` stage: listed rounds/methods only, self-contained HTML,
published numbers only where dataset and metric match, deterministic bytes."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from pipeline import metrics as M
from pipeline import report as R
from pipeline.figures import save_grid
from pipeline.panels import class_rows, interpolation_strips
from pipeline.samples import SampleSet
from stages.cli import app


def test_chain_order_follows_prev_links():
    assert R.chain_order({"r2": "r1", "r1": "r0", "r3": "r2"}) == ["r1", "r2", "r3"]
    assert R.chain_order({}) == []


def _eval_json(fid: float, inception_is: float | None = None) -> dict:
    out = {
        M.JUDGE_FID: fid,
        M.JUDGE_IS: 2.0,
        M.JUDGE_IS_STD: 0.1,
        M.PRECISION: 0.5,
        M.RECALL: 0.4,
        M.DISCRIMINABILITY: 0.9,
        M.DIVERSITY: 0.3,
        M.DIVERSE_FRACTION: 0.8,
        M.INTERPOLATION_ERROR: None,
        M.NUM_HARD: 20,
        M.NUM_SOFT: 0,
        M.INCEPTION_IS: inception_is,
        M.INCEPTION_STATUS: "computed" if inception_is else "not computed: test",
    }
    return out


def test_published_numbers_only_where_dataset_and_inception_metric_match():
    with_is = R.Entry("acgan", "method", _eval_json(1.0, inception_is=7.5))
    without = R.Entry("acgan", "method", _eval_json(1.0))
    assert R.published_table("digits", [with_is]) is None
    assert R.published_table("cifar10", [without]) is None
    headers, rows = R.published_table("cifar10", [with_is])
    assert rows == [
        ["acgan", "cifar10", M.INCEPTION_IS, "8.25 ± 0.07", "7.50", "Odena et al. 2017, Table 1"]
    ]


def test_method_table_marks_missing_values_and_hides_inception_columns_when_not_computed():
    entries = [
        R.Entry(
            "r1", "round", _eval_json(3.0), accuracy=0.9, sampler="r0", seconds_per_sample=0.25
        ),
        R.Entry("real", "real", _eval_json(0.5)),
    ]
    headers, rows = R.method_table(entries)
    assert "judge-FID ↓" in headers and not any("Inception" in h for h in headers)
    assert rows[0][0] == "STIC r1 (fakes by r0)" and rows[0][1] == "0.900"
    assert rows[1][1] == R.MISSING  # the real floor has no classifier of its own
    assert rows[0][headers.index("interp. error ↓")] == R.MISSING
    assert rows[0][headers.index("s / sample")] == "0.25"


def test_panels_lay_out_hard_samples_by_class_and_soft_ones_by_pair():
    imgs = torch.arange(6, dtype=torch.uint8).view(6, 1, 1, 1).expand(6, 1, 4, 4).contiguous()
    targets = torch.tensor(
        [[1.0, 0, 0], [0, 1.0, 0], [1.0, 0, 0], [0.3, 0.7, 0], [0.8, 0.2, 0], [0, 0.5, 0.5]]
    )
    s = SampleSet(imgs, targets, "t", ("a", "b", "c"))
    grid, labels = class_rows(s, 2)
    assert labels == ["a", "b", "c"]
    assert grid[:, 0, 0, 0].tolist() == [0, 2, 1, 128, 128, 128]  # grey where missing
    probs = torch.full((6, 3), 1 / 3, dtype=torch.float64)
    strips = interpolation_strips(s, probs, max_pairs=5, per_strip=9)
    assert [label for label, _, _ in strips] == ["a|b", "b|c"]
    assert strips[0][1][:, 0, 0, 0].tolist() == [3, 4]  # sorted by the weight of "a"
    assert strips[0][2][0].startswith("λ=0.30")


# ----------------------------------------------------------------- the report stage


@pytest.fixture
def report_tree(tiny_params, tmp_path):
    """Evaluation outputs for r1, r2, acgan, real plus stale files of unlisted r9 and oldgan."""
    p = copy.deepcopy(tiny_params)
    p["rounds"] = {"r1": {"prev": "r0"}, "r2": {"prev": "r1"}}
    p["eval"]["methods"] = ["acgan"]
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(p, sort_keys=False))
    ev, met, tim, fig = (tmp_path / d for d in ("eval", "metrics", "timing", "figures"))
    for d in (ev, met, tim, fig):
        d.mkdir()
    img = torch.zeros(4, 1, 8, 8, dtype=torch.uint8)
    for i, name in enumerate(["r1", "r2", "acgan", "real", "r9", "oldgan"]):
        soft = 10 if name.startswith("r") and name != "real" else 0  # rounds carry soft fakes
        (ev / f"{name}.json").write_text(json.dumps({**_eval_json(10.0 + i), M.NUM_SOFT: soft}))
        (tim / f"eval_{name}.json").write_text(json.dumps({"eval_seconds": 1.0}))
        save_grid(img, fig / f"{name}_samples.png", rows=1, title=name)
        save_grid(img, fig / f"{name}_interp.png", rows=1, title=name)
    for name, acc in (("r0", 0.8), ("r1", 0.85), ("r2", 0.9), ("r9", 0.1), ("acgan", 0.7)):
        (met / f"{name}.json").write_text(json.dumps({"test_accuracy": acc}))
        (tim / f"synth_{name}.json").write_text(json.dumps({"seconds_per_sample": 0.5}))
    return tmp_path, params


def _run_report(root: Path, params: Path):
    args = [
        "report",
        "--eval",
        f"{root}/eval/{{name}}.json",
        "--classifier-metrics",
        f"{root}/metrics/{{name}}.json",
        "--round-timing",
        f"{root}/timing/synth_{{name}}.json",
        "--method-timing",
        f"{root}/timing/{{name}}.json",
        "--eval-timing",
        f"{root}/timing/eval_{{name}}.json",
        "--grid",
        f"{root}/figures/{{name}}_samples.png",
        "--strips",
        f"{root}/figures/{{name}}_interp.png",
        "--rounds-figure",
        f"{root}/out/rounds.png",
        "--md",
        f"{root}/out/report.md",
        "--html",
        f"{root}/out/report.html",
        "--params",
        str(params),
    ]
    return CliRunner().invoke(app, args)


def test_report_reads_exactly_the_listed_rounds_and_methods(report_tree):
    root, params = report_tree
    result = _run_report(root, params)
    assert result.exit_code == 0, result.output
    md = (root / "out/report.md").read_text()
    assert "STIC r1 (fakes by r0)" in md and "STIC r2 (fakes by r1)" in md and "| acgan |" in md
    assert "r9" not in md and "oldgan" not in md
    assert "0.850" in md and "0.900" in md and "0.800" in md  # r1, r2 and r0 accuracies
    assert "](../figures/r1_samples.png)" in md  # relative to the report's folder
    assert (root / "out/rounds.png").read_bytes().startswith(b"\x89PNG")


def test_report_html_is_self_contained_and_bytes_are_deterministic(report_tree):
    root, params = report_tree
    assert _run_report(root, params).exit_code == 0
    first = {n: (root / "out" / n).read_bytes() for n in ("report.md", "report.html", "rounds.png")}
    assert _run_report(root, params).exit_code == 0
    second = {n: (root / "out" / n).read_bytes() for n in first}
    assert first == second
    page = first["report.html"].decode()
    # rounds plot + 4 sample grids + strips of the two rounds (acgan has no soft samples)
    assert page.count("data:image/png;base64,") == 7
    assert 'src="http' not in page and "<link" not in page and "<script" not in page


def test_report_fails_clearly_when_a_listed_round_was_not_evaluated(report_tree):
    root, params = report_tree
    (root / "eval/r2.json").unlink()
    result = _run_report(root, params)
    assert result.exit_code == 1
    assert "r2.json: not found" in result.output


def test_evaluate_stage_writes_metrics_figures_and_timing(tiny_params, tmp_path):
    """`cgen evaluate` end to end on a tiny judge and a sample set with hard and soft samples."""
    from conftest import make_image_set

    from pipeline.checkpoint import save_checkpoint
    from pipeline.data import save_image_set
    from pipeline.models import ModelConfig, build_model, model_args
    from pipeline.samples import hard_targets, save_samples

    p = copy.deepcopy(tiny_params)
    p["tracking"]["enabled"] = False
    p["eval"].update(kid_subset_size=10, kid_subsets=5, diversity_pairs=5)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(p, sort_keys=False))
    train = make_image_set(n_per_class=10, classes=3, size=8, seed=0)
    save_image_set(train, tmp_path / "train.pt")
    torch.manual_seed(0)
    judge_cfg = ModelConfig(**p["judge"]["model"])  # the judge the parameters describe
    args = model_args(judge_cfg, in_channels=1, num_outputs=3)
    save_checkpoint(tmp_path / "judge.pt", build_model(args), args, {})
    targets = torch.cat([hard_targets(train.labels, 3), torch.tensor([[0.4, 0.6, 0.0]] * 5)])
    images = torch.cat([train.images, train.images[:5]])
    save_samples(SampleSet(images, targets, "toy", train.class_names), tmp_path / "toy.pt")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--name",
            "toy",
            "--samples",
            str(tmp_path / "toy.pt"),
            "--train",
            str(tmp_path / "train.pt"),
            "--judge",
            str(tmp_path / "judge.pt"),
            "--out",
            str(out / "toy.json"),
            "--timing",
            str(out / "eval_toy.json"),
            "--grid",
            str(out / "toy_samples.png"),
            "--strips",
            str(out / "toy_interp.png"),
            "--params",
            str(params),
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "toy.json").read_text())
    assert metrics[M.NUM_HARD] == 30 and metrics[M.NUM_SOFT] == 5
    assert metrics[M.INTERPOLATION_ERROR] is not None and metrics[M.JUDGE_FID] is not None
    assert json.loads((out / "eval_toy.json").read_text())["eval_seconds"] > 0
    for name in ("toy_samples.png", "toy_interp.png"):
        assert (out / name).read_bytes().startswith(b"\x89PNG")
