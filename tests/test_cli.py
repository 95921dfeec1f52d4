"""The `cgen` commands as dvc.yaml calls them: start-up, errors before any work, helpers."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from stages.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parents[1]


def write_params(tmp_path, params) -> str:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return str(path)


def run(*args) -> int:
    return main([str(a) for a in args])


def test_help_lists_every_command_without_importing_torch():
    code = (
        "import sys, io, contextlib\n"
        "from stages.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out): rc = main(['--help'])\n"
        "print(rc, 'torch' in sys.modules, 'mlflow' in sys.modules, out.getvalue().count('\\n'))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    rc, torch_loaded, mlflow_loaded, lines = res.stdout.split()
    assert (rc, torch_loaded, mlflow_loaded) == ("0", "False", "False")
    assert int(lines) >= len(COMMANDS)


def test_unknown_command_is_a_usage_error(capsys):
    assert run("nonesuch") == 2
    assert "no command 'nonesuch'" in capsys.readouterr().err


@pytest.fixture
def prepared(tmp_path, tiny_params):
    params = write_params(tmp_path, tiny_params)
    d = tmp_path / "out"
    assert run("prepare", "--train-out", d / "train.pt", "--test-out", d / "test.pt",
               "--metrics", d / "data.json", "--params", params) == 0  # fmt: skip
    return params, d


def classifier(params, d, section="baseline", name="r0"):
    return run(
        "classifier", "--section", section, "--train", d / "train.pt", "--test", d / "test.pt",
        "--model-out", d / f"{name}.pt", "--metrics", d / f"{name}.json",
        "--figure", d / f"{name}.png", "--history", d / f"{name}.tsv", "--params", params,
    )  # fmt: skip


def test_prepare_then_train_a_classifier(prepared):
    from pipeline.checkpoint import load_classifier

    params, d = prepared
    facts = json.loads((d / "data.json").read_text())
    assert facts["image_size"] == 8 and facts["classes"] == 10 and sum(facts["train_per_class"]) > 0
    assert classifier(params, d) == 0
    metrics = json.loads((d / "r0.json").read_text())
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    model, payload = load_classifier(d / "r0.pt")  # rebuilt from the file alone
    assert model(torch.zeros(1, 1, 8, 8)).shape == (1, 10)
    assert payload["metrics"]["test_accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-6)


def test_bad_params_exit_2_and_touch_nothing(prepared, tiny_params, tmp_path, capsys):
    _, d = prepared
    bad = copy.deepcopy(tiny_params)
    bad["baseline"]["train"]["epochz"] = 3
    params = write_params(tmp_path, bad)
    assert classifier(params, d, name="bad") == 2
    err = capsys.readouterr().err.strip()
    assert "baseline.train.epochz: unknown key" in err and len(err.splitlines()) == 1
    assert not (d / "bad.pt").exists() and not (d / "bad.json").exists()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("processes", "two", "runtime.processes: expected an integer >= 1, got 'two'"),
        ("nodes", 0, "runtime.nodes: expected an integer >= 1, got 0"),
        ("numerics", "fast", "runtime.numerics: must be one of"),
    ],
)
def test_runtime_keys_read_before_the_strict_check_are_checked(
    tiny_params, tmp_path, capsys, key, value, message
):  # cgen reads them to decide the torchrun launch and the numeric pins, before any stage loads
    bad = copy.deepcopy(tiny_params)
    bad["runtime"][key] = value
    params = write_params(tmp_path, bad)
    assert run("classifier", "--section", "baseline", "--params", params) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_the_gate_refuses_a_key_no_stage_reads(prepared, tiny_params, tmp_path, capsys):
    _, d = prepared
    bad = copy.deepcopy(tiny_params)
    bad["eval"]["metrics"]["num_sample"] = 7  # a typo of num_samples
    params = write_params(tmp_path, bad)
    assert run("check", "--facts", d / "data.json", "--out", d / "ok", "--params", params) == 2
    assert "eval.metrics.num_sample: unknown key" in capsys.readouterr().err
    assert not (d / "ok").exists()
    good = write_params(tmp_path, tiny_params)
    assert run("check", "--facts", d / "data.json", "--out", d / "ok", "--params", good) == 0
    assert (d / "ok").read_text() == "ok\n"


def test_the_gate_refuses_what_the_data_makes_impossible(prepared, tiny_params, tmp_path, capsys):
    _, d = prepared
    bad = copy.deepcopy(tiny_params)
    bad["acgan"]["sample"]["per_class"] = 1  # 10 hard samples: fewer than the evaluation count
    params = write_params(tmp_path, bad)
    assert run("check", "--facts", d / "data.json", "--out", d / "ok", "--params", params) == 2
    assert "acgan.variants.acgan.sample.per_class: makes 1 hard samples" in capsys.readouterr().err
    bad = copy.deepcopy(tiny_params)
    bad["data"]["image_size"] = 12
    bad["acgan"]["variants"] = {"acgan": {}}
    facts = json.loads((d / "data.json").read_text()) | {"image_size": 12}
    (d / "facts12.json").write_text(json.dumps(facts))
    params = write_params(tmp_path, bad)
    assert run("check", "--facts", d / "facts12.json", "--out", d / "ok", "--params", params) == 2
    assert "small needs an image size of 4 * 2^n" in capsys.readouterr().err


def test_missing_dataset_message(tmp_path, tiny_params, capsys):
    p = copy.deepcopy(tiny_params)
    p["data"].update(name="cifar10", root=str(tmp_path / "raw"), num_classes=10)
    params = write_params(tmp_path, p)
    d = tmp_path / "out"
    assert run("prepare", "--train-out", d / "a.pt", "--test-out", d / "b.pt",
               "--metrics", d / "m.json", "--params", params) == 1  # fmt: skip
    assert "expected data_batch_1" in capsys.readouterr().err and not d.exists()


def test_cuda_on_a_cpu_machine_is_refused(prepared, tiny_params, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    _, d = prepared
    p = copy.deepcopy(tiny_params)
    p["runtime"]["device"] = "cuda"
    assert classifier(write_params(tmp_path, p), d, name="gpu") == 2
    assert "runtime.device: cuda requested but CUDA is not available" in capsys.readouterr().err


def test_a_checkpoint_made_with_other_parameters_is_refused_by_key(prepared, tiny_params, tmp_path,
                                                                    capsys):  # fmt: skip
    params, d = prepared
    assert classifier(params, d) == 0
    p = copy.deepcopy(tiny_params)
    p["baseline"]["model"]["width"] = 6
    other = write_params(tmp_path, p)
    code = run("sgld", "--classifier", d / "r0.pt", "--train", d / "train.pt",
               "--samples-out", d / "s.pt", "--metrics", d / "s.json", "--figure", d / "s.png",
               "--params", other)  # fmt: skip
    assert code == 1
    assert "made with width=4 but the parameters say width=6" in capsys.readouterr().err


def test_params_helpers(tmp_path, capsys):
    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text())
    assert run("params", "check", "--params", path) == 0
    assert run("params", "overrides", "mnist_cpu", "--params", path,
               "--profiles-dir", ROOT / "profiles") == 0  # fmt: skip
    assert "-S 'data.name=mnist'" in capsys.readouterr().out
    assert run("params", "apply", "mnist_cpu", "--params", path,
               "--profiles-dir", ROOT / "profiles") == 0  # fmt: skip
    text = path.read_text()
    assert yaml.safe_load(text)["data"]["name"] == "mnist"
    assert "# Default: the CPU run" in text  # the file's comments survive
    assert run("params", "apply", "nonesuch", "--params", path,
               "--profiles-dir", ROOT / "profiles") == 2  # fmt: skip


def test_where(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert run("where") == 0
    assert "reports/report.md" in capsys.readouterr().out


def test_strict_determinism_without_importing_the_compiler():
    """torch.use_deterministic_algorithms imports torch.compile's stack (0.8 s of every stage's
    start-up); configure sets the same ATen flag without it unless runtime.compile is on."""
    code = (
        "import sys, torch\n"
        "from pipeline.runtime import RuntimeConfig, configure\n"
        "for det in ('strict', 'fast'):\n"
        "    configure(RuntimeConfig(seed=0, device='cpu', determinism=det, threads=1,\n"
        "        numerics='portable', processes=1, nodes=1, rendezvous=None, backend='gloo',\n"
        "        precision='fp32',\n"
        "        channels_last=False, compile=False))\n"
        "    print(torch.are_deterministic_algorithms_enabled(), 'torch._dynamo' in sys.modules)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert res.stdout.split() == ["True", "False", "False", "False"], res.stderr
