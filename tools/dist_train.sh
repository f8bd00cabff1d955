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
CONFIG=$1
NPROCS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

if [ -n "$PYTHON" ]; then
    LAUNCH=("$PYTHON" -m torch.distributed.run)
elif [ -n "$VIRTUAL_ENV" ] && [ -x "$VIRTUAL_ENV/bin/python" ]; then
    LAUNCH=("$VIRTUAL_ENV/bin/python" -m torch.distributed.run)
elif command -v torchrun > /dev/null 2>&1; then
    LAUNCH=(torchrun)
else
    LAUNCH=(python3 -m torch.distributed.run)
fi

PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
"${LAUNCH[@]}" \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --master_port="$PORT" \
    --nproc_per_node="$NPROCS" \
    "$ROOT/tools/train.py" \
    "$CONFIG" \
    --launcher pytorch "${@:3}"
