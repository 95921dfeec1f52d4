"""The prepared GPU check (scripts/gpu_check.py) runs where dvc, mlflow and torch-fidelity are
absent, as on a bare GPU machine: here on the CPU at toy sizes, its CUDA parts skipped."""

from __future__ import annotations

import json
import subprocess
import sys

from support import ROOT

SCRIPT = str(ROOT / "scripts" / "gpu_check.py")
BARE = f"""
import runpy, sys
for m in ("dvc", "mlflow", "torch_fidelity"):
    sys.modules[m] = None  # importing any of them now fails, as where they are not installed
sys.argv = ["gpu_check.py", "--cpu-smoke", "--out", sys.argv[1]]
runpy.run_path({SCRIPT!r}, run_name="__main__")
"""


def test_the_gpu_check_runs_without_dvc_mlflow_or_torch_fidelity(tmp_path):
    res = subprocess.run([sys.executable, "-c", BARE, str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads((tmp_path / "gpu.json").read_text())
    assert report["smoke"] and report["deterministic"] is True
    assert [r["run"].split(",")[0] for r in report["rows"]] == ["baseline epoch", "STIC round r1"]
    assert "not GPU numbers" in (tmp_path / "gpu.md").read_text()


def test_without_cuda_the_check_says_so_and_stops():
    res = subprocess.run([sys.executable, SCRIPT], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert res.returncode != 0 and "no CUDA GPU here" in res.stderr
