"""`python -m engine.capacity`: one estimate as text or JSON."""

from __future__ import annotations

import argparse
import json

from engine.capacity.catalog import GB, GPUS, KV_DTYPES, MODELS, WEIGHT_DTYPES
from engine.capacity.sizing import Estimate, estimate


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _format_text(e: Estimate) -> str:
    rows = [
        f"{e.model} on {e.gpus} × {e.gpu} (TP={e.tp}, {e.replicas} replica(s)), weights {e.dtype}, "
        f"KV {e.kv_dtype}, batch {e.batch}, context {e.context_tokens:,}",
        f"  weights                 {e.weight_bytes / GB:10.2f} GB ({e.weight_bytes_per_gpu / GB:.2f} GB per GPU)",
        f"  KV per token            {e.kv_bytes_per_token:10,} bytes",
        f"  KV budget per GPU       {e.kv_budget_bytes_per_gpu / GB:10.2f} GB",
        f"  max concurrent seqs     {e.max_concurrent_sequences:10,} per replica"
        + ("" if e.fits else "  (does not fit: add GPUs, raise TP or quantise)"),
        f"  prefill (TTFT)          {e.prefill_ms:10.2f} ms",
        f"  decode step (TPOT)      {e.decode_step_ms:10.3f} ms ({e.bound}-bound)",
        f"  output tokens/s         {e.output_tokens_per_s:10,.0f} ({e.output_tokens_per_s_per_gpu:,.0f} per GPU)",
        f"  roofline tokens/s       {e.roofline_tokens_per_s:10,.0f}",
        "assumptions:",
        *(f"  - {a}" for a in e.assumptions),
    ]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Print a capacity estimate; exit 2 with the valid choices on a bad name or value."""
    parser = argparse.ArgumentParser(
        prog="python -m engine.capacity",
        description="One capacity estimate: memory, prefill and decode time, throughput.",
    )
    parser.add_argument("--model", required=True, choices=list(MODELS))
    parser.add_argument("--gpu", required=True, choices=list(GPUS))
    parser.add_argument("--gpus", type=_positive_int, default=1)
    parser.add_argument("--tp", type=_positive_int, default=1)
    parser.add_argument("--dtype", choices=WEIGHT_DTYPES, default="bf16")
    parser.add_argument("--kv-dtype", choices=KV_DTYPES, default="bf16")
    parser.add_argument("--batch", type=_positive_int, default=1)
    parser.add_argument("--context", type=_positive_int, default=2048)
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    try:
        result = estimate(
            MODELS[args.model], GPUS[args.gpu], args.gpus, args.tp, args.dtype, args.kv_dtype,
            args.batch, args.context,
        )  # fmt: skip
    except ValueError as error:
        parser.error(str(error))
    print(json.dumps(result.as_dict(), indent=2) if args.json else _format_text(result))
    return 0
