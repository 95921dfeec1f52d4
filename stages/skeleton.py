"""The skeleton every stage shares: read its parameter sections, set up device and seeds, open one
tracked run (`stage`); the options every stage command declares the same way. The writers of
training outputs and sample sets are in `stages.outputs`.

A stage module is: its sections (`SECTIONS`, which dvc.yaml's `params:` must cover), a typer
command whose options are the paths dvc.yaml passes, and a body of one or two library calls
between `with stage(...) as st:` and a `write_*` call.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import torch
import typer

from pipeline import dist, numerics
from pipeline.accel import Accel
from pipeline.config import load_sections, to_dict
from pipeline.io import atomic_write_json
from pipeline.runtime import RuntimeConfig, configure, derive_seed, generator
from pipeline.tracking import Tracker, TrackingConfig, stage_tags

# Options every stage command declares the same way (the paths come from dvc.yaml's cmd)
Params = Annotated[Path, typer.Option("--params", help="parameter file")]
ModelOut = Annotated[Path, typer.Option("--model-out", help="checkpoint to write")]
SamplesOut = Annotated[Path, typer.Option("--samples-out", help="sample set to write")]
MetricsOut = Annotated[Path, typer.Option("--metrics", help="metrics JSON to write")]
FigureOut = Annotated[Path, typer.Option("--figure", help="PNG figure to write")]
HistoryOut = Annotated[
    Path, typer.Option("--history", help="per-epoch metrics TSV to write (dvc plots)")
]
Resume = Annotated[
    Path | None,
    typer.Option("--resume", help="scratch file of resume snapshots (kept until the run ends)"),
]
TrainData = Annotated[Path, typer.Option("--train", help="prepared training split")]
TestData = Annotated[Path, typer.Option("--test", help="prepared test split")]
PARAMS_DEFAULT = Path("params.yaml")
log = logging.getLogger(__name__)


def repo_root() -> Path:
    """The repository root: DVC_ROOT under dvc (also for queued experiments), else the cwd."""
    return Path(os.environ.get("DVC_ROOT") or Path.cwd()).resolve()


@dataclass
class Stage:
    """What a running stage has: its sections, device, seed and tracked run."""

    name: str
    cfg: dict[str, Any]  # dotted section key -> config dataclass
    runtime: RuntimeConfig
    device: torch.device
    run: Tracker

    @property
    def accel(self) -> Accel:
        """The training loops' GPU-path options of `runtime` (pipeline.accel)."""
        r = self.runtime
        return Accel(r.precision, r.channels_last, r.compile)

    def seed(self, *parts: int | str) -> int:
        return derive_seed(self.runtime.seed, *parts)

    def generator(self, *parts: int | str) -> torch.Generator:
        return generator(self.runtime.seed, *parts)


@contextmanager
def stage(
    name: str,
    params_file: Path,
    sections: Mapping[str, type],
    *,
    tags: Mapping[str, str | None] | None = None,
    system_metrics: bool = False,
) -> Iterator[Stage]:
    """Load `sections` (plus runtime and tracking) strictly, configure the device and seeds, and
    open the stage's tracked run, whose parameters are the sections it read. Under torchrun the
    process joins the DDP group (pipeline.dist) and rank 0 alone tracks the run."""
    cfg = load_sections(
        params_file, {"runtime": RuntimeConfig, "tracking": TrackingConfig, **sections}
    )
    device = dist.init(cfg["runtime"].backend, configure(cfg["runtime"]))
    machine = numerics.fingerprint(cfg["runtime"].numerics, cfg["runtime"].threads)
    for problem in numerics.problems(machine):
        log.warning(
            "runtime.numerics is portable, but %s: this machine's numbers will differ from the "
            "committed ones (bin/cgen machine compares)",
            problem,
        )
    root = repo_root()
    tracking = cfg["tracking"]
    if not dist.is_main():
        tracking = dataclasses.replace(tracking, enabled=False)
    run = Tracker(
        tracking,
        root=root,
        run_name=name,
        tags=stage_tags(root, str(device), params_file, **(tags or {}))
        | {f"machine.{k}": v for k, v in machine.items()},
        params={k: to_dict(v) for k, v in cfg.items() if k != "tracking"},
        system_metrics=system_metrics,
    )
    try:
        with run:
            yield Stage(name, cfg, cfg["runtime"], device, run)
    except BaseException:
        dist.shutdown(wait=False)  # the other ranks fail on their own: do not wait for them
        raise
    dist.shutdown()


def write_metrics(path: Path, metrics: Mapping[str, Any]) -> None:
    """Small metrics JSON (six significant digits, so diffs stay readable and a step size of
    1e-7 survives); one process per machine writes."""
    if not dist.writes_files():
        return
    atomic_write_json(
        path, {k: float(f"{v:.6g}") if isinstance(v, float) else v for k, v in metrics.items()}
    )
