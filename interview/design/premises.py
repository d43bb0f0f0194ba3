"""What the capacity model takes for granted in a numeric design sub-question, said up front.

A candidate who assumes 100% of HBM bandwidth and one who assumes 80% are both doing the
arithmetic right; the answer differs by 25%. So each sub-question states, before it is
answered, the premises its checker uses (HBM and FLOP/s efficiency, how quantised weights are
counted, the all-reduce model, the memory the engine may use), each sentence built from the
same constants and defaults that `engine.capacity` computes with, so the two cannot drift
apart. Where efficiency enters the answer the checker also accepts the ideal roofline (every
rate at 100% of peak) and says which of the two the candidate gave. Plain Python: no Django.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from engine import capacity

ADJUSTED = "efficiency-adjusted"
IDEAL = "ideal roofline"

# The capacity functions whose result depends on `capacity.Efficiency`: their ideal roofline
# is the same call with `capacity.PEAK`.
EFFICIENCY_FUNCTIONS = frozenset(
    {"prefill_time", "decode_step_time", "throughput", "gpus_needed", "estimate"}
)
# Fields that are the roofline already, whatever efficiency the call was given.
ROOFLINE_FIELDS = frozenset({"roofline_tokens_per_s"})

_MEMORY = ("weights", "kv", "blocks", "memory")
# Which premises each capacity function's answer rests on; (function, field) refines a few.
_PREMISES: dict[str, tuple[str, ...]] = {
    "weight_bytes": ("weights",),
    "kv_bytes_per_token": ("kv",),
    "max_concurrent_sequences": _MEMORY,
    "prefill_time": ("prefill", "allreduce"),
    "decode_step_time": ("weights", "kv", "decode", "allreduce"),
    "throughput": (*_MEMORY, "decode", "allreduce"),
    "roofline_tokens_per_s": ("weights", "roofline_batch1"),
    "gpus_needed": (*_MEMORY, "prefill", "decode", "allreduce", "fleet"),
    "estimate": (*_MEMORY, "replicas", "decode", "allreduce"),
    "allreduce_time": ("allreduce",),
}
_FIELD_PREMISES: dict[tuple[str, str], tuple[str, ...]] = {
    ("max_concurrent_sequences", "weight_bytes_per_gpu"): ("weights",),
    ("max_concurrent_sequences", "kv_bytes_per_sequence_per_gpu"): ("kv", "blocks"),
    ("estimate", "roofline_tokens_per_s"): (*_MEMORY, "replicas", "roofline"),
}


def _default(function: Callable[..., Any], name: str) -> Any:
    return inspect.signature(function).parameters[name].default


def _weights(args: Mapping[str, Any]) -> str:
    dtype, tp = args.get("dtype", "bf16"), args.get("tp", 1)
    split = f"; TP={tp} splits them evenly over its GPUs" if tp > 1 else ""
    if dtype in ("bf16", "fp16"):
        return f"Weights in {dtype}: 2 bytes per parameter{split}."
    if dtype == "int4":
        per_weight = 0.5 + capacity.INT4_GROUP_OVERHEAD_BYTES / capacity.INT4_GROUP_SIZE
        rule = (
            f"0.5 byte per weight plus an fp16 scale and an fp16 zero point per group of "
            f"{capacity.INT4_GROUP_SIZE} weights, {per_weight:g} bytes per weight"
        )
    else:
        rule = "1 byte per weight, scales not counted"
    return (
        f"Weights in {dtype}: the linear layers at {rule}; embeddings, output head and norms "
        f"stay in bf16{split}."
    )


def _kv(args: Mapping[str, Any]) -> str:
    kv_dtype, tp = args.get("kv_dtype", "bf16"), args.get("tp", 1)
    element = int(capacity.DTYPE_BYTES[kv_dtype])
    text = f"KV cache in {kv_dtype}: {element} byte{'s' if element > 1 else ''} per value"
    if tp > 1:
        text += (
            f"; TP={tp} gives each GPU its share of the KV heads (a head is copied to several "
            "GPUs when TP exceeds the number of KV heads)"
        )
    return text + "."


def _blocks(args: Mapping[str, Any]) -> str:
    return (
        f"A sequence's KV is rounded up to whole {capacity.DEFAULT_BLOCK_SIZE_TOKENS}-token "
        "blocks (paged KV cache)."
    )


def _memory(args: Mapping[str, Any]) -> str:
    reserve_gib = capacity.DEFAULT_ACTIVATION_RESERVE_BYTES / capacity.GIB
    return (
        f"The engine may use {capacity.DEFAULT_MEMORY_UTILIZATION:.0%} of each GPU's memory "
        f"(vLLM's gpu_memory_utilization; 1 GB = 10^9 bytes) and keeps {reserve_gib:g} GiB per "
        "GPU for activations; the KV cache gets what is left after the weights."
    )


def _decode(args: Mapping[str, Any]) -> str:
    e = capacity.Efficiency()
    return (
        f"Decode: each step reads the weights once and every running sequence's KV at "
        f"{e.decode_bandwidth:.0%} of HBM bandwidth; compute runs at {e.decode_compute:.0%} of "
        "peak FLOP/s and counts only where it takes longer than the reads."
    )


def _prefill(args: Mapping[str, Any]) -> str:
    e = capacity.Efficiency()
    return (
        f"Prefill: matmuls (2 × parameters × tokens FLOPs) at {e.prefill_compute:.0%} and causal "
        f"attention (2 × layers × heads × head dim × L² FLOPs) at {e.prefill_attention:.0%} of "
        f"peak FLOP/s, activation reads and writes at {e.prefill_bandwidth:.0%} of HBM bandwidth; "
        "weight reads are amortised over the prompt and host overheads are not counted."
    )


def _allreduce(args: Mapping[str, Any]) -> str | None:
    if args.get("tp", 1) == 1:
        return None
    e = capacity.Efficiency()
    return (
        "Tensor parallelism: two ring all-reduces per layer of tokens × hidden in bf16, over "
        f"the GPU links at {e.interconnect:.0%} of their one-way bandwidth plus "
        f"{e.allreduce_latency_us:g} µs per ring step."
    )


def _fleet(args: Mapping[str, Any]) -> str:
    utilisation = _default(capacity.gpus_needed, "target_utilization")
    return (
        "Prefill and decode share a replica's time; the largest batch whose decode step meets "
        f"the TPOT target is used; replicas are planned at {utilisation:.0%} utilisation to "
        "leave room for queueing; a GPU count is a whole number (round up)."
    )


def _replicas(args: Mapping[str, Any]) -> str:
    return "The GPUs form GPUs / TP replicas; throughput adds across replicas."


def _roofline(args: Mapping[str, Any]) -> str:
    return "The roofline: memory and compute at 100% of datasheet peak, no overheads."


def _roofline_batch1(args: Mapping[str, Any]) -> str:
    return (
        "An upper bound: the weights read at 100% of datasheet HBM bandwidth every step (the "
        "input embedding table is looked up, not read), nothing else counted."
    )


_SENTENCES: dict[str, Callable[[Mapping[str, Any]], str | None]] = {
    "weights": _weights,
    "kv": _kv,
    "blocks": _blocks,
    "memory": _memory,
    "decode": _decode,
    "prefill": _prefill,
    "allreduce": _allreduce,
    "fleet": _fleet,
    "replicas": _replicas,
    "roofline": _roofline,
    "roofline_batch1": _roofline_batch1,
}
IDEAL_ALSO = (
    "Or give the ideal roofline (HBM bandwidth, FLOP/s and links at 100% of peak, no per-step "
    "latency): both answers are accepted, and the result says which one you gave."
)


def accepts_ideal(function: str, field: str) -> bool:
    """Whether the sub-question also accepts its ideal-roofline answer."""
    return function in EFFICIENCY_FUNCTIONS and field not in ROOFLINE_FIELDS


def numeric_premises(function: str, field: str, args: Mapping[str, Any]) -> tuple[str, ...]:
    """The premises a sub-question's checker computes with, as sentences to show before the
    candidate answers. ``args`` are the capacity call's arguments, resolved for this draw."""
    names = _FIELD_PREMISES.get((function, field), _PREMISES.get(function, ()))
    sentences = [s for s in (_SENTENCES[name](args) for name in names) if s]
    if accepts_ideal(function, field):
        sentences.append(IDEAL_ALSO)
    return tuple(sentences)
