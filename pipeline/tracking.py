"""MLflow tracking that never breaks a stage.

If the store cannot be reached (or stays locked), the stage goes on: one warning says so, every
later call becomes a no-op, and at the end one warning lists what was not logged. The DVC metrics
files stay the record. Concurrent writers to one SQLite file retry on "database is locked".
"""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

LOCK_RETRIES = 8  # retry with backoff 0.25 s, 0.5 s, ... (~1 min in all)
# Transient errors of concurrent writers to one SQLite store: a lock, or a second process racing
# to create the schema of a new database ("duplicate column", "already exists").
RETRYABLE = ("locked", "already exists", "duplicate column", "unique constraint")


@dataclass(frozen=True)
class TrackingConfig:
    enabled: bool = True
    uri: str | None = None  # None: sqlite:///<repo root>/mlflow.db
    experiment: str = "classifier-generators"
    system_metrics: bool = True  # CPU/memory (and GPU) metrics on training runs


def default_uri(root: Path) -> str:
    return f"sqlite:///{Path(root).resolve() / 'mlflow.db'}"


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """{'a': {'b': 1}} -> {'a.b': '1'} for MLflow params."""
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten(value, name))
        else:
            out[name] = str(value)[:6000]  # MLflow's limit on a param value
    return out


@contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Serialise run start across processes for a SQLite store: a new database's schema
    migration and the experiment creation are not safe to race (seen: "duplicate column")."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    lock_path = Path(uri.removeprefix("sqlite:///") + ".lock")
    with open(lock_path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def git_commit(root: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


class Tracker:
    """One MLflow run. Use as a context manager; all methods are safe when tracking is down."""

    def __init__(
        self,
        cfg: TrackingConfig,
        *,
        root: Path,
        run_name: str,
        tags: Mapping[str, str],
        params: Mapping[str, Any],
        system_metrics: bool = False,
    ):
        self.cfg, self.root, self.run_name = cfg, Path(root), run_name
        self.tags, self.params = dict(tags), params
        self.system_metrics = system_metrics and cfg.system_metrics
        self.active = cfg.enabled
        self.not_logged: dict[str, int] = {}
        self._mlflow: Any = None

    # -------------------------------------------------------------- safety net
    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        if not self.active:
            self.not_logged[what] = self.not_logged.get(what, 0) + 1
            return None
        for attempt in range(LOCK_RETRIES + 1):
            try:
                return fn()
            except Exception as exc:  # noqa: BLE001 - any tracking failure must not stop a stage
                if any(r in str(exc).lower() for r in RETRYABLE) and attempt < LOCK_RETRIES:
                    time.sleep(0.25 * 2**attempt)
                    continue
                self.active = False
                self.not_logged[what] = self.not_logged.get(what, 0) + 1
                log.warning(
                    "MLflow tracking unavailable (%s: %s); this stage goes on without it and its "
                    "DVC metrics files remain the record",
                    type(exc).__name__,
                    str(exc)[:200],
                )
                return None
        return None

    # -------------------------------------------------------------- lifecycle
    def __enter__(self) -> Tracker:
        if not self.active:
            return self

        def start() -> None:
            import mlflow

            logging.getLogger("mlflow").setLevel(logging.WARNING)  # its import resets the level
            self._mlflow = mlflow
            uri = self.cfg.uri or default_uri(self.root)
            mlflow.set_tracking_uri(uri)
            with store_lock(uri):
                self._open_run(mlflow)

        self._call("run start", start)
        return self

    def _open_run(self, mlflow: Any) -> None:
        exp = mlflow.get_experiment_by_name(self.cfg.experiment)
        if exp is None:
            try:
                # an explicit absolute artifact location, or queued experiments' artifacts
                # land in their temporary copy of the repo and are deleted with it
                mlflow.create_experiment(
                    self.cfg.experiment,
                    artifact_location=(self.root.resolve() / "mlartifacts").as_uri(),
                )
            except Exception:  # noqa: BLE001 - created meanwhile by a parallel stage
                if mlflow.get_experiment_by_name(self.cfg.experiment) is None:
                    raise
        mlflow.set_experiment(self.cfg.experiment)
        if self.system_metrics:
            mlflow.set_system_metrics_sampling_interval(2)
        if mlflow.active_run() is None:  # idempotent when retried after a partial start
            mlflow.start_run(run_name=self.run_name, log_system_metrics=self.system_metrics)
        mlflow.set_tags(self.tags)
        flat = flatten(self.params)
        items = list(flat.items())
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            mlflow.log_params(dict(items[i : i + 100]))

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._mlflow is not None and self.active:
            status = "FINISHED" if exc_type is None else "FAILED"
            self._call("run end", lambda: self._mlflow.end_run(status=status))
        elif self._mlflow is not None:
            try:  # the store failed mid-run: close the local run object, ignore the store
                self._mlflow.end_run(status="FAILED")
            except Exception:  # noqa: BLE001
                pass
        if self.cfg.enabled and self.not_logged:
            what = ", ".join(f"{n} x {k}" for k, n in sorted(self.not_logged.items()))
            log.warning("MLflow: not logged for run '%s': %s", self.run_name, what)

    # -------------------------------------------------------------- logging
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        clean = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
        if clean:
            self._call("metric batches", lambda: self._mlflow.log_metrics(clean, step=step))

    def log_history(self, history: list[Mapping[str, float]], prefix: str = "") -> None:
        """Per-epoch metrics in one batched request (log_metric costs ~10 ms per call)."""

        def send() -> None:
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            rows = [
                Metric(f"{prefix}{k}", float(v), now, step)
                for step, row in enumerate(history)
                for k, v in row.items()
            ]
            client = self._mlflow.tracking.MlflowClient()
            run_id = self._mlflow.active_run().info.run_id
            for i in range(0, len(rows), 1000):  # MLflow batch limit
                client.log_batch(run_id, metrics=rows[i : i + 1000])

        if history:
            self._call("metric history", send)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        if Path(path).exists():
            self._call("artifacts", lambda: self._mlflow.log_artifact(str(path), artifact_path))

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self._call("tags", lambda: self._mlflow.set_tags(dict(tags)))


def stage_tags(root: Path, device: str, round_id: str | None = None) -> dict[str, str]:
    """Tags every run carries: DVC stage, round, git commit, DVC experiment, device."""
    tags = {
        "dvc.stage": os.environ.get("DVC_STAGE", "manual"),
        "git.commit": git_commit(root),
        "device": device,
    }
    if round_id is not None:
        tags["round"] = round_id
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc.experiment"] = os.environ["DVC_EXP_NAME"]
        tags["dvc.baseline_rev"] = os.environ.get("DVC_EXP_BASELINE_REV", "")
    return tags
