"""MLflow tracking off the critical path, and never able to break a stage.

A stage records its run in-process (parameters, tags, metrics with their wall-clock timestamps,
per-step histories, small artifacts copied at once) and, when it ends, writes the record into a
spool folder beside the repository (`.tracking/spool/`) and starts a detached flusher process,
unless one is still alive. The flusher (one at a time, under a file lock) imports MLflow once, logs
every spooled record with its original start and end times and deletes it, then waits a while for
the next stage's record (`serve`). So a stage pays neither MLflow's import (2 s of CPU here) nor
its run start (1-4 s): it ends as soon as its own outputs are written.

Grouping: every run carries the tag `pipeline.id` (the DVC experiment's name under `dvc exp run`,
else `CGEN_PIPELINE_ID` when set, else a hash of the git commit and params.yaml) and is nested
under one parent run per pipeline id, so MLflow's UI shows one pipeline execution or experiment
as one expandable row and can filter on the tag.

If the store cannot be reached, records stay in the spool and the flusher says so in
`.tracking/flush.log`; `cgen track flush` retries and reports. DVC's metrics files stay the record.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
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
SYSTEM_INTERVAL = 2.0  # seconds between system-metric samples on training runs


@dataclass(frozen=True)
class TrackingConfig:
    enabled: bool
    uri: str | None  # None: sqlite:///<repo root>/mlflow.db
    experiment: str
    system_metrics: bool  # CPU and memory (and GPU memory) of training runs


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


def pipeline_id(root: Path, params_file: Path, commit: str) -> str:
    """What groups the runs of one pipeline execution or experiment (module docstring)."""
    for var in ("DVC_EXP_NAME", "CGEN_PIPELINE_ID"):
        if os.environ.get(var):
            return os.environ[var]
    text = Path(params_file).read_bytes() if Path(params_file).is_file() else b""
    return f"{commit[:8]}-{hashlib.sha256(text).hexdigest()[:8]}"


def stage_tags(root: Path, device: str, params_file: Path, **extra: str | None) -> dict[str, str]:
    """Tags every run carries: DVC stage, git commit, pipeline id, DVC experiment, device, and
    `extra` ones (method, round, evaluated set) where given."""
    commit = git_commit(root)
    tags = {
        "dvc.stage": os.environ.get("DVC_STAGE", "manual"),
        "git.commit": commit,
        "pipeline.id": pipeline_id(root, params_file, commit),
        "device": device,
    }
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc.experiment"] = os.environ["DVC_EXP_NAME"]
        tags["dvc.baseline_rev"] = os.environ.get("DVC_EXP_BASELINE_REV", "")
    return tags | {k: v for k, v in extra.items() if v is not None}


def now_ms() -> int:
    return int(time.time() * 1000)


def process_age() -> float | None:
    """Seconds since this process started (Linux, 10 ms resolution), None where unknown. A stage
    started as `bin/cgen ...` counts from the shell that exec'd Python: the whole start-up."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: start, ticks since boot
        return time.clock_gettime(time.CLOCK_BOOTTIME) - started
    except (OSError, ValueError, IndexError, AttributeError):
        return None


class Tracker:
    """One stage's MLflow run, recorded in-process and spooled at exit (module docstring)."""

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
        self.id = uuid.uuid4().hex
        self.record: dict[str, Any] = {
            "run_name": run_name,
            "experiment": cfg.experiment,
            "uri": cfg.uri or default_uri(self.root),
            "tags": dict(tags),
            "params": flatten(params),
            "metrics": [],  # [key, value, timestamp ms, step]
            "artifacts": [],  # [file in the spool, artifact path]
        }
        self.system_metrics = system_metrics and cfg.system_metrics
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None

    @property
    def folder(self) -> Path:
        return self.root / SPOOL / self.id

    def __enter__(self) -> Tracker:
        self.record["start_ms"] = now_ms()
        self.startup = process_age()  # the process's fixed cost before its own work
        self._t0 = time.perf_counter()
        if self.cfg.enabled and self.system_metrics:
            self._sampler = threading.Thread(target=self._sample_system, daemon=True)
            self._sampler.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join()
        self.work = time.perf_counter() - self._t0
        if exc_type is None:
            log.info(
                "%s: %.1f s of work, %s s of start-up", self.run_name, self.work,
                "?" if self.startup is None else f"{self.startup:.2f}",
            )  # fmt: skip
        if not self.cfg.enabled:
            return
        self.record["end_ms"] = now_ms()
        if self.startup is not None:
            self.log_metrics({"time.startup_s": self.startup})
        self.record["status"] = "FINISHED" if exc_type is None else "FAILED"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.folder / "run.json.tmp"
            tmp.write_text(json.dumps(self.record))
            os.replace(tmp, self.folder / "run.json")
            spawn_flusher(self.root)
        except OSError as exc:  # tracking must never break a stage
            log.warning("MLflow: could not spool run '%s' (%s)", self.run_name, exc)

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        ts = now_ms()
        for key, value in metrics.items():
            if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
                self.record["metrics"].append([key, float(value), ts, step or 0])

    def log_history(self, history: list[Mapping[str, float]], prefix: str = "") -> None:
        """Per-step rows (epochs, sampler steps) as metric histories, step = row index."""
        for step, row in enumerate(history):
            self.log_metrics({f"{prefix}{k}": v for k, v in row.items()}, step=step)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        """Copy a (small) file now: the stage may overwrite it before the flusher runs."""
        path = Path(path)
        if not self.cfg.enabled or not path.is_file():
            return
        dest = self.folder / "files" / (artifact_path or "") / path.name
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
            self.record["artifacts"].append([str(dest), artifact_path])
        except OSError as exc:
            log.warning("MLflow: could not keep artifact %s (%s)", path, exc)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self.record["tags"].update(tags)

    def _sample_system(self) -> None:
        import psutil

        proc, step = psutil.Process(), 0
        proc.cpu_percent(None)
        while not self._stop.wait(SYSTEM_INTERVAL):
            row = {
                "system/cpu_percent": proc.cpu_percent(None),
                "system/rss_megabytes": proc.memory_info().rss / 2**20,
            }
            try:
                import torch

                if torch.cuda.is_available():
                    row["system/gpu_max_allocated_megabytes"] = (
                        torch.cuda.max_memory_allocated() / 2**20
                    )
            except Exception:  # noqa: BLE001 - a missing GPU reading is not an error
                pass
            self.log_metrics(row, step=step)
            step += 1


# ---------------------------------------------------------------- the flusher


def spawn_flusher(root: Path) -> None:
    """Start `python -m pipeline.tracking flush ROOT` detached (it outlives the stage), unless a
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
            [sys.executable, "-m", "pipeline.tracking", "flush", str(root)],
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
    """`python -m pipeline.tracking flush ROOT [--wait]` (what spawn_flusher runs)."""
    if len(argv) < 2 or argv[0] != "flush":
        print("usage: python -m pipeline.tracking flush ROOT [--wait]", file=sys.stderr)
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
