#!/usr/bin/env bash
# The site on a lent GPU host in one device command (benchmarks/gpu_site_proof.py says what it
# does): the app's wheels carried in .whl/ (benchmarks/gpu_site_wheels.sh), installed with no
# registry; bubblewrap carried in .debs/. With carry [".whl", ".debs"]:
#   bash benchmarks/gpu_site_proof.sh            # OUT defaults to var/gpu-site
#   bash benchmarks/gpu_site_proof.sh --no-gpu   # correctness only, anywhere
# PYTHON, WHEELS and SITE name another interpreter, wheel folder and install target.
set -uo pipefail
OUT="${OUT:-var/gpu-site}"
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
"$PYTHON" -c 'import django, celery, torch, triton; print("django", django.__version__,
  "celery", celery.__version__, "torch", torch.__version__, "triton", triton.__version__)'
"$PYTHON" "$(dirname "$0")/gpu_site_proof.py" "$@" 2>&1 | tee "$OUT/gpu_site_proof.log"
