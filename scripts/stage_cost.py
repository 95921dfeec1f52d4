"""Where the time of a `dvc repro` goes: each stage's own work, its process's fixed cost and DVC's
work between stages, measured inside one real `dvc repro` of this checkout.

    .venv/bin/python scripts/stage_cost.py --label after [-- -f]   # args after -- go to dvc repro
    .venv/bin/python scripts/stage_cost.py --table                   # only rewrite the table

DVC runs every stage command as `$SHELL -c CMD`; this script points SHELL at a wrapper that notes
when each stage's process starts and ends (its wall time), and tags the pipeline's MLflow runs
with a fresh pipeline id, whose start and end times are the stage's own work. So, per stage:

    fixed cost = process wall time - own work   (interpreter, imports, parameters, teardown)
    DVC        = time between one stage's process and the next (hashing, dvc.lock, checks)

Writes reports/stage_cost/LABEL.json and renders every JSON there into reports/stage_cost.md,
side by side. Wall-clock times of one machine: not a DVC output. It reruns the pipeline (with
`-f`, all of it; the outputs come out identical, as always on one machine).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "reports" / "stage_cost"
TABLE = ROOT / "reports" / "stage_cost.md"

WRAPPER = """#!/bin/sh
# DVC's $SHELL for the measurement: time the stage's command, then exit with its status
start=$(date +%s.%N)
/bin/sh "$@"
rc=$?
echo "$DVC_STAGE $start $(date +%s.%N) $rc" >> "$CGEN_STAGE_TIMES"
exit $rc
"""


def mlflow_runs(pipeline_id: str) -> dict[str, dict]:
    """{dvc stage: {start, end, startup}} of the runs tagged with pipeline_id."""
    import logging

    import yaml

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    from mlflow.tracking import MlflowClient

    tracking = (yaml.safe_load((ROOT / "params.yaml").read_text()) or {}).get("tracking") or {}
    uri = tracking.get("uri") or f"sqlite:///{ROOT / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(tracking.get("experiment", "classifier-generators"))
    runs = client.search_runs(
        [exp.experiment_id], filter_string=f"tags.`pipeline.id` = '{pipeline_id}'",
        max_results=5000,
    )  # fmt: skip
    out = {}
    for run in runs:
        stage = run.data.tags.get("dvc.stage")
        if stage and run.info.end_time:
            out[stage] = {
                "start": run.info.start_time / 1000,
                "end": run.info.end_time / 1000,
                "startup": run.data.metrics.get("time.startup_s"),
            }
    return out


def measure(label: str, repro_args: list[str]) -> dict:
    pipeline_id = f"stage-cost-{label}-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        shell = Path(tmp) / "sh"
        shell.write_text(WRAPPER)
        shell.chmod(0o755)
        times = Path(tmp) / "times"
        env = os.environ | {
            "SHELL": str(shell),
            "CGEN_STAGE_TIMES": str(times),
            "CGEN_PIPELINE_ID": pipeline_id,
        }
        dvc = Path(sys.executable).parent / "dvc"
        t0 = time.time()
        subprocess.run([str(dvc), "repro", *repro_args], cwd=ROOT, env=env, check=True)
        t1 = time.time()
        rows = [line.split() for line in times.read_text().splitlines()] if times.exists() else []
    subprocess.run([str(ROOT / "bin" / "cgen"), "track", "flush"], cwd=ROOT, check=True)
    runs = mlflow_runs(pipeline_id)
    stages, previous_end = [], t0
    for name, start, end, rc in rows:
        start, end = float(start), float(end)
        run = runs.get(name)
        work = None if run is None else run["end"] - run["start"]
        stages.append({
            "stage": name, "rc": int(rc), "wall": end - start, "work": work,
            "fixed": None if work is None else end - start - work,
            "startup": None if run is None else run["startup"],
            "dvc_before": start - previous_end,
        })  # fmt: skip
        previous_end = end
    return {
        "label": label,
        "dvc_repro": " ".join(["dvc", "repro", *repro_args]),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True, capture_output=True
        ).stdout.strip(),  # fmt: skip
        "total": t1 - t0,
        "dvc_after": t1 - previous_end,
        "stages": stages,
    }


def summary(result: dict) -> dict[str, float | int | None]:
    st = result["stages"]
    tracked = [s for s in st if s["work"] is not None]
    startups = [s["startup"] for s in tracked if s["startup"] is not None]
    return {
        "stages run": len(st),
        "`dvc repro` wall time (s)": result["total"],
        "stages' own work (s)": sum(s["work"] for s in tracked),
        "processes' fixed cost (s)": sum(s["fixed"] for s in tracked),
        "processes' wall time (s)": sum(s["wall"] for s in st),
        "DVC between stages (s)": sum(s["dvc_before"] for s in st) + result["dvc_after"],
        "fixed cost per stage, median (s)": statistics.median(s["fixed"] for s in tracked),
        "fixed cost per stage, max (s)": max(s["fixed"] for s in tracked),
        "start-up before the work, median (s)": statistics.median(startups) if startups else None,
        "DVC per stage, median (s)": statistics.median(s["dvc_before"] for s in st),
        "stages without a run (fixed cost unknown)": len(st) - len(tracked),
    }


def table() -> str:
    results = [json.loads(p.read_text()) for p in sorted(OUT.glob("*.json"))]
    results.sort(key=lambda r: r.get("measured_at", 0))
    heads = [f"{r['label']} ({r['commit']})" for r in results]
    lines = [
        "# Where the time of `dvc repro` goes",
        "",
        "Written by `scripts/stage_cost.py` (its docstring says how it measures): fixed cost = a "
        "stage process's wall time minus its own work (the MLflow run), DVC = the time between "
        "one stage's process and the next. One machine, one run per column, in the order shown.",
        "",
        "| | " + " | ".join(heads) + " |",
        "|---" * (len(heads) + 1) + "|",
    ]
    sums = [summary(r) for r in results]
    for key in sums[0] if sums else []:
        cells = []
        for s in sums:
            v = s[key]
            cells.append("–" if v is None else f"{v:,.0f}" if isinstance(v, int) or v >= 100
                         else f"{v:.2f}")  # fmt: skip
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    for r in results:
        lines.append(f"\n{r['label']}: `{r['dvc_repro']}` at commit {r['commit']}.")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", help="name of this measurement (its JSON file and column)")
    ap.add_argument("--table", action="store_true", help="only rewrite reports/stage_cost.md")
    ap.add_argument("repro", nargs="*", help="arguments for dvc repro (after --), e.g. -f")
    args = ap.parse_args(argv)
    if not args.table:
        if not args.label:
            ap.error("--label NAME is needed to measure")
        result = measure(args.label, args.repro) | {"measured_at": time.time()}
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / f"{args.label}.json").write_text(json.dumps(result, indent=1) + "\n")
    TABLE.write_text(table())
    print(TABLE.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
