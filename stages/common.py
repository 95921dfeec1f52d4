"""What every stage does the same way: parameters, errors, seeding, tracking, metrics files."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import typer

from pipeline.checkpoint import CheckpointError
from pipeline.config import ConfigError, to_dict
from pipeline.data import DataError, ImageSet
from pipeline.io import atomic_write_json
from pipeline.models import ModelConfig
from pipeline.params import Params, load_params
from pipeline.tracking import Tracker, stage_tags
from pipeline.train import NumericalError

F = TypeVar("F", bound=Callable[..., Any])

# exit codes: 2 = bad parameters (as argparse/typer use for usage errors), 1 = other bad input
EXIT_CODES: dict[type[Exception], int] = {
    ConfigError: 2,
    DataError: 1,
    CheckpointError: 1,
    NumericalError: 1,
}

PARAMS_OPTION = typer.Option(Path("params.yaml"), "--params", help="parameter file")
RESUME_OPTION = typer.Option(
    None, "--resume", help="scratch file of resume snapshots (kept only until the run ends)"
)


def setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    for noisy in ("alembic", "mlflow", "urllib3", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def stage_command(fn: F) -> F:
    """Wrap a CLI command: known user errors become one line on stderr and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        setup_logging()
        try:
            return fn(*args, **kwargs)
        except tuple(EXIT_CODES) as exc:
            code = next(c for t, c in EXIT_CODES.items() if isinstance(exc, t))
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code) from None

    return wrapper  # type: ignore[return-value]


def repo_root() -> Path:
    """The repository root: DVC_ROOT under dvc (also for queued experiments), else the cwd."""
    return Path(os.environ.get("DVC_ROOT") or Path.cwd()).resolve()


def read_params(path: Path) -> Params:
    return load_params(path)


def tracker(
    params: Params,
    run_name: str,
    run_params: dict[str, Any],
    device: Any,
    round_id: str | None = None,
    system_metrics: bool = False,
) -> Tracker:
    """An MLflow run for a stage, tagged with stage, round, commit, experiment and device."""
    root = repo_root()
    return Tracker(
        params.tracking,
        root=root,
        run_name=run_name,
        tags=stage_tags(root, str(device), round_id),
        params={k: to_dict(v) for k, v in run_params.items()},
        system_metrics=system_metrics,
    )


def expected_model(model: ModelConfig, data: ImageSet) -> dict:
    """Model args a checkpoint must have under the current parameters (`num_outputs` aside:
    STIC rounds add a fake class), so a stale or foreign checkpoint is refused by key."""
    return {**asdict(model), "in_channels": data.shape[0]}


def write_metrics(path: Path, metrics: dict[str, Any]) -> None:
    """Small committed metrics JSON (rounded so diffs stay readable)."""
    atomic_write_json(
        path, {k: round(v, 6) if isinstance(v, float) else v for k, v in metrics.items()}
    )
