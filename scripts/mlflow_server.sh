#!/bin/sh
# A shared MLflow tracking server for this project: runs in a SQL store, artifacts served (proxied)
# by the server itself, so every machine that runs stages logs to one place over HTTP.
#
# Usage: scripts/mlflow_server.sh [--host H] [--port P] [--store URI] [--artifacts DIR]
#                                 [--experiment NAME] [--workers N] [-- extra mlflow server args]
# Each option also reads an environment variable (the option wins); the defaults:
#   --host        CGEN_MLFLOW_HOST        127.0.0.1 (0.0.0.0 to accept other machines)
#   --port        CGEN_MLFLOW_PORT        5000
#   --store       CGEN_MLFLOW_STORE       sqlite:///<repo>/.tracking/server/mlflow.db
#   --artifacts   CGEN_MLFLOW_ARTIFACTS   <repo>/.tracking/server/artifacts (or s3://bucket/path, ...)
#   --experiment  CGEN_MLFLOW_EXPERIMENT  classifier-generators (params.yaml `tracking.experiment`)
#   --workers     CGEN_MLFLOW_WORKERS     1 (uvicorn workers; one is plenty on 2 cores, and SQLite
#                                         takes one writer at a time anyway)
# The store may be any SQLAlchemy URI. For a team, PostgreSQL:
#   --store postgresql://user:pass@dbhost/mlflow
# needs the driver in the server's environment only (`.venv/bin/pip install psycopg2-binary`; not
# part of requirements.lock, not installed here); clients talk HTTP and need nothing extra. An
# `s3://` artifact destination needs boto3 on the server, `gs://` google-cloud-storage.
#
# It prints the value for params.yaml, then runs `mlflow server` in the foreground (exec: its pid
# is this script's; Ctrl-C or SIGTERM stops it and its workers). Point the stages at it with
#   uri: http://127.0.0.1:5000   (under `tracking:` in params.yaml)
# or per experiment: .venv/bin/dvc exp run -S tracking.uri=http://127.0.0.1:5000 ...
# Stages never wait for the server: they spool their runs (.tracking/spool) and a detached flusher
# sends them; if the server is down they stay spooled until `bin/cgen track flush`.
#
# The experiment is created here, as soon as the server answers, with the server's own artifact
# root (mlflow-artifacts:/), so reviewers see it before the first run arrives (a flusher that
# finds it missing creates it the same way: pipeline/flusher.py `_client`).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
host=${CGEN_MLFLOW_HOST:-127.0.0.1}
port=${CGEN_MLFLOW_PORT:-5000}
store=${CGEN_MLFLOW_STORE:-sqlite:///$root/.tracking/server/mlflow.db}
artifacts=${CGEN_MLFLOW_ARTIFACTS:-$root/.tracking/server/artifacts}
experiment=${CGEN_MLFLOW_EXPERIMENT:-classifier-generators}
workers=${CGEN_MLFLOW_WORKERS:-1}

usage() { sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//'; }
need() { [ $# -ge 2 ] || { echo "mlflow_server.sh: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case $1 in
    --host) need "$@"; host=$2; shift 2 ;;
    --port) need "$@"; port=$2; shift 2 ;;
    --store) need "$@"; store=$2; shift 2 ;;
    --artifacts) need "$@"; artifacts=$2; shift 2 ;;
    --experiment) need "$@"; experiment=$2; shift 2 ;;
    --workers) need "$@"; workers=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) echo "mlflow_server.sh: unknown argument '$1' (--help)" >&2; exit 2 ;;
  esac
done

if [ -x "$root/.venv/bin/mlflow" ]; then bin=$root/.venv/bin; else bin=$(dirname "$(command -v mlflow)"); fi
[ -x "$bin/mlflow" ] || { echo "mlflow_server.sh: no mlflow (run make setup)" >&2; exit 1; }

case $store in  # a SQLite file's folder must exist
  sqlite:///*) mkdir -p "$(dirname "${store#sqlite:///}")" ;;
esac
case $artifacts in
  *://*) ;;
  *) mkdir -p "$artifacts"; artifacts=$(cd "$artifacts" && pwd) ;;
esac

case $host in
  0.0.0.0|::) shown=$(hostname); probe=127.0.0.1 ;;
  *) shown=$host; probe=$host ;;
esac
uri=http://$shown:$port
echo "tracking.uri: $uri"
echo "  (params.yaml tracking.uri, or: .venv/bin/dvc exp run -S tracking.uri=$uri ...)"
echo "  store $store, artifacts $artifacts, experiment '$experiment'"

# Create the experiment once the server answers (in the background: the server runs in front).
# Plain urllib, no MLflow import; an existing experiment is left as it is.
# It gives up when the server's process (this one, after exec) is gone.
"$bin/python" - "http://$probe:$port" "$experiment" $$ <<'EOF' &
import json, os, sys, time, urllib.error, urllib.request
base, name, server = sys.argv[1], sys.argv[2], int(sys.argv[3])
while True:  # the first start on a loaded 2-core machine took 30 s here
    try:
        urllib.request.urlopen(base + "/health", timeout=2).read()
        break
    except OSError:
        try:
            os.kill(server, 0)
        except OSError:
            sys.exit(0)  # the server exited (e.g. port in use): it said why
        time.sleep(0.5)
req = urllib.request.Request(base + "/api/2.0/mlflow/experiments/create",
                             data=json.dumps({"name": name}).encode(),
                             headers={"Content-Type": "application/json"})
try:
    urllib.request.urlopen(req, timeout=30).read()
    print(f"mlflow_server.sh: created experiment '{name}' (artifacts served by the server)")
except urllib.error.HTTPError as exc:
    if b"RESOURCE_ALREADY_EXISTS" not in exc.read():
        sys.exit(f"mlflow_server.sh: could not create experiment '{name}': {exc}")
EOF

MLFLOW_DISABLE_TELEMETRY=true
export MLFLOW_DISABLE_TELEMETRY
exec "$bin/mlflow" server --backend-store-uri "$store" --serve-artifacts \
  --artifacts-destination "$artifacts" --host "$host" --port "$port" --workers "$workers" "$@"
