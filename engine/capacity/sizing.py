"""Throughput and sizing: tokens per second, the roofline bound, GPUs needed, and the one
`estimate` a design round or the command line asks for."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal

from engine.capacity.catalog import (
    DEFAULT_MEMORY_UTILIZATION,
    GpuSpec,
    ModelSpec,
    _check_positive,
    _check_tp,
)
from engine.capacity.memory import kv_bytes_per_token, max_concurrent_sequences, weight_bytes
from engine.capacity.timing import PEAK, Efficiency, decode_step_time, prefill_time


@dataclass(frozen=True)
class Throughput:
    """Steady-state decode throughput of one TP group at a batch size."""

    batch: int
    effective_batch: int
    decode_step_ms: float
    output_tokens_per_s: float  # one TP group (replica)
    output_tokens_per_s_per_gpu: float
    bound: Literal["memory", "compute"]
    assumptions: tuple[str, ...]


def throughput(
    model: ModelSpec,
    gpu: GpuSpec,
    batch: int,
    context_tokens: int,
    tp: int = 1,
    dtype: str = "bf16",
    kv_dtype: str = "bf16",
    efficiency: Efficiency = Efficiency(),
    memory_utilization: float = DEFAULT_MEMORY_UTILIZATION,
) -> Throughput:
    """Output tokens per second at `batch`, capped by how many sequences the KV cache holds."""
    plan = max_concurrent_sequences(
        model, gpu, context_tokens, tp, dtype, kv_dtype, memory_utilization
    )
    effective = min(batch, plan.max_concurrent_sequences)
    notes: list[str] = []
    if effective < batch:
        notes.append(
            f"batch {batch} capped at {effective}: the KV cache holds no more sequences of "
            f"{context_tokens:,} tokens"
        )
    if effective == 0:
        return Throughput(batch, 0, math.inf, 0.0, 0.0, "memory", (*plan.assumptions, *notes))
    step = decode_step_time(model, gpu, effective, context_tokens, tp, dtype, kv_dtype, efficiency)
    per_replica = effective / (step.decode_step_ms / 1e3)
    notes.append(
        "steady state: every sequence at the full context, prefill excluded; "
        f"{effective} tokens per {step.decode_step_ms:.3f} ms step"
    )
    return Throughput(
        batch, effective, step.decode_step_ms, per_replica, per_replica / tp, step.bound,
        (*step.assumptions, *notes),
    )  # fmt: skip


@dataclass(frozen=True)
class RooflineBound:
    """The highest decode rate physics allows: all weights and KV read at full HBM bandwidth."""

    output_tokens_per_s: float
    assumptions: tuple[str, ...]


def roofline_tokens_per_s(
    model: ModelSpec,
    gpu: GpuSpec,
    batch: int = 1,
    tp: int = 1,
    dtype: str = "bf16",
    context_tokens: int = 1,
) -> RooflineBound:
    """Upper bound on output tokens/s for a TP group at 100% bandwidth, compute and links."""
    step = decode_step_time(model, gpu, batch, context_tokens, tp, dtype, "bf16", PEAK)
    rate = batch / (max(step.memory_ms, step.compute_ms) / 1e3)
    return RooflineBound(rate, (*step.assumptions, "bound at 100% of peak, no overheads"))


@dataclass(frozen=True)
class GpuPlan:
    """GPUs needed to serve a request rate within TTFT and TPOT targets."""

    gpus: int
    replicas: int
    tp: int
    batch_per_replica: int
    decode_step_ms: float
    prefill_ms: float
    requests_per_s_per_replica: float
    feasible: bool
    assumptions: tuple[str, ...]


def gpus_needed(
    model: ModelSpec,
    gpu: GpuSpec,
    requests_per_s: float,
    prompt_tokens: int,
    output_tokens: int,
    ttft_ms_target: float,
    tpot_ms_target: float,
    tp: int = 1,
    dtype: str = "bf16",
    kv_dtype: str = "bf16",
    efficiency: Efficiency = Efficiency(),
    target_utilization: float = 0.8,
) -> GpuPlan:
    """Replicas × TP for `requests_per_s`: the biggest batch within TPOT, prefill within TTFT."""
    _check_positive(
        requests_per_s=requests_per_s, output_tokens=output_tokens,
        ttft_ms_target=ttft_ms_target, tpot_ms_target=tpot_ms_target,
    )  # fmt: skip
    context = prompt_tokens + output_tokens
    plan = max_concurrent_sequences(model, gpu, context, tp, dtype, kv_dtype)
    prefill = prefill_time(model, gpu, prompt_tokens, 1, tp, dtype, efficiency)
    notes = [
        *plan.assumptions,
        *prefill.assumptions,
        f"every request: {prompt_tokens:,} prompt + {output_tokens:,} output tokens; each "
        f"sequence's KV sized for {context:,} tokens",
        "prefill and decode share a replica's time; prefill of one request must fit the TTFT "
        "target; TPOT is checked on the decode step alone",
        f"replicas run at {target_utilization:.0%} utilisation to leave room for queueing",
    ]
    best_batch = 0
    step_ms = math.inf
    low, high = 1, plan.max_concurrent_sequences
    while low <= high:
        mid = (low + high) // 2
        ms = decode_step_time(model, gpu, mid, context, tp, dtype, kv_dtype, efficiency)
        if ms.decode_step_ms <= tpot_ms_target:
            best_batch, step_ms, low = mid, ms.decode_step_ms, mid + 1
        else:
            high = mid - 1
    feasible = best_batch > 0 and prefill.prefill_ms <= ttft_ms_target
    if not feasible:
        notes.append("infeasible: no batch meets TPOT, or one prefill alone exceeds TTFT")
        return GpuPlan(0, 0, tp, best_batch, step_ms, prefill.prefill_ms, 0.0, False, tuple(notes))
    decode_rps = best_batch / (output_tokens * step_ms / 1e3)
    per_replica = decode_rps / (1 + decode_rps * prefill.prefill_ms / 1e3)
    replicas = math.ceil(requests_per_s / (per_replica * target_utilization))
    notes.append(
        f"batch {best_batch} per replica at {step_ms:.2f} ms per step: "
        f"{decode_rps:.2f} req/s of decode; with prefill's share, {per_replica:.2f} req/s"
    )
    return GpuPlan(
        replicas * tp, replicas, tp, best_batch, step_ms, prefill.prefill_ms, per_replica, True,
        tuple(notes),
    )  # fmt: skip


@dataclass(frozen=True)
class Estimate:
    """Everything the CLI and the calculator page show for one configuration."""

    model: str
    gpu: str
    gpus: int
    tp: int
    replicas: int
    dtype: str
    kv_dtype: str
    batch: int
    context_tokens: int
    weight_bytes: int
    weight_bytes_per_gpu: int
    kv_bytes_per_token: int
    kv_budget_bytes_per_gpu: int
    max_concurrent_sequences: int
    prefill_ms: float
    decode_step_ms: float
    output_tokens_per_s: float
    output_tokens_per_s_per_gpu: float
    roofline_tokens_per_s: float
    bound: str
    fits: bool  # False: weights and reserve leave no room for one sequence's KV
    assumptions: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict:
        return asdict(self) | {"assumptions": list(self.assumptions)}


def estimate(
    model: ModelSpec,
    gpu: GpuSpec,
    gpus: int = 1,
    tp: int = 1,
    dtype: str = "bf16",
    kv_dtype: str = "bf16",
    batch: int = 1,
    context_tokens: int = 2048,
    efficiency: Efficiency = Efficiency(),
) -> Estimate:
    """The whole picture for `gpus` GPUs split into TP groups of `tp`: memory, latency, rate."""
    _check_positive(gpus=gpus, batch=batch)
    _check_tp(model, tp)
    if gpus % tp:
        raise ValueError(f"tp={tp} must divide gpus={gpus}")
    replicas = gpus // tp
    plan = max_concurrent_sequences(model, gpu, context_tokens, tp, dtype, kv_dtype)
    prefill = prefill_time(model, gpu, context_tokens, 1, tp, dtype, efficiency)
    rate = throughput(model, gpu, batch, context_tokens, tp, dtype, kv_dtype, efficiency)
    step = decode_step_time(
        model, gpu, max(rate.effective_batch, 1), context_tokens, tp, dtype, kv_dtype, efficiency
    )
    roof = roofline_tokens_per_s(
        model, gpu, max(rate.effective_batch, 1), tp, dtype, context_tokens
    )
    notes = dict.fromkeys((*plan.assumptions, *prefill.assumptions, *step.assumptions))
    notes.update(dict.fromkeys(rate.assumptions))
    notes[f"{gpus} GPU(s) = {replicas} replica(s) × TP={tp}; throughput adds across replicas"] = (
        None
    )
    notes[f"prefill_ms is one {context_tokens:,}-token prompt (time to first token, no queue)"] = (
        None
    )
    if not plan.fits:
        notes["does not fit: decode_step_ms is for batch 1 as if memory allowed; no throughput"] = (
            None
        )
    return Estimate(
        model.name, gpu.name, gpus, tp, replicas, dtype, kv_dtype, batch, context_tokens,
        weight_bytes(model, dtype).weight_bytes, plan.weight_bytes_per_gpu,
        kv_bytes_per_token(model, kv_dtype).kv_bytes_per_token, plan.kv_budget_bytes_per_gpu,
        plan.max_concurrent_sequences, prefill.prefill_ms, step.decode_step_ms,
        rate.output_tokens_per_s * replicas, rate.output_tokens_per_s_per_gpu,
        roof.output_tokens_per_s * replicas if plan.fits else 0.0, step.bound, plan.fits,
        tuple(notes),
    )  # fmt: skip
