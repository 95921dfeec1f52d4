"""`cgen where`: where the latest results and the MLflow runs are."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.config import read_yaml
from pipeline.tracking import TrackingConfig, default_uri
from stages.skeleton import PARAMS_DEFAULT, Params, repo_root

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    dvc_file: Annotated[Path, typer.Option("--dvc-file")] = Path("dvc.yaml"),
    params: Params = PARAMS_DEFAULT,
) -> None:
    """Print where the report, the headline metrics and the MLflow runs are."""
    from pipeline.config import from_dict

    for path in ("reports/report.md", "reports/report.html", "reports/summary.json"):
        mark = "" if Path(path).exists() else "   (not produced yet: run `make repro`)"
        typer.echo(f"  {path}{mark}")
    stages = read_yaml(dvc_file).get("stages") or {}
    typer.echo(f"  {len(stages)} stage families in {dvc_file}; `dvc dag` draws them")
    tracking = from_dict(TrackingConfig, read_yaml(params)["tracking"], "tracking")
    uri = tracking.uri or default_uri(repo_root())
    db = Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None
    if not tracking.enabled:
        typer.echo("MLflow runs: none (tracking.enabled is false)")
    elif db is not None and not db.is_file():
        typer.echo(f"MLflow runs: none yet ({db} does not exist: `make repro` makes it)")
    else:
        typer.echo(f"MLflow runs: {uri} (experiment '{tracking.experiment}')")
        typer.echo(f"  browse: .venv/bin/mlflow ui --backend-store-uri {uri}")
    typer.echo("Compare experiments: .venv/bin/dvc exp show --only-changed")
