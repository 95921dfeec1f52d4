"""MLflow tracking: runs are logged with tags; an unreachable store never breaks a stage."""

from __future__ import annotations

import logging

import pytest

from pipeline.tracking import Tracker, TrackingConfig, flatten


def test_flatten():
    assert flatten({"a": {"b": 1, "c": [1, 2]}, "d": None}) == {
        "a.b": "1",
        "a.c": "[1, 2]",
        "d": "None",
    }


def test_run_is_logged_with_params_metrics_tags(tmp_path):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    cfg = TrackingConfig(uri=uri, experiment="t", system_metrics=False)
    art = tmp_path / "a.txt"
    art.write_text("x")
    with Tracker(
        cfg, root=tmp_path, run_name="r", tags={"round": "r1"}, params={"baseline": {"lr": 0.1}}
    ) as run:
        run.log_history([{"loss": 2.0}, {"loss": 1.0}])
        run.log_metrics({"acc": 0.5})
        run.log_artifact(art)
    assert run.active and not run.not_logged
    mlflow.set_tracking_uri(uri)
    found = mlflow.search_runs(experiment_names=["t"])
    assert len(found) == 1
    row = found.iloc[0]
    assert row["params.baseline.lr"] == "0.1" and row["tags.round"] == "r1"
    assert row["metrics.acc"] == 0.5 and row["metrics.loss"] == 1.0
    client = mlflow.tracking.MlflowClient()
    assert [m.value for m in client.get_metric_history(row.run_id, "loss")] == [2.0, 1.0]
    exp = mlflow.get_experiment_by_name("t")
    assert exp.artifact_location.startswith("file://" + str(tmp_path))


@pytest.mark.parametrize("kind", ["sqlite-under-a-file", "http-nothing-listening"])
def test_unreachable_store_warns_and_goes_on(kind, tmp_path, caplog, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    # a database path below a regular file can never be created; port 9 (discard) is closed
    uri = f"sqlite:///{blocker}/m.db" if kind.startswith("sqlite") else "http://127.0.0.1:9/"
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    cfg = TrackingConfig(uri=uri, experiment="t", system_metrics=False)
    with caplog.at_level(logging.WARNING):
        with Tracker(cfg, root=tmp_path, run_name="r", tags={}, params={"a": 1}) as run:
            run.log_metrics({"x": 1.0})
            run.log_history([{"x": 1.0}])
    assert not run.active
    text = caplog.text
    assert "MLflow tracking unavailable" in text and "not logged for run 'r'" in text
    assert "metric batches" in text


def test_disabled_tracking_is_silent(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        with Tracker(
            TrackingConfig(enabled=False), root=tmp_path, run_name="r", tags={}, params={}
        ) as run:
            run.log_metrics({"x": 1.0})
    assert "MLflow" not in caplog.text
