#!/usr/bin/env bash
# Multi-process evaluation with torchrun (gloo on CPU-only machines, nccl with CUDA).
# Usage: tools/dist_test.sh CONFIG CHECKPOINT N_PROCS [test.py args...]
# Env: as tools/dist_train.sh.
set -e
if [ "$#" -lt 3 ]; then
    echo "usage: $0 CONFIG CHECKPOINT N_PROCS [test.py args...]" >&2
    exit 2
fi
source "$(dirname "$0")/dist_common.sh"
run_torchrun "$3" test.py "$1" "$2" "${@:4}"
