"""End-to-end stage commands on a tiny config, through the same CLI that dvc.yaml calls."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from typer.testing import CliRunner

from pipeline.checkpoint import load_classifier
from stages.cli import app

runner = CliRunner()


def write_params(tmp_path, params) -> str:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return str(path)


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def prepared(tmp_path, tiny_params):
    params = write_params(tmp_path, tiny_params)
    d = tmp_path / "out"
    res = invoke(
        "prepare",
        "--train-out",
        d / "train.pt",
        "--test-out",
        d / "test.pt",
        "--metrics",
        d / "prepare.json",
        "--params",
        params,
    )
    assert res.exit_code == 0, res.output
    return params, d


def test_prepare_judge_baseline(prepared):
    params, d = prepared
    assert json.loads((d / "prepare.json").read_text())["image_size"] == 8
    for name in ("judge", "baseline"):
        res = invoke(
            name,
            "--train",
            d / "train.pt",
            "--test",
            d / "test.pt",
            "--out",
            d / f"{name}.pt",
            "--metrics",
            d / f"{name}.json",
            "--timing",
            d / f"{name}_t.json",
            "--figure",
            d / f"{name}.png",
            "--params",
            params,
        )
        assert res.exit_code == 0, res.output
        metrics = json.loads((d / f"{name}.json").read_text())
        assert 0.0 <= metrics["test_accuracy"] <= 1.0 and metrics["epochs"] == 1
        assert "train_seconds" in json.loads((d / f"{name}_t.json").read_text())
        model, payload = load_classifier(d / f"{name}.pt")  # rebuilt from the file alone
        assert model(torch.zeros(1, 1, 8, 8)).shape == (1, 10)
        assert name in payload["config"]


def test_bad_params_exit_2_and_touch_nothing(tmp_path, tiny_params):
    tiny_params["baseline"]["train"]["epochz"] = 3
    params = write_params(tmp_path, tiny_params)
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        [
            "prepare",
            "--train-out",
            str(out / "a.pt"),
            "--test-out",
            str(out / "b.pt"),
            "--metrics",
            str(out / "m.json"),
            "--params",
            params,
        ],
    )
    assert res.exit_code == 2
    assert "baseline.train.epochz: unknown key" in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not out.exists()


def test_params_check_command(tmp_path, tiny_params):
    assert invoke("params", "check", "--params", write_params(tmp_path, tiny_params)).exit_code == 0
    tiny_params["judge"]["train"]["lr"] = "fast"
    res = runner.invoke(app, ["params", "check", "--params", write_params(tmp_path, tiny_params)])
    assert res.exit_code == 2 and "judge.train.lr: expected a number" in res.output


def test_missing_dataset_message(tmp_path, tiny_params):
    tiny_params["data"].update(name="cifar10", root=str(tmp_path / "raw"), channels=3)
    (tmp_path / "raw").mkdir()
    res = runner.invoke(
        app,
        [
            "prepare",
            "--train-out",
            str(tmp_path / "a.pt"),
            "--test-out",
            str(tmp_path / "b.pt"),
            "--metrics",
            str(tmp_path / "m.json"),
            "--params",
            write_params(tmp_path, tiny_params),
        ],
    )
    assert res.exit_code == 1
    assert "dataset 'cifar10' not found: expected data_batch_1" in res.output
    assert not (tmp_path / "a.pt").exists()


def test_cuda_on_cpu_machine_is_refused(prepared, tiny_params, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    _, d = prepared
    tiny_params["runtime"]["device"] = "cuda"
    params = write_params(tmp_path, tiny_params)
    res = runner.invoke(
        app,
        [
            "judge",
            "--train",
            str(d / "train.pt"),
            "--test",
            str(d / "test.pt"),
            "--out",
            str(d / "j.pt"),
            "--metrics",
            str(d / "j.json"),
            "--timing",
            str(d / "jt.json"),
            "--figure",
            str(d / "j.png"),
            "--params",
            params,
        ],
    )
    assert res.exit_code == 2 and "CUDA is not available" in res.output
    assert not (d / "j.pt").exists()


def test_profile_apply_and_overrides(tmp_path, real_params):
    params = write_params(tmp_path, real_params)
    res = invoke("params", "overrides", "mnist_cpu", "--params", params)
    assert "-S 'data.name=mnist'" in res.output
    res = invoke("params", "apply", "mnist_cpu", "--params", params)
    assert res.exit_code == 0
    assert yaml.safe_load(open(params))["data"]["limit_per_class"] == 500
    res = runner.invoke(app, ["params", "apply", "nope", "--params", params])
    assert res.exit_code == 2 and "profile 'nope' not found" in res.output


def test_where_lists_reports(tmp_path):
    res = invoke("where")
    assert (
        res.exit_code == 0 and "reports/metrics/r0.json" in res.output and "mlflow ui" in res.output
    )


def test_sample_count_larger_than_the_data_is_refused(prepared, tiny_params, tmp_path):
    _, d = prepared
    tiny_params["eval"]["num_samples"] = 100_000
    params = write_params(tmp_path, tiny_params)
    out = tmp_path / "eval"
    res = runner.invoke(
        app,
        [
            "evaluate-real",
            "--train",
            str(d / "train.pt"),
            "--test",
            str(d / "test.pt"),
            "--judge",
            str(d / "absent.pt"),
            "--out",
            str(out / "real.json"),
            "--timing",
            str(out / "t.json"),
            "--grid",
            str(out / "g.png"),
            "--params",
            params,
        ],
    )
    assert res.exit_code == 1
    assert "eval.num_samples is 100000 but the held-out test split has" in res.output
    assert not out.exists()


def test_checkpoint_from_other_parameters_is_refused_by_key(prepared, tiny_params, tmp_path):
    params, d = prepared
    res = invoke(
        "baseline",
        "--train",
        d / "train.pt",
        "--test",
        d / "test.pt",
        "--out",
        d / "r0.pt",
        "--metrics",
        d / "r0.json",
        "--timing",
        d / "t.json",
        "--figure",
        d / "r0.png",
        "--params",
        params,
    )
    assert res.exit_code == 0, res.output
    tiny_params["baseline"]["model"]["width"] = 8  # params changed, checkpoint not rebuilt
    changed = write_params(tmp_path, tiny_params)
    res = runner.invoke(
        app,
        [
            "sgld",
            "--classifier",
            str(d / "r0.pt"),
            "--train",
            str(d / "train.pt"),
            "--out",
            str(d / "s.pt"),
            "--metrics",
            str(d / "s.json"),
            "--timing",
            str(d / "st.json"),
            "--figure",
            str(d / "s.png"),
            "--params",
            changed,
        ],
    )
    assert res.exit_code == 1
    assert "made with width=4 but the parameters say width=8" in res.output
    assert not (d / "s.pt").exists()
