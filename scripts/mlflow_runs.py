"""List the runs a tracking store holds for this project: name, status, DVC stage and experiment,
pipeline id, duration and top-level artifacts, oldest first, then the count.

    .venv/bin/python scripts/mlflow_runs.py http://127.0.0.1:5000 [--experiment NAME]

Works on any tracking URI (a server, or sqlite:///$PWD/mlflow.db). Exit 1 when the experiment
does not exist."""

from __future__ import annotations

import argparse
import logging
import os
import sys


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("uri", help="tracking URI, e.g. http://127.0.0.1:5000")
    ap.add_argument("--experiment", default="classifier-generators")
    args = ap.parse_args(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=args.uri)
    exp = client.get_experiment_by_name(args.experiment)
    if exp is None:
        print(f"no experiment '{args.experiment}' at {args.uri}", file=sys.stderr)
        return 1
    print(f"experiment '{exp.name}', artifacts at {exp.artifact_location}")
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
    for run in runs:
        tags, info = run.data.tags, run.info
        seconds = ((info.end_time or info.start_time) - info.start_time) / 1000
        artifacts = [a.path for a in client.list_artifacts(info.run_id)]
        print(
            f"{info.run_name:24} {info.status:9} stage={tags.get('dvc.stage', '-'):10} "
            f"experiment={tags.get('dvc.experiment', '-'):10} "
            f"pipeline.id={tags.get('pipeline.id', '-')} "
            f"child={'yes' if 'mlflow.parentRunId' in tags else 'no'} "
            f"{seconds:.1f}s artifacts={artifacts}"
        )
    print(f"{len(runs)} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
