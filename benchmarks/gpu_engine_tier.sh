#!/usr/bin/env bash
# The engine problems' GPU tier on a lent card in one device command (gpu_engine_tier.py says
# what it does), set up as gpu_site_proof.sh is: the app's wheels from .whl/, bubblewrap from
# .debs/. With carry [".whl", ".debs"]:
#   OUT=$OUT bash benchmarks/gpu_engine_tier.sh
set -uo pipefail
OUT="${OUT:-var/gpu-engine-tier}"
mkdir -p "$OUT"
export OUT PYTHONUNBUFFERED=1
PYTHON="${PYTHON:-python3}"
WHEELS="${WHEELS:-.whl}"
SITE="${SITE:-/tmp/site}"
if [ -d "$WHEELS" ]; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "$WHEELS"/*.whl ||
    exit 1
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
. "$(dirname "$0")/bwrap_from_debs.sh"
command -v nvidia-smi >/dev/null &&
  nvidia-smi --query-gpu=name,driver_version,memory.used --format=csv,noheader
"$PYTHON" "$(dirname "$0")/gpu_engine_tier.py" 2>&1 | tee "$OUT/gpu_engine_tier.log"
