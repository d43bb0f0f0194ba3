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
. "$(dirname "$0")/device_setup.sh"
"$PYTHON" -c 'import django, celery, torch, triton; print("django", django.__version__,
  "celery", celery.__version__, "torch", torch.__version__, "triton", triton.__version__)'
"$PYTHON" "$(dirname "$0")/gpu_site_proof.py" "$@" 2>&1 | tee "$OUT/gpu_site_proof.log"
