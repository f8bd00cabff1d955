#!/usr/bin/env bash
# Shared by dist_train.sh and dist_test.sh (sourced): torchrun with the multi-node variables.
# Env: NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), PORT (29500),
#      PYTHON (interpreter; default: the active venv's, else the repository's .venv (made by
#      `make install`), else torchrun / python3 on PATH).
# Usage: run_torchrun N_PROCS SCRIPT [script args...]
run_torchrun() {
    local nprocs=$1 script=$2
    shift 2
    local root launch
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    if [ -n "$PYTHON" ]; then
        launch=("$PYTHON" -m torch.distributed.run)
    elif [ -n "$VIRTUAL_ENV" ] && [ -x "$VIRTUAL_ENV/bin/python" ]; then
        launch=("$VIRTUAL_ENV/bin/python" -m torch.distributed.run)
    elif [ -x "$root/.venv/bin/python" ]; then
        launch=("$root/.venv/bin/python" -m torch.distributed.run)
    elif command -v torchrun > /dev/null 2>&1; then
        launch=(torchrun)
    else
        launch=(python3 -m torch.distributed.run)
    fi
    PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" \
    "${launch[@]}" \
        --nnodes="${NNODES:-1}" \
        --node_rank="${NODE_RANK:-0}" \
        --master_addr="${MASTER_ADDR:-127.0.0.1}" \
        --master_port="${PORT:-29500}" \
        --nproc_per_node="$nprocs" \
        "$root/tools/$script" "$@" --launcher pytorch
}
