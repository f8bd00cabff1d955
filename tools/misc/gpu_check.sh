#!/usr/bin/env bash
# The CUDA-only checks of dira_mm (AMP fp16/bf16 vs fp32, nccl DDP with SyncBN and
# GlobalBatchNorm, CUDA RNG in resume, throughput) in under 10 minutes, as a table.
# Usage: bash tools/misc/gpu_check.sh [--out DIR] [--only amp ddp train rng throughput]
# Exit codes: 0 all passed, 1 a check failed, 2 bad arguments, 77 no CUDA device (skipped).
# Env: PYTHON (interpreter; default: the active venv's, else the repo's .venv, else python3).
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [ -n "$PYTHON" ]; then
    py="$PYTHON"
elif [ -n "$VIRTUAL_ENV" ] && [ -x "$VIRTUAL_ENV/bin/python" ]; then
    py="$VIRTUAL_ENV/bin/python"
elif [ -x "$root/.venv/bin/python" ]; then
    py="$root/.venv/bin/python"
else
    py=python3
fi
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" exec "$py" "$root/tools/misc/gpu_check.py" "$@"
