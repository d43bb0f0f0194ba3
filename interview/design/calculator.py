"""The calculator page's numbers: one capacity estimate, its memory breakdown and a batch sweep.

Plain Python over `engine.capacity`: no Django. The page's form validates the input and calls
`calculate`; a ValueError from the capacity model (TP not dividing the heads, say) becomes a
form error.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine import capacity

# Batch sizes on the chart: powers of two up to vLLM's largest common max_num_seqs and beyond.
SWEEP_BATCHES = tuple(2**i for i in range(11))


@dataclass(frozen=True)
class MemorySlice:
    label: str
    bytes_per_gpu: int


@dataclass(frozen=True)
class SweepPoint:
    batch: int
    effective_batch: int
    output_tokens_per_s: float
    roofline_tokens_per_s: float
    bound: str


@dataclass(frozen=True)
class Calculation:
    """What the page shows: the estimate, where each GPU's memory goes, the batch sweep."""

    estimate: capacity.Estimate
    model_title: str
    gpu_title: str
    memory: tuple[MemorySlice, ...]
    sweep: tuple[SweepPoint, ...]
    sweep_assumptions: tuple[str, ...]


def memory_breakdown(plan: capacity.MemoryPlan) -> tuple[MemorySlice, ...]:
    """Per-GPU memory: weights, activation reserve, KV cache, and what is held back."""
    weights = min(plan.weight_bytes_per_gpu, plan.usable_bytes_per_gpu)
    reserve = min(plan.activation_reserve_bytes, plan.usable_bytes_per_gpu - weights)
    label = "weights"
    if weights < plan.weight_bytes_per_gpu:
        label = (
            f"weights (only {weights / 1e9:.1f} of {plan.weight_bytes_per_gpu / 1e9:.1f} GB fit)"
        )
    return (
        MemorySlice(label, weights),
        MemorySlice("activation reserve", reserve),
        MemorySlice("KV cache", plan.kv_budget_bytes_per_gpu),
        MemorySlice(
            "held back (memory utilisation)", plan.memory_bytes_per_gpu - plan.usable_bytes_per_gpu
        ),
    )


def calculate(
    model: str,
    gpu: str,
    gpus: int,
    tp: int,
    dtype: str,
    kv_dtype: str,
    batch: int,
    context_tokens: int,
) -> Calculation:
    """The estimate for one configuration; ValueError when the capacity model refuses it."""
    m, g = capacity.model_spec(model), capacity.gpu_spec(gpu)
    result = capacity.estimate(m, g, gpus, tp, dtype, kv_dtype, batch, context_tokens)
    plan = capacity.max_concurrent_sequences(m, g, context_tokens, tp, dtype, kv_dtype)
    replicas = result.replicas
    sweep = []
    for b in SWEEP_BATCHES:
        rate = capacity.throughput(m, g, b, context_tokens, tp, dtype, kv_dtype)
        roof = capacity.roofline_tokens_per_s(m, g, max(rate.effective_batch, 1), tp, dtype,
                                              context_tokens)  # fmt: skip
        sweep.append(
            SweepPoint(
                b,
                rate.effective_batch,
                rate.output_tokens_per_s * replicas,
                roof.output_tokens_per_s * replicas if plan.fits else 0.0,
                rate.bound,
            )  # fmt: skip
        )
    notes = (
        f"throughput and roofline for all {replicas} replica(s) together; every sequence at the "
        f"full {context_tokens:,}-token context",
        "a batch above the KV cache's capacity is capped at it (the curve goes flat)",
        "roofline: weights and KV read at 100% of HBM bandwidth or 100% of peak FLOP/s, "
        "no overheads",
    )
    return Calculation(
        result, m.title, g.title, memory_breakdown(plan), tuple(sweep), notes,
    )  # fmt: skip
