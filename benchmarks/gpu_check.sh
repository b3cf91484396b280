#!/usr/bin/env bash
# The prepared GPU check (issue 23): under 8 minutes, no network, one results file.
#
#   bash benchmarks/gpu_check.sh                 # on a machine with an NVIDIA GPU
#   bash benchmarks/gpu_check.sh --dry-run       # the commands it would run
#   bash benchmarks/gpu_check.sh --device cpu    # the plumbing, on a CPU
#
# Data: ${IMGCLF_DATA_DIR:-../shared/datasets} (animals/, cifar10-jpg/); a step whose data is
# absent is skipped and says so. Results: $OUT/gpu_check_results.txt when $OUT is set, else
# ./gpu_check_results.txt. Each step runs under `timeout`; a failed step does not stop the
# others (the steps and the results file are in benchmarks/gpu_check.py).
set -u

cd "$(dirname "$0")/.." || exit 1
export IMGCLF_DATA_DIR="${IMGCLF_DATA_DIR:-../shared/datasets}"
export PYTHONUNBUFFERED=1

if [ -x .venv/bin/python ]; then
    PYTHON=.venv/bin/python
else
    PYTHON=python3
fi

timeout -k 5 470 "$PYTHON" -m benchmarks.gpu_check "$@"
