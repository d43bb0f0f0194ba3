#!/usr/bin/env bash
# tp-mlp's GPU tier on a lent two-card machine in one device command (tp_mlp_gpu.py says what
# it does), set up as gpu_engine_tier.sh is: the app's wheels from .whl/, bubblewrap from
# .debs/. On nvidia-h100-x2, with carry [".whl", ".debs"]:
#   OUT=$OUT bash benchmarks/tp_mlp_gpu.sh
# Arguments go to tp_mlp_gpu.py (--skip-grades: the direct measurement only).
set -uo pipefail
OUT="${OUT:-var/tp-mlp-gpu}"
mkdir -p "$OUT"
export OUT PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
. "$(dirname "$0")/device_setup.sh"
"$PYTHON" "$(dirname "$0")/tp_mlp_gpu.py" --json "$OUT/tp_mlp_gpu.json" "$@" 2>&1 |
  tee "$OUT/tp_mlp_gpu.log"
