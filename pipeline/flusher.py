"""The flusher: the detached process that logs the runs stages spooled (pipeline.tracking) into
MLflow, one at a time under a file lock, with their original start and end times, then lingers a
while for the next stage's run (`serve`), so one `dvc repro` pays MLflow's import once.

Every run is nested under one parent run per pipeline id. If the store cannot be reached, records
stay in the spool and the flusher says so in `.tracking/flush.log`; `cgen track flush` retries.
Run as `python -m pipeline.flusher flush ROOT [--wait]` (what `spawn_flusher` starts).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SPOOL = Path(".tracking") / "spool"  # relative to the repository root
FLUSH_LOG = Path(".tracking") / "flush.log"
LOCK = Path(".tracking") / "flush.lock"  # held while runs are being logged
ALIVE = Path(".tracking") / "flusher.alive"  # held by the detached flusher while it lives
LINGER = 120.0  # s a detached flusher waits for the next run (CGEN_FLUSH_LINGER overrides)
POLL = 0.5  # s between its looks at the spool
LOCK_RETRIES = 8  # SQLite "database is locked": retry with backoff 0.25 s, 0.5 s, ... (~1 min)
RETRYABLE = ("locked", "already exists", "duplicate column", "unique constraint")


def spawn_flusher(root: Path) -> None:
    """Start `python -m pipeline.flusher flush ROOT` detached (it outlives the stage), unless a
    flusher is alive: it picks this run up within POLL seconds."""
    if os.environ.get("CGEN_TRACKING_SYNC"):
        flush(root, wait=True)
        return
    if flusher_alive(root):
        return
    logfile = Path(root) / FLUSH_LOG
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "a") as out:
        subprocess.Popen(
            [sys.executable, "-m", "pipeline.flusher", "flush", str(root)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            cwd=str(root),
            env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
        )


@contextmanager
def file_lock(path: Path, wait: bool) -> Iterator[bool]:
    """An exclusive flock on `path`; yields False at once when taken and not `wait`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def flusher_alive(root: Path) -> bool:
    with file_lock(Path(root) / ALIVE, wait=False) as free:
        return not free


def serve(root: Path, linger: float) -> list[str]:
    """The detached flusher: flush, then keep polling the spool for `linger` seconds after the
    last run it logged, so that the stages of one `dvc repro` share one flusher and one MLflow
    import (2 s of CPU each time, taken from the running stage on a small machine). Its ALIVE
    lock tells spawn_flusher not to start another; after releasing it, it flushes once more what
    a stage spooled meanwhile. A flusher that finds ALIVE taken only flushes. Returns the
    problems of its last flush (the store unreachable: the runs stay for the next flusher)."""
    cache: dict[str, Any] = {}
    with file_lock(Path(root) / ALIVE, wait=False) as alone:
        idle = time.monotonic()
        while alone and time.monotonic() - idle < linger:
            if pending(root):
                problems = flush(root, cache=cache)[1]
                if problems:
                    return problems
                idle = time.monotonic()
            time.sleep(POLL)
    return flush(root, cache=cache)[1]


def pending(root: Path) -> list[Path]:
    folder = Path(root) / SPOOL
    return (
        sorted(folder.glob("*/run.json"), key=lambda p: p.stat().st_mtime)
        if folder.is_dir()
        else []
    )


def flush(
    root: Path, wait: bool = False, cache: dict[str, Any] | None = None
) -> tuple[int, list[str]]:
    """Log every spooled run to MLflow; returns (runs logged, problems). Without `wait`, gives way
    to a flusher already running (it re-checks the spool after releasing its lock). `cache`
    keeps MLflow clients between calls."""
    logged, problems = 0, []
    client_cache: dict[str, Any] = {} if cache is None else cache
    while pending(root):
        with file_lock(Path(root) / LOCK, wait) as got:
            if not got:
                break
            for record_file in pending(root):
                try:
                    _log_record(record_file, root, client_cache)
                    shutil.rmtree(record_file.parent, ignore_errors=True)
                    logged += 1
                except Exception as exc:  # noqa: BLE001 - report, keep the record, go on
                    problems.append(f"{record_file.parent.name}: {type(exc).__name__}: {exc}")
            if problems:
                break
    return logged, problems


def _retry(fn, *args, **kwargs):
    for attempt in range(LOCK_RETRIES + 1):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if any(r in str(exc).lower() for r in RETRYABLE) and attempt < LOCK_RETRIES:
                time.sleep(0.25 * 2**attempt)
                continue
            raise


def _client(uri: str, experiment: str, root: Path, cache: dict[str, Any]):
    key = f"{uri}|{experiment}"
    if key not in cache:
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        exp = _retry(client.get_experiment_by_name, experiment)
        if exp is None:
            # A local store gets an explicit absolute artifact location, or queued experiments'
            # artifacts land in their temporary copy of the repository and are deleted with it.
            # A tracking server keeps its own artifact root (artifacts are uploaded through it).
            served = uri.startswith(("http://", "https://"))
            location = None if served else (Path(root).resolve() / "mlartifacts").as_uri()
            exp_id = _retry(client.create_experiment, experiment, artifact_location=location)
        else:
            exp_id = exp.experiment_id
        cache[key] = (client, exp_id)
    return cache[key]


def _parent(client, exp_id: str, pid: str, start_ms: int, cache: dict[str, Any]) -> str:
    key = f"parent|{exp_id}|{pid}"
    if key not in cache:
        found = _retry(
            client.search_runs,
            [exp_id],
            filter_string=f"tags.`pipeline.id` = '{pid}' and tags.`cgen.parent` = '1'",
            max_results=1,
        )
        if found:
            cache[key] = found[0].info.run_id
        else:
            run = _retry(
                client.create_run,
                exp_id,
                start_time=start_ms,
                tags={"pipeline.id": pid, "cgen.parent": "1"},
                run_name=f"pipeline {pid}",
            )
            _retry(client.set_terminated, run.info.run_id, "FINISHED", start_ms)
            cache[key] = run.info.run_id
    return cache[key]


def _log_record(record_file: Path, root: Path, cache: dict[str, Any]) -> None:
    from mlflow.entities import Metric, Param

    rec = json.loads(record_file.read_text())
    client, exp_id = _client(rec["uri"], rec["experiment"], root, cache)
    tags = dict(rec["tags"])
    if tags.get("pipeline.id"):
        tags["mlflow.parentRunId"] = _parent(
            client, exp_id, tags["pipeline.id"], rec["start_ms"], cache
        )
    run = _retry(
        client.create_run, exp_id, start_time=rec["start_ms"], tags=tags, run_name=rec["run_name"]
    )
    run_id = run.info.run_id
    params = [Param(k, v) for k, v in rec["params"].items()]
    for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
        _retry(client.log_batch, run_id, params=params[i : i + 100])
    metrics = [Metric(k, v, ts, step) for k, v, ts, step in rec["metrics"]]
    for i in range(0, len(metrics), 1000):  # and 1000 metrics
        _retry(client.log_batch, run_id, metrics=metrics[i : i + 1000])
    for path, artifact_path in rec["artifacts"]:
        if Path(path).is_file():
            _retry(client.log_artifact, run_id, path, artifact_path)
    _retry(client.set_terminated, run_id, rec["status"], rec["end_ms"])


def main(argv: list[str]) -> int:
    """`python -m pipeline.flusher flush ROOT [--wait]` (what spawn_flusher runs)."""
    if len(argv) < 2 or argv[0] != "flush":
        print("usage: python -m pipeline.flusher flush ROOT [--wait]", file=sys.stderr)
        return 2
    root = Path(argv[1])
    if "--wait" in argv:
        problems = flush(root, wait=True)[1]
    else:
        problems = serve(root, float(os.environ.get("CGEN_FLUSH_LINGER", LINGER)))
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    for problem in problems:
        print(f"{stamp} MLflow flush: not logged (kept in the spool): {problem}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
