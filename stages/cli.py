"""`cgen`: one command per DVC stage (exactly what dvc.yaml calls) plus helpers."""

from __future__ import annotations

import json
from pathlib import Path

import typer
import yaml

from pipeline.config import ConfigError, merge, read_yaml
from pipeline.io import atomic_write_text
from pipeline.params import load_params, parse_params
from pipeline.tracking import TrackingConfig, default_uri

# importing a stage module registers its commands (evaluate/report: issue 4; acgan, regene, sgld,
# wang_torr: issue 5)
from stages import acgan, classifier, evaluate, prepare, regene, report, sgld, stic, wang_torr  # noqa: F401
from stages.app import app
from stages.common import PARAMS_OPTION, repo_root, stage_command

params_app = typer.Typer(help="Check parameters and apply named profiles.", no_args_is_help=True)
app.add_typer(params_app, name="params")

PROFILES_OPTION = typer.Option(Path("profiles"), "--profiles-dir", help="folder of profiles")


@params_app.command("check")
@stage_command
def params_check(params_file: Path = PARAMS_OPTION) -> None:
    """Validate a parameter file without running anything."""
    load_params(params_file)
    typer.echo(f"{params_file}: ok")


def _profile(name: str, profiles_dir: Path) -> dict:
    path = profiles_dir / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in profiles_dir.glob("*.yaml"))
        raise ConfigError(
            f"profile '{name}' not found in {profiles_dir}/; known: {', '.join(known)}"
        )
    return read_yaml(path)


def _leaves(data: dict, prefix: str = "") -> list[tuple[str, object]]:
    out = []
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        out += _leaves(value, name) if isinstance(value, dict) else [(name, value)]
    return out


@params_app.command("apply")
@stage_command
def params_apply(
    name: str = typer.Argument(..., help="profile name, e.g. cifar10_wrn"),
    params_file: Path = PARAMS_OPTION,
    profiles_dir: Path = PROFILES_OPTION,
) -> None:
    """Merge a named profile into the parameter file (validated before anything is written)."""
    merged = merge(read_yaml(params_file), _profile(name, profiles_dir))
    parse_params(merged)
    atomic_write_text(params_file, yaml.safe_dump(merged, sort_keys=False))
    typer.echo(f"{params_file}: profile '{name}' applied; run `dvc repro` (or `make repro`)")


@params_app.command("overrides")
@stage_command
def params_overrides(
    name: str = typer.Argument(..., help="profile name"),
    params_file: Path = PARAMS_OPTION,
    profiles_dir: Path = PROFILES_OPTION,
) -> None:
    """Print a profile as `-S key=value` flags for `dvc exp run` (validated first)."""
    profile = _profile(name, profiles_dir)
    parse_params(merge(read_yaml(params_file), profile))
    flags = [f"-S '{k}={v if isinstance(v, str) else json.dumps(v)}'" for k, v in _leaves(profile)]
    typer.echo(" ".join(flags))


@app.command("where")
@stage_command
def where(
    dvc_file: Path = typer.Option(Path("dvc.yaml"), "--dvc-file"), params_file: Path = PARAMS_OPTION
) -> None:
    """Print where the latest results and the MLflow runs are."""
    stages = read_yaml(dvc_file).get("stages") or {}
    seen: list[str] = []
    for stage in stages.values():
        for kind in ("metrics", "plots", "outs"):
            for entry in stage.get(kind) or []:
                path = next(iter(entry)) if isinstance(entry, dict) else entry
                if "${" not in str(path) and path not in seen:
                    seen.append(path)
    reports = [p for p in seen if p.startswith("reports")]
    typer.echo("Results (from dvc.yaml):")
    for path in reports:
        mark = "" if Path(path).exists() else "   (not produced yet: run `make repro`)"
        typer.echo(f"  {path}{mark}")
    tracking = load_params(params_file).tracking if params_file.exists() else TrackingConfig()
    uri = tracking.uri or default_uri(repo_root())
    typer.echo(f"MLflow runs: {uri} (experiment '{tracking.experiment}')")
    typer.echo(f"  browse: .venv/bin/mlflow ui --backend-store-uri {uri}")
    typer.echo("Compare experiments: .venv/bin/dvc exp show --only-changed")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
