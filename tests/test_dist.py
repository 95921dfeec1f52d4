"""Data parallelism (pipeline.dist) through the real stage commands: `bin/cgen` launches them
under torchrun when runtime.processes > 1 (gloo, 2 processes on this CPU machine)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml
from support import ROOT, cgen, chain

CGEN = str(ROOT / "bin" / "cgen")


def params_file(tmp_path: Path, params: dict, processes: int, name: str) -> Path:
    p = yaml.safe_load(yaml.safe_dump(params))
    p["runtime"]["processes"] = processes
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(p))
    return path


@pytest.fixture
def data(tmp_path, tiny_params) -> Path:
    d = tmp_path / "data"
    p = params_file(tmp_path, tiny_params, 1, "prep")
    cgen("prepare", "--train-out", d / "train.pt", "--test-out", d / "test.pt",
         "--metrics", d / "data.json", "--params", p)  # fmt: skip
    return d


def train_cmd(kind: str, d: Path, out: Path, params: Path, resume: Path | None = None) -> list:
    head = {"judge": ["classifier", "--section", "judge"], "jem": ["jem-train"],
            "score": ["score-train"]}[kind]  # fmt: skip
    cmd = [*head, "--train", d / "train.pt", "--test", d / "test.pt", "--model-out",
           out / f"{kind}.pt", "--metrics", out / f"{kind}.json", "--figure", out / f"{kind}.png",
           "--history", out / f"{kind}.tsv", "--params", params]  # fmt: skip
    return cmd + (["--resume", resume] if resume else [])


def sample_cmd(kind: str, d: Path, out: Path, params: Path) -> list:
    return [f"{kind}-sample", "--model", out.parent / "models" / f"{kind}.pt", "--train",
            d / "train.pt", "--samples-out", out / f"{kind}.pt", "--metrics", out / f"{kind}.json",
            "--figure", out / f"{kind}.png", "--params", params,
            *(["--variant", "score_stic"] if kind == "score" else [])]  # fmt: skip


def stage_runs_in(db: Path) -> list[str]:
    """The stage runs in an MLflow store (not the "pipeline ..." parent the tracker adds)."""
    with sqlite3.connect(db) as c:
        names = [r[0] for r in c.execute("select name from runs")]
    return [n for n in names if not n.startswith("pipeline")]


def test_one_process_runs_in_process_and_two_launch_torchrun(tiny_params):
    from stages.cli import torchrun_args

    assert torchrun_args("classifier", ["--params", str(ROOT / "params.yaml")]) is None
    assert torchrun_args("evaluate", []) is None  # not a data-parallel command


def test_the_torchrun_launch_follows_runtime(tmp_path, tiny_params):
    from stages.cli import torchrun_args

    two = params_file(tmp_path, tiny_params, 2, "two")
    cmd = ["--params", str(two)]
    assert torchrun_args("classifier", cmd) == [
        "-m", "torch.distributed.run", "--nproc-per-node", "2", "--nnodes", "1", "--standalone"
    ]  # fmt: skip
    assert torchrun_args("evaluate", cmd) is None  # evaluation stays in one process
    tiny_params["runtime"].update(nodes=3, rendezvous="10.0.0.1:29400")
    many = params_file(tmp_path, tiny_params, 4, "many")
    launch = torchrun_args("stic-round", ["--round", "r1", "--params", str(many)])
    assert launch[:6] == ["-m", "torch.distributed.run", "--nproc-per-node", "4", "--nnodes", "3"]
    assert launch[6:10] == ["--rdzv-backend", "c10d", "--rdzv-endpoint", "10.0.0.1:29400"]
    # every node derives the same job id from the same command, another command another id
    other = torchrun_args("stic-round", ["--round", "r2", "--params", str(many)])
    assert launch[10] == "--rdzv-id" and launch[11] != other[11]
    assert launch == torchrun_args("stic-round", ["--round", "r1", "--params", str(many)])


def test_write_helpers_write_on_local_rank_zero_only(tmp_path, monkeypatch):
    from stages.skeleton import write_metrics

    monkeypatch.setenv("LOCAL_RANK", "1")
    write_metrics(tmp_path / "m.json", {"a": 1.0})
    assert not (tmp_path / "m.json").exists()
    monkeypatch.setenv("LOCAL_RANK", "0")
    write_metrics(tmp_path / "m.json", {"a": 1.0})
    assert (tmp_path / "m.json").exists()


@pytest.mark.slow
def test_sharded_sampling_equals_one_process_bit_for_bit(data, tmp_path, tiny_params):
    """JEM's fresh chains (pipeline.chains.evaluation_set) and Score-STIC's annealed chains, drawn
    by one process and by two: the gathered sample sets are identical."""
    one, two = (params_file(tmp_path, tiny_params, n, f"p{n}") for n in (1, 2))
    models = tmp_path / "models"
    for kind in ("jem", "score"):
        cgen(*train_cmd(kind, data, models, one))
    for kind in ("jem", "score"):
        for n, p in ((1, one), (2, two)):
            cgen(*sample_cmd(kind, data, tmp_path / f"s{n}", p))
        a, b = (torch.load(tmp_path / f"s{n}" / f"{kind}.pt", weights_only=True) for n in (1, 2))
        assert torch.equal(a["images"], b["images"]), kind
        assert torch.equal(a["targets"], b["targets"]), kind
        ma, mb = (json.loads((tmp_path / f"s{n}" / f"{kind}.json").read_text()) for n in (1, 2))
        assert ma["acceptance_rate"] == pytest.approx(mb["acceptance_rate"], abs=1e-9), kind


@pytest.mark.slow
def test_ddp_training_matches_one_process_and_rank_zero_alone_tracks(data, tmp_path, tiny_params):
    """The judge (5 passes over the digits at 8x8) trained by one process and by two DDP ranks on
    halves of the same global batches: test accuracy within 5 points; one MLflow run per stage."""
    tiny_params["judge"]["train"]["steps"] = 110
    accs = {}
    for n in (1, 2):
        db = tmp_path / f"mlflow{n}.db"
        tiny_params["tracking"]["uri"] = f"sqlite:///{db}"
        p = params_file(tmp_path, tiny_params, n, f"p{n}")
        out = tmp_path / f"t{n}"
        cgen(*train_cmd("judge", data, out, p), root=out)
        cgen("track", "flush", root=out)
        accs[n] = json.loads((out / "judge.json").read_text())["test_accuracy"]
        assert stage_runs_in(db) == ["judge"], n  # two ranks, one tracked run
    assert accs[1] > 0.5, accs  # it learned something: the comparison means something
    assert abs(accs[1] - accs[2]) <= 0.05, accs


@pytest.mark.slow
def test_a_killed_two_process_run_resumes_to_the_uninterrupted_result(data, tmp_path, tiny_params):
    """SIGKILL the torchrun launcher of a 2-process JEM run (persistent chains, sharded) after its
    first snapshot (its workers die with it, pipeline.dist); the rerun resumes from it and ends
    exactly where an uninterrupted 2-process run ends."""
    tiny_params["jem"]["train"].update(steps=88, checkpoint_every=1)
    two = params_file(tmp_path, tiny_params, 2, "p2")
    cgen(*train_cmd("jem", data, tmp_path / "full", two))
    resume = tmp_path / "resume.pt"
    out = tmp_path / "killed"
    cmd = [CGEN, *map(str, train_cmd("jem", data, out, two, resume))]
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not resume.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert resume.exists() and proc.poll() is None, "no snapshot before the run ended"
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher; its workers (own sessions) die with it
    proc.wait()
    time.sleep(3)  # workers that outlived their launcher would finish and remove the snapshot
    assert resume.exists() and not (out / "jem.pt").exists()
    res = cgen(*train_cmd("jem", data, out, two, resume))
    assert "resuming after epoch" in res.stderr, res.stderr[-4000:]
    a = torch.load(tmp_path / "full" / "jem.pt", weights_only=True)
    b = torch.load(out / "jem.pt", weights_only=True)
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    assert torch.equal(a["chains"]["images"], b["chains"]["images"])
    assert not resume.exists()  # the finished run removed its snapshot


def test_several_nodes_without_a_rendezvous_are_refused(tmp_path, tiny_params):
    from pipeline.config import load_sections
    from pipeline.errors import ConfigError
    from pipeline.runtime import RuntimeConfig

    tiny_params["runtime"]["nodes"] = 2
    with pytest.raises(ConfigError, match="rendezvous"):
        load_sections(params_file(tmp_path, tiny_params, 1, "p"), {"runtime": RuntimeConfig})


@pytest.mark.slow
def test_every_training_loop_runs_under_two_processes(tmp_path, tiny_params):
    """The baseline, a STIC round (persistent chains with the Gram term, sharded) and its samples,
    the score classifier (double backward through DDP), the AC-GAN and the ReGene decoder, each
    under torchrun with 2 processes: they finish and write their outputs once."""
    tiny_params["tracking"]["enabled"] = False
    two = params_file(tmp_path, tiny_params, 2, "p2")
    d = tmp_path / "run"
    chain(d, two)  # prepare (1 process), baseline, stic-round r1, stic-sample r1
    cgen(*train_cmd("score", d, d, two))
    cgen("acgan-train", "--variant", "acgan", "--train", d / "train.pt", "--model-out",
         d / "acgan.pt", "--metrics", d / "acgan.json", "--figure", d / "acgan.png",
         "--history", d / "acgan.tsv", "--params", two)  # fmt: skip
    cgen("regene-train", "--classifier", d / "r0.pt", "--train", d / "train.pt", "--test",
         d / "test.pt", "--model-out", d / "regene.pt", "--metrics", d / "regene.json",
         "--figure", d / "regene.png", "--history", d / "regene.tsv", "--params", two)  # fmt: skip
    for name in ("r0", "r1", "r1_samples", "score", "acgan", "regene"):
        assert (d / f"{name}.pt").is_file(), name
    assert json.loads((d / "r1.json").read_text())["test_accuracy"] > 0
