#!/usr/bin/env bash
# Issue 22's GPU tiers in one device command (carry [".whl", ".debs"]): the three kernel
# problems through kernels_on_gpu.sh (every wrong and cheating solution, the torch baselines,
# two stability grades of each reference), then the two new engine problems' reference through
# gpu_engine_tier.sh. Each stage has its own deadline so both report inside one call.
#   OUT=$OUT bash benchmarks/problems2_gpu.sh
set -uo pipefail
OUT="${OUT:-var/problems2-gpu}"
mkdir -p "$OUT"
export OUT
SMOKE_PROBLEM=fused-rmsnorm-fp8 PROBLEMS=fused-rmsnorm-fp8,lora-bgmv,moe-dispatch \
  STAGES=failing,baseline,stability,runtime REPEATS=2 DEADLINE_S=260 NAME=p22 \
  timeout 320 bash "$(dirname "$0")/kernels_on_gpu.sh"
timeout "${ENGINE_TIER_S:-150}" bash "$(dirname "$0")/gpu_engine_tier.sh" \
  --problems radix-prefix-cache,slo-scheduler --solutions reference
