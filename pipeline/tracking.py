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

The flusher (pipeline.flusher) logs the spool. If the store cannot be reached, records stay in the
spool; `cgen track flush` retries and reports. DVC's metrics files stay the record.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.flusher import SPOOL, spawn_flusher

log = logging.getLogger(__name__)

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
