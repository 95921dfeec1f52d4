#!/bin/sh
# The GPU check of the paper profile (scripts/gpu_check.py explains it): run on a machine with a
# CUDA GPU and torch; dvc, mlflow and torch-fidelity are not needed. Writes reports/gpu.md.
#   scripts/gpu_check.sh [--train-images N] [--stic-batches N]
root=$(cd "$(dirname "$0")/.." && pwd)
py="$root/.venv/bin/python"
[ -x "$py" ] || py=python3
exec "$py" "$root/scripts/gpu_check.py" "$@"
