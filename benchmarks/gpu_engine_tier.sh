#!/usr/bin/env bash
# The engine problems' GPU tier on a lent card in one device command (gpu_engine_tier.py says
# what it does), set up as gpu_site_proof.sh is: the app's wheels from .whl/, bubblewrap from
# .debs/. With carry [".whl", ".debs"]:
#   OUT=$OUT bash benchmarks/gpu_engine_tier.sh
# Arguments go to gpu_engine_tier.py (--problems, --solutions, --full, --runs, --cpu: the CPU path).
set -uo pipefail
OUT="${OUT:-var/gpu-engine-tier}"
mkdir -p "$OUT"
export OUT PYTHONUNBUFFERED=1
. "$(dirname "$0")/device_setup.sh"
"$PYTHON" "$(dirname "$0")/gpu_engine_tier.py" "$@" 2>&1 | tee "$OUT/gpu_engine_tier.log"
