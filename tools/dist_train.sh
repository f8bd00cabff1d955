#!/usr/bin/env bash
# Multi-process training with torchrun (gloo on CPU-only machines, nccl with CUDA).
# Usage: tools/dist_train.sh CONFIG N_PROCS [train.py args...]
# Env: NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), PORT (29500),
#      PYTHON (interpreter; default: the active venv's, else torchrun / python3 on PATH).
set -e
if [ "$#" -lt 2 ]; then
    echo "usage: $0 CONFIG N_PROCS [train.py args...]" >&2
    exit 2
fi
source "$(dirname "$0")/dist_common.sh"
run_torchrun "$2" train.py "$1" "${@:3}"
