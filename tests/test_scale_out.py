"""Beyond one machine: a DVC remote carries tracked outputs from one clone to another without
rerunning a stage, and the shared MLflow server (scripts/mlflow_server.sh) receives the runs the
project's spool and flusher send it over HTTP, artifacts included."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest
from support import DVC, clean_env, stop_server

from pipeline.flusher import flush, pending
from pipeline.tracking import Tracker, TrackingConfig

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "scripts" / "mlflow_server.sh"
GIT = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, cwd=cwd, env=clean_env(), capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert res.returncode == 0, f"{' '.join(map(str, cmd))}:\n{res.stdout}\n{res.stderr}"
    return res


# ---------------------------------------------------------------- the DVC remote


def test_a_clone_pulls_pushed_outputs_and_is_up_to_date_without_running_the_stage(tmp_path):
    origin, remote, clone = tmp_path / "origin", tmp_path / "remote", tmp_path / "clone"
    origin.mkdir()
    remote.mkdir()
    run(["git", "init", "-q"], origin)
    run([str(DVC), "init", "-q"], origin)
    (origin / "params.yaml").write_text("n: 3\n")
    # the stage counts its own runs in a file neither git nor DVC tracks
    cmd = "echo ran >> runs.log && cp params.yaml out.txt"
    run([str(DVC), "stage", "add", "-q", "-n", "make", "-p", "n", "-o", "out.txt", cmd], origin)
    (origin / ".gitignore").write_text("runs.log\n")
    run([str(DVC), "repro", "-q"], origin)
    assert (origin / "runs.log").read_text() == "ran\n"
    run(["git", "add", "-A"], origin)
    run([*GIT, "commit", "-qm", "stage and lock"], origin)
    # a remote for this clone only (.dvc/config.local), named on the command line
    run([str(DVC), "remote", "add", "--local", "store", str(remote)], origin)
    assert "store" not in (origin / ".dvc" / "config").read_text()
    run([str(DVC), "push", "-r", "store"], origin)
    assert any(p.is_file() for p in remote.rglob("*"))

    run(["git", "clone", "-q", str(origin), str(clone)], tmp_path)
    assert not (clone / "out.txt").exists() and not (clone / ".dvc" / "config.local").exists()
    status = run([str(DVC), "status"], clone)
    assert "not in cache" in status.stdout and "out.txt" in status.stdout  # before the pull
    run([str(DVC), "remote", "add", "--local", "store", str(remote)], clone)
    run([str(DVC), "pull", "-r", "store"], clone)
    assert (clone / "out.txt").read_text() == "n: 3\n"
    assert "Data and pipelines are up to date" in run([str(DVC), "status"], clone).stdout
    assert "didn't change" in run([str(DVC), "repro"], clone).stdout
    assert not (clone / "runs.log").exists()  # the stage never ran in the clone


# ---------------------------------------------------------------- the MLflow server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, proc: subprocess.Popen, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    raise AssertionError(f"{what} (server exit code {proc.poll()})")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """scripts/mlflow_server.sh on a free port with a temporary SQLite store and artifact folder,
    shared by this module's tests; stopped (its whole process group) whatever they do."""
    import urllib.request

    tmp_path = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    store, artifacts = tmp_path / "server" / "mlflow.db", tmp_path / "server" / "artifacts"
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(
        ["sh", str(SERVER), "--port", str(port), "--store", f"sqlite:///{store}",
         "--artifacts", str(artifacts), "--experiment", "scale-out"],
        stdout=log, stderr=subprocess.STDOUT, env=clean_env(), start_new_session=True,
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"

    def experiment_exists() -> bool:
        url = f"{uri}/api/2.0/mlflow/experiments/get-by-name?experiment_name=scale-out"
        try:
            return urllib.request.urlopen(url, timeout=2).status == 200
        except OSError:
            return False

    try:
        # the first start on a loaded 2-core machine took about 30 s
        wait_for(experiment_exists, 240, proc, "the server never created the experiment")
        yield uri, artifacts
    finally:
        stop_server(proc, log)
    assert proc.poll() is not None


def spool_run(root: Path, uri: str, experiment: str = "scale-out") -> None:
    cfg = TrackingConfig(enabled=True, uri=uri, experiment=experiment, system_metrics=False)
    figure = root / "curve.png"
    figure.write_bytes(b"not really a png")
    tags = {"pipeline.id": "exp-1", "dvc.stage": "judge", "dvc.experiment": "exp-1"}
    with Tracker(cfg, root=root, run_name="judge", tags=tags,
                 params={"judge": {"train": {"steps": 44}}}) as run:  # fmt: skip
        run.log_history([{"loss": 2.0}, {"loss": 1.0}])
        run.log_artifact(figure, "figures")


@pytest.mark.slow
def test_the_flusher_delivers_runs_and_artifacts_to_the_server(server, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    uri, artifacts = server
    monkeypatch.setattr("pipeline.tracking.spawn_flusher", lambda root: None)
    repo = tmp_path / "repo"
    repo.mkdir()
    spool_run(repo, uri)
    assert len(pending(repo)) == 1
    assert flush(repo, wait=True) == (1, []) and not pending(repo)

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("scale-out")
    assert exp.artifact_location.startswith("mlflow-artifacts:")  # served, not a client path
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    assert set(runs) == {"judge", "pipeline exp-1"}
    run = runs["judge"]
    assert run.info.status == "FINISHED"
    assert run.data.tags["dvc.experiment"] == "exp-1"
    assert run.data.params["judge.train.steps"] == "44"
    assert run.data.tags["mlflow.parentRunId"] == runs["pipeline exp-1"].info.run_id
    assert [m.value for m in client.get_metric_history(run.info.run_id, "loss")] == [2.0, 1.0]
    assert [a.path for a in client.list_artifacts(run.info.run_id, "figures")] == [
        "figures/curve.png"
    ]
    got = client.download_artifacts(run.info.run_id, "figures/curve.png", str(tmp_path / "dl"))
    assert Path(got).read_bytes() == b"not really a png"
    # the file went to the server's artifact folder, and nothing to the client's repository
    assert [p.parent.name for p in artifacts.rglob("curve.png")] == ["figures"]
    assert not (repo / "mlartifacts").exists()


@pytest.mark.slow
def test_an_experiment_the_flusher_creates_on_a_server_keeps_artifacts_on_the_server(
    server, tmp_path, monkeypatch
):
    from mlflow.tracking import MlflowClient

    uri, _ = server
    monkeypatch.setattr("pipeline.tracking.spawn_flusher", lambda root: None)
    repo = tmp_path / "repo"
    repo.mkdir()
    spool_run(repo, uri, experiment="made-by-the-flusher")
    assert flush(repo, wait=True) == (1, [])
    exp = MlflowClient(tracking_uri=uri).get_experiment_by_name("made-by-the-flusher")
    assert exp.artifact_location.startswith("mlflow-artifacts:")
