#!/usr/bin/env bash
# The kernel problems on a lent GPU in one device command: bubblewrap carried as Debian
# packages in .debs/ (grader/README.md says how), a one-grade smoke (int8-matmul unless
# SMOKE_PROBLEM names another), and only if that is accepted the stages named in STAGES, each
# grade written to $OUT as it ends.
#   STAGES=stability,runtime,failing REPEATS=4 DEADLINE_S=420 benchmarks/kernels_on_gpu.sh
# A second run in the same device command can skip the smoke with SMOKE=0 and write to another
# file with NAME=rest (kernels-rest.json). SMOKE_PROBLEM names the smoke's problem; issue 22's
# three problems (fp8 norm, multi-LoRA, MoE) in one command, three stability grades each:
#   SMOKE_PROBLEM=fused-rmsnorm-fp8 PROBLEMS=fused-rmsnorm-fp8,lora-bgmv,moe-dispatch \
#     STAGES=failing,baseline,stability,runtime REPEATS=3 DEADLINE_S=420 NAME=p22 \
#     benchmarks/kernels_on_gpu.sh
set -uo pipefail
OUT="${OUT:-var/gpu}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
. "$(dirname "$0")/bwrap_from_debs.sh"
nvidia-smi --query-gpu=name,driver_version,memory.used --format=csv,noheader
python3 -m grader.sandbox --check-gpu 2>&1 | tail -3
if [ "${SMOKE:-1}" != 0 ]; then
  python3 -m grader.gpu_check --problems "${SMOKE_PROBLEM:-int8-matmul}" --stages stability --repeats 1 \
    --deadline-s 120 --json "$OUT/smoke.json" 2>&1 | tee "$OUT/smoke.log" | grep -v '^{'
  if ! grep -q '"verdict": "accepted"' "$OUT/smoke.json"; then
    echo "the smoke grade was not accepted: stopping here"
    exit 1
  fi
fi
python3 -m grader.gpu_check --problems "${PROBLEMS:-int8-matmul,paged-decode-attention,triton-attention}" \
  --stages "${STAGES:-stability,runtime,failing}" --repeats "${REPEATS:-3}" \
  --deadline-s "${DEADLINE_S:-400}" --json "$OUT/kernels${NAME:+-$NAME}.json" 2>&1 | tee "$OUT/kernels${NAME:+-$NAME}.log" |
  grep -v '^{\|^  int8 sweep'
