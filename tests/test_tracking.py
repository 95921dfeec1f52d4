"""MLflow tracking: a stage spools its run and a flusher logs it with its times, tags and parent;
an unreachable store never breaks a stage and loses no run."""

from __future__ import annotations

import json
import time

import pytest

from pipeline import flusher, tracking
from pipeline.flusher import SPOOL, flush, pending
from pipeline.tracking import Tracker, TrackingConfig, flatten

REAL_SPAWN = tracking.spawn_flusher  # the autouse fixture replaces it in every test


def cfg(uri, enabled=True):
    return TrackingConfig(enabled=enabled, uri=uri, experiment="t", system_metrics=False)


@pytest.fixture(autouse=True)
def _synchronous(monkeypatch):
    """No detached flusher in tests: each test flushes when it wants to."""
    monkeypatch.setattr("pipeline.tracking.spawn_flusher", lambda root: None)


def test_flatten():
    assert flatten({"a": {"b": 1, "c": [1, 2]}, "d": None}) == {
        "a.b": "1",
        "a.c": "[1, 2]",
        "d": "None",
    }


def spool_one(tmp_path, uri, name="r", pid="p1", **extra_tags):
    art = tmp_path / "a.txt"
    art.write_text("x")
    tags = {"round": "r1", "pipeline.id": pid, **extra_tags}
    with Tracker(cfg(uri), root=tmp_path, run_name=name, tags=tags,
                 params={"baseline": {"lr": 0.1}}) as run:  # fmt: skip
        run.log_history([{"loss": 2.0}, {"loss": 1.0}])
        run.log_metrics({"acc": 0.5})
        run.log_artifact(art)
    art.write_text("changed after the stage")  # the spool kept the file as it was
    return run


def test_a_run_is_spooled_then_logged_with_params_metrics_tags_and_parent(tmp_path):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    spool_one(tmp_path, uri, "a")
    spool_one(tmp_path, uri, "b")
    assert len(pending(tmp_path)) == 2
    logged, problems = flush(tmp_path, wait=True)
    assert (logged, problems) == (2, []) and not pending(tmp_path)
    mlflow.set_tracking_uri(uri)
    found = mlflow.search_runs(experiment_names=["t"], filter_string="tags.round = 'r1'")
    assert sorted(found["tags.mlflow.runName"]) == ["a", "b"]
    row = found.iloc[0]
    assert row["params.baseline.lr"] == "0.1" and row["metrics.acc"] == 0.5
    parents = mlflow.search_runs(experiment_names=["t"], filter_string="tags.`cgen.parent` = '1'")
    assert len(parents) == 1  # one parent per pipeline id, both runs under it
    assert set(found["tags.mlflow.parentRunId"]) == {parents.iloc[0].run_id}
    client = mlflow.tracking.MlflowClient()
    assert [m.value for m in client.get_metric_history(row.run_id, "loss")] == [2.0, 1.0]
    exp = mlflow.get_experiment_by_name("t")
    assert exp.artifact_location.startswith("file://" + str(tmp_path))
    local = client.download_artifacts(row.run_id, "a.txt", str(tmp_path / "dl"))
    assert open(local).read() == "x"
    assert row["start_time"] <= row["end_time"]  # the stage's own times, not the flush's


@pytest.mark.parametrize("kind", ["sqlite-under-a-file", "http-nothing-listening"])
def test_an_unreachable_store_keeps_the_run_in_the_spool(kind, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    # a database path below a regular file can never be created; port 9 (discard) is closed
    uri = f"sqlite:///{blocker}/m.db" if kind.startswith("sqlite") else "http://127.0.0.1:9/"
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    spool_one(tmp_path, uri)  # the stage itself never touches the store
    logged, problems = flush(tmp_path, wait=True)
    assert logged == 0 and len(problems) == 1
    assert len(pending(tmp_path)) == 1  # kept for the next flush


def test_disabled_tracking_spools_nothing(tmp_path):
    with Tracker(cfg(None, enabled=False), root=tmp_path, run_name="r", tags={},
                 params={}) as run:  # fmt: skip
        run.log_metrics({"x": 1.0})
    assert not (tmp_path / SPOOL).exists()


def test_the_record_holds_wall_clock_times_but_no_dvc_output_does(tmp_path):
    spool_one(tmp_path, f"sqlite:///{tmp_path / 'm.db'}")
    rec = json.loads(pending(tmp_path)[0].read_text())
    assert rec["end_ms"] >= rec["start_ms"] > 0
    assert all(len(m) == 4 for m in rec["metrics"])


def test_one_detached_flusher_logs_the_runs_of_consecutive_stages(tmp_path, monkeypatch):
    """The flusher a stage starts lingers for the next stages' runs: they start no other."""
    import mlflow

    def wait_for(condition, seconds=60.0):
        end = time.monotonic() + seconds
        while not condition():
            assert time.monotonic() < end, "timed out"
            time.sleep(0.1)

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    monkeypatch.setenv("CGEN_FLUSH_LINGER", "4")
    spool_one(tmp_path, uri, "a")
    REAL_SPAWN(tmp_path)
    wait_for(lambda: not pending(tmp_path))
    assert flusher.flusher_alive(tmp_path)
    started = []
    monkeypatch.setattr(flusher.subprocess, "Popen", lambda *a, **k: started.append(a))
    spool_one(tmp_path, uri, "b")
    REAL_SPAWN(tmp_path)  # the next stage: the living flusher takes its run
    wait_for(lambda: not pending(tmp_path))
    assert started == []
    wait_for(lambda: not flusher.flusher_alive(tmp_path), 30)  # gone after its linger
    mlflow.set_tracking_uri(uri)
    found = mlflow.search_runs(experiment_names=["t"], filter_string="tags.round = 'r1'")
    assert sorted(found["tags.mlflow.runName"]) == ["a", "b"]
    assert "Traceback" not in (tmp_path / flusher.FLUSH_LOG).read_text()
