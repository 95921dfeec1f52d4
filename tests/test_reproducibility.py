"""Guarantees: same params -> same bytes; a SIGKILL leaves nothing taken as complete and a rerun
finishes bit-identically; concurrent stages and flushers lose no MLflow run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from support import ROOT, cgen, chain, md5


@pytest.fixture
def offline_params(tmp_path, tiny_params) -> Path:
    tiny_params["tracking"]["enabled"] = False
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tiny_params))
    return path


def test_same_params_same_output_bytes(tmp_path, offline_params):
    a, b = tmp_path / "a", tmp_path / "b"
    chain(a, offline_params)
    chain(b, offline_params)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) == 14
    for rel in files:
        assert md5(a / rel) == md5(b / rel), f"{rel} differs between two identical runs"


@pytest.mark.slow
def test_sigkill_mid_training_then_rerun_completes(tmp_path, tiny_params):
    tiny_params["tracking"]["enabled"] = False
    tiny_params["baseline"]["train"].update(steps=264, checkpoint_every=1)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(tiny_params))
    d = tmp_path / "run"
    cgen("prepare", "--train-out", d / "train.pt", "--test-out", d / "test.pt",
         "--metrics", d / "data.json", "--params", params)  # fmt: skip

    def args(out: Path) -> list:
        return ["classifier", "--section", "baseline", "--train", d / "train.pt",
                "--test", d / "test.pt", "--model-out", out / "r0.pt", "--metrics",
                out / "r0.json", "--figure", out / "r0.png", "--history", out / "r0.tsv",
                "--resume", out / "resume.pt", "--params", params]  # fmt: skip

    proc = subprocess.Popen([str(ROOT / "bin" / "cgen"), *map(str, args(d))], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 120
    while not (d / "resume.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # nothing that looks complete: no final outputs, no stray temporary files taken as outputs
    assert not (d / "r0.pt").exists() and not (d / "r0.json").exists()
    assert (d / "resume.pt").exists()
    cgen(*args(d))  # the rerun resumes and finishes
    assert (d / "r0.pt").exists() and not (d / "resume.pt").exists()
    fresh = tmp_path / "fresh"
    cgen(*args(fresh))
    assert md5(d / "r0.pt") == md5(fresh / "r0.pt"), "resumed run differs from an uninterrupted one"


WRITER = """
import sys
from pathlib import Path
from pipeline.tracking import Tracker, TrackingConfig
cfg = TrackingConfig(enabled=True, uri=sys.argv[1], experiment="conc", system_metrics=False)
for i in range(2):
    with Tracker(cfg, root=Path(sys.argv[2]), run_name=f"{sys.argv[3]}-{i}",
                 tags={"pipeline.id": "p"}, params={"w": sys.argv[3]}) as run:
        run.log_history([{"loss": float(s)} for s in range(20)])
        run.log_metrics({"final": 1.0})
"""


@pytest.mark.slow
def test_concurrent_stages_and_flushers_lose_no_run(tmp_path):
    """Three stage processes spool two runs each and each end starts a detached flusher: every
    run reaches MLflow exactly once, under one parent."""
    import mlflow

    from pipeline.flusher import flush, pending

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_DISABLE_TELEMETRY": "true"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, uri, str(tmp_path), f"w{i}"],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(3)
    ]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    flush(tmp_path, wait=True)  # waits for the detached flushers' lock, then logs what is left
    deadline = time.time() + 120
    while pending(tmp_path) and time.time() < deadline:
        time.sleep(0.5)
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["conc"], filter_string="params.w != ''")
    assert len(runs) == 6 and set(runs["status"]) == {"FINISHED"}
    assert sorted(runs["tags.mlflow.runName"]) == [f"w{i}-{j}" for i in range(3) for j in range(2)]
    assert (runs["metrics.final"] == 1.0).all()
    assert runs["tags.mlflow.parentRunId"].nunique() == 1
