"""The portable numerics (pipeline.numerics): each pin reaches its library in a fresh process,
cgen applies the mode of the parameter file before torch loads, and the square root and Adam the
code uses instead of MKL's are what they claim."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from pipeline import numerics

ROOT = Path(__file__).resolve().parents[1]
HAS_AVX2 = "avx2" in Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else False
needs_avx2 = pytest.mark.skipif(not HAS_AVX2, reason="the portable pins name AVX2 kernels")

PROBE = """
import json, sys
from pipeline import numerics
numerics.apply(sys.argv[1])
import torch
x = torch.randn(8, 16, 16, 16)
with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
    torch.nn.functional.conv2d(x, torch.randn(32, 16, 3, 3), padding=1)
print(json.dumps(numerics.fingerprint(sys.argv[1], 2)))
"""


def probe(mode: str, **env: str) -> tuple[dict, str]:
    """A fresh interpreter that applies `mode` (then `env` on top) before torch loads: its
    fingerprint and oneDNN's verbose output."""
    code = PROBE
    if env:  # variables the test sets after apply, to show the library reads them
        code = PROBE.replace(
            "import torch\n", f"import os; os.environ.update({env!r})\nimport torch\n", 1
        )
    env = {"PATH": "/usr/bin:/bin", "ONEDNN_VERBOSE": "all"}
    res = subprocess.run([sys.executable, "-c", code, mode], cwd=ROOT, capture_output=True,
                         text=True, env=env)  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    lines = res.stdout.strip().splitlines()
    return json.loads(lines[-1]), "\n".join(lines[:-1])


@needs_avx2
def test_every_pin_reaches_its_library():
    fp, dnnl = probe("portable")
    assert fp["aten_capability"] == "AVX2"
    assert fp["mkl_branch"] == "compatible"
    assert fp["openblas_core"] == "Haswell"
    assert fp["onednn_max_isa"] == "AVX2"
    assert "isa:Intel AVX2" in dnnl  # oneDNN reports the instruction set it runs
    assert numerics.problems(fp) == []


@needs_avx2
def test_the_variables_are_what_decides():
    """Moving each variable to another value moves the library: the pins are not decoration."""
    fp, dnnl = probe("portable", ATEN_CPU_CAPABILITY="default", ONEDNN_MAX_CPU_ISA="SSE41",
                     MKL_CBWR="AUTO")  # fmt: skip
    assert fp["aten_capability"] == "DEFAULT"
    assert fp["mkl_branch"] == "auto"
    assert "isa:Intel SSE4.1" in dnnl
    assert numerics.problems(fp)  # and the fingerprint says the pins did not hold


def test_native_leaves_the_environment_alone():
    env = {"MKL_CBWR": "AVX"}
    numerics.apply("native", env)
    assert env == {"MKL_CBWR": "AVX"}
    numerics.apply("portable", env)
    assert env["MKL_CBWR"] == "COMPATIBLE"  # the project's pin wins over the shell's


@needs_avx2
def test_cgen_applies_the_parameter_files_mode_before_torch_loads(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    out = {}
    for mode in ("portable", "native"):
        params["runtime"]["numerics"] = mode
        path = tmp_path / f"{mode}.yaml"
        path.write_text(yaml.safe_dump(params))
        res = subprocess.run([str(ROOT / "bin" / "cgen"), "machine", "--params", str(path),
                              "--write", str(tmp_path / f"{mode}.json")], cwd=ROOT,
                             capture_output=True, text=True, env={"PATH": "/usr/bin:/bin",
                                                                  "MKL_CBWR": "AVX"})  # fmt: skip
        assert res.returncode == 0, res.stderr
        out[mode] = json.loads((tmp_path / f"{mode}.json").read_text())
    assert out["portable"]["mkl_branch"] == "compatible"  # the shell's MKL_CBWR=AVX overridden
    assert out["native"]["mkl_branch"] != "compatible"  # ... and kept in the native mode
    assert out["native"]["numerics"] == "native"
    assert set(numerics.differences(out["portable"], out["native"])) >= {"numerics", "mkl_branch"}


def test_sqrt_is_within_one_ulp_and_zero_at_zero():
    x = torch.rand(10000, generator=torch.Generator().manual_seed(0)) * 10
    exact = torch.from_numpy((x.double().numpy() ** 0.5).astype("float32"))
    got = numerics.sqrt(x)
    ulps = (got.view(torch.int32) - exact.view(torch.int32)).abs()  # positive floats: ordered ints
    assert ulps.max() <= 1
    assert float(numerics.sqrt(torch.zeros(1))) == 0.0
    assert math.isclose(float(numerics.sqrt(torch.tensor(2e-8))), math.sqrt(2e-8), rel_tol=1e-6)


def test_fused_adam_takes_the_same_steps_as_adam():
    g = torch.Generator().manual_seed(0)
    start = torch.randn(1000, generator=g)
    grads = [torch.randn(1000, generator=g) for _ in range(5)]
    out = []
    for make in (lambda p: torch.optim.Adam(p, lr=1e-2), lambda p: numerics.adam(p, 1e-2)):
        p = torch.nn.Parameter(start.clone())
        opt = make([p])
        for grad in grads:
            p.grad = grad.clone()
            opt.step()
        out.append(p.detach())
    assert torch.allclose(out[0], out[1], atol=1e-6)  # the same algorithm, another sqrt


def test_differences_name_only_the_numeric_keys():
    a = {k: "x" for k in numerics.NUMERIC_KEYS} | {"cpu": "one"}
    b = dict(a, cpu="another", torch="y")
    assert numerics.differences(a, b) == {"torch": ("x", "y")}  # the CPU's name is description


def test_cgen_machine_says_which_outputs_differ_from_the_committed_ones(tmp_path):
    """A results folder whose committed fingerprint names another torch, and whose working
    dvc.lock differs from the committed one in one output: `cgen machine` says both."""
    repo = tmp_path / "repo"
    (repo / "reports").mkdir(parents=True)
    lock = {"schema": "2.0", "stages": {
        "judge": {"cmd": "x", "outs": [{"path": "data/models/judge.pt", "md5": "aa"}]},
        "prepare": {"cmd": "y", "outs": [{"path": "data/prepared/train.pt", "md5": "bb"}]},
    }}  # fmt: skip
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock))
    here = subprocess.run([str(ROOT / "bin" / "cgen"), "machine", "--write",
                           str(repo / "reports" / "machine.json")], cwd=ROOT, capture_output=True,
                          text=True)  # fmt: skip
    assert here.returncode == 0, here.stderr
    made = json.loads((repo / "reports" / "machine.json").read_text())
    (repo / "reports" / "machine.json").write_text(json.dumps({**made, "torch": "0.0-other"}))
    for cmd in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t",
                                                "commit", "-qm", "results"]):  # fmt: skip
        subprocess.run(["git", *cmd], cwd=repo, check=True)
    lock["stages"]["judge"]["outs"][0]["md5"] = "cc"  # as after a dvc repro on this machine
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock))
    env = {"PATH": "/usr/bin:/bin", "DVC_ROOT": str(repo)}
    res = subprocess.run([str(ROOT / "bin" / "cgen"), "machine", "--params",
                          str(ROOT / "params.yaml")], cwd=ROOT, capture_output=True, text=True,
                         env=env)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "Another numeric fingerprint (torch 0.0-other there" in res.stdout
    assert "1 outputs in the working dvc.lock differ" in res.stdout
    assert "data/models/judge.pt" in res.stdout and "train.pt" not in res.stdout.split("differ")[-1]
