#!/usr/bin/env bash
# Downloads the wheels of benchmarks/gpu_site_requirements.txt for one Python into a folder:
#   benchmarks/gpu_site_wheels.sh 3.12 .whl        # what the GPU host installs
#   benchmarks/gpu_site_wheels.sh 3.11 /tmp/whl311 # the same names for this machine's check
set -euo pipefail
version="${1:-3.12}"
dest="${2:-.whl}"
mkdir -p "$dest"
grep -v '^#' "$(dirname "$0")/gpu_site_requirements.txt" | grep -v '^$' |
  xargs python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$version" \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$dest"
du -sh "$dest"
