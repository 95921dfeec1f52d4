"""`cgen track flush`: log every stage run still in the spool into MLflow now, and say what could
not be logged (stages spool their runs and a detached flusher logs them: pipeline.tracking,
pipeline.flusher)."""

from __future__ import annotations

import typer

from stages.skeleton import repo_root

app = typer.Typer(
    help="MLflow runs spooled by the stages.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command("flush")
def flush() -> None:
    """Wait for any running flusher, then log what is left; exit 1 if some run could not be."""
    from pipeline.flusher import flush as flush_runs
    from pipeline.flusher import pending

    root = repo_root()
    logged, problems = flush_runs(root, wait=True)
    for problem in problems:
        typer.echo(f"not logged (kept in the spool): {problem}", err=True)
    left = len(pending(root))
    typer.echo(f"MLflow: {logged} run(s) logged now, {left} left in the spool")
    if problems:
        raise typer.Exit(1)


@app.command("status")
def status() -> None:
    """How many runs wait in the spool."""
    from pipeline.flusher import pending

    typer.echo(f"MLflow: {len(pending(repo_root()))} run(s) in the spool")
