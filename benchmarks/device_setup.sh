# Sourced by the device scripts (gpu_site_proof.sh, gpu_engine_tier.sh): the app's wheels
# carried in $WHEELS (.whl/) installed into $SITE with no registry and put on PYTHONPATH,
# bubblewrap from .debs/, and the card named. Sets PYTHON (python3 unless given).
PYTHON="${PYTHON:-python3}"
WHEELS="${WHEELS:-.whl}"
SITE="${SITE:-/tmp/site}"
if [ -d "$WHEELS" ]; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "$WHEELS"/*.whl ||
    exit 1
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
. "$(dirname "${BASH_SOURCE[0]}")/bwrap_from_debs.sh"
command -v nvidia-smi >/dev/null &&
  nvidia-smi --query-gpu=name,driver_version,memory.used --format=csv,noheader
