"""Time: the efficiency factors, prefill and decode step times on the roofline, the
tensor-parallel all-reduce and the pipeline bubble."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from engine.capacity.catalog import (
    ACTIVATION_BYTES,
    DTYPE_BYTES,
    GB,
    WEIGHT_DTYPES,
    GpuSpec,
    ModelSpec,
    _check_choice,
    _check_positive,
    _check_tp,
)
from engine.capacity.memory import (
    activation_bytes_per_token,
    kv_bytes_per_token,
    param_counts,
    weight_bytes,
)


@dataclass(frozen=True)
class Efficiency:
    """Fractions of datasheet peak that real kernels reach, plus fixed per-step costs.

    Defaults are priors until `fit_efficiency` calibrates them on the engine; the H100's
    measured peaks they are set against (a bf16 matmul near 80% of the datasheet, a copy near
    90%) are in `benchmarks/grader/h100-2026-12-07/kernels.json`.
    """

    # Prefill's linear-layer matmuls are big GEMMs: near what a large bf16 matmul reaches.
    prefill_compute: float = 0.8
    # Weight-streaming GEMVs plus paged-KV attention reads land below a plain copy's 90%.
    decode_bandwidth: float = 0.8
    # Small-batch matmuls tile poorly; only matters once decode turns compute-bound.
    decode_compute: float = 0.5
    interconnect: float = 0.7
    # NCCL's per-hop latency for small messages on NVLink is a few microseconds.
    allreduce_latency_us: float = 5.0
    prefill_overhead_ms: float = 0.0
    decode_overhead_ms: float = 0.0
    # Launch and framework costs that grow with depth (eager kernels, per-layer Python).
    prefill_overhead_ms_per_layer: float = 0.0
    decode_overhead_ms_per_layer: float = 0.0
    # Paged-attention kernels read scattered KV blocks well below a weight GEMV's bandwidth;
    # None: KV is read at `decode_bandwidth` like the weights.
    decode_kv_bandwidth: float | None = None
    # Flash-attention-style prefill kernels reach 35-75% of H100 peak (FlashAttention-2 to -3).
    prefill_attention: float = 0.5
    # Norms, RoPE, SwiGLU and matmul inputs and outputs stream activations like decode's weights.
    prefill_bandwidth: float = 0.8
    # Serial host input building per prompt token (ids, positions, KV slots) before the first
    # kernel, which real servers also pay (vLLM builds inputs per token in numpy); 0 until fitted.
    prefill_host_us_per_token: float = 0.0

    @property
    def kv_bandwidth(self) -> float:
        return (
            self.decode_bandwidth if self.decode_kv_bandwidth is None else self.decode_kv_bandwidth
        )

    def prefill_overhead_for(self, model: ModelSpec) -> float:
        return self.prefill_overhead_ms + self.prefill_overhead_ms_per_layer * model.num_layers

    def prefill_host_serial_ms(self, tokens: int) -> float:
        return self.prefill_host_us_per_token * tokens / 1e3

    def decode_overhead_for(self, model: ModelSpec) -> float:
        return self.decode_overhead_ms + self.decode_overhead_ms_per_layer * model.num_layers

    def describe(self) -> str:
        return (
            f"efficiency: prefill matmuls {self.prefill_compute:.0%} and attention "
            f"{self.prefill_attention:.0%} of peak FLOP/s, activations "
            f"{self.prefill_bandwidth:.0%} of HBM bandwidth; decode "
            f"{self.decode_bandwidth:.0%} of HBM bandwidth"
            + (
                ""
                if self.decode_kv_bandwidth is None
                else f" for weights and {self.decode_kv_bandwidth:.0%} for KV"
            )
            + f" and {self.decode_compute:.0%} of "
            f"peak FLOP/s, interconnect {self.interconnect:.0%}; prefill host input building "
            f"{self.prefill_host_us_per_token:.3g} µs per prompt token, then host floor "
            f"{self.prefill_overhead_ms:.3g} ms + {self.prefill_overhead_ms_per_layer:.3g} ms per "
            f"layer (prefill takes the larger of it and the GPU time), decode overhead "
            f"{self.decode_overhead_ms:.3g} ms + {self.decode_overhead_ms_per_layer:.3g} ms per "
            "layer per step"
        )


PEAK = Efficiency(
    prefill_compute=1.0, decode_bandwidth=1.0, decode_compute=1.0, interconnect=1.0,
    allreduce_latency_us=0.0, prefill_attention=1.0, prefill_bandwidth=1.0,
)  # fmt: skip


def _compute_rate(gpu: GpuSpec, dtype: str) -> tuple[float, str]:
    """Tensor-core rate a dtype runs at, and a sentence saying why."""
    if dtype in ("fp8",) and gpu.fp8_flops_per_s:
        return gpu.fp8_flops_per_s, "FP8 weights and activations (W8A8) on FP8 tensor cores"
    if dtype == "fp8":
        return gpu.bf16_flops_per_s, f"{gpu.name} has no FP8 tensor cores: FP8 weights run W8A16"
    if dtype == "int8":
        return gpu.int8_ops_per_s, "INT8 weights and activations (W8A8) on INT8 tensor cores"
    if dtype == "int4":
        return gpu.bf16_flops_per_s, "INT4 weights dequantised to bf16 for the matmul (W4A16)"
    return gpu.bf16_flops_per_s, f"{dtype} matmuls on {dtype} tensor cores"


@dataclass(frozen=True)
class AllReduceTime:
    """A ring all-reduce over the GPU interconnect."""

    ms: float
    message_bytes: int
    assumptions: tuple[str, ...]


def allreduce_time(
    message_bytes: int, n_gpus: int, gpu: GpuSpec, efficiency: Efficiency = Efficiency()
) -> AllReduceTime:
    """Ring all-reduce: 2(n-1)/n × bytes / link bandwidth + 2(n-1) latency steps."""
    _check_positive(n_gpus=n_gpus)
    if n_gpus == 1:
        return AllReduceTime(0.0, message_bytes, ("one GPU: no all-reduce",))
    steps = 2 * (n_gpus - 1)
    bandwidth = gpu.interconnect_bytes_per_s * efficiency.interconnect
    seconds = steps / n_gpus * message_bytes / bandwidth
    seconds += steps * efficiency.allreduce_latency_us * 1e-6
    return AllReduceTime(
        seconds * 1e3,
        message_bytes,
        (
            f"ring all-reduce over {gpu.interconnect}, {gpu.interconnect_bytes_per_s / GB:g} GB/s "
            f"per direction at {efficiency.interconnect:.0%}, "
            f"{efficiency.allreduce_latency_us:g} µs per ring step",
        ),
    )


def _tp_allreduce_ms(
    model: ModelSpec, gpu: GpuSpec, tokens: int, tp: int, efficiency: Efficiency
) -> tuple[float, tuple[str, ...]]:
    """Two all-reduces per layer (after attention, after the MLP) of tokens × hidden."""
    one = allreduce_time(tokens * model.hidden_size * ACTIVATION_BYTES, tp, gpu, efficiency)
    notes = one.assumptions
    if tp > 1:
        notes = (*notes, f"TP={tp}: 2 all-reduces per layer of tokens × hidden in bf16")
    return 2 * model.num_layers * one.ms, notes


@dataclass(frozen=True)
class PrefillTime:
    """Prefill of `batch` prompts of `prompt_tokens` each: serial host input building, then
    the larger of the host floor and the GPU time."""

    prefill_ms: float
    flops: float
    linear_flops: float
    attention_flops: float
    activation_bytes_per_gpu: float
    linear_ms: float
    attention_ms: float
    memory_ms: float  # activation traffic
    allreduce_ms: float
    gpu_ms: float  # linear + attention + memory + all-reduces
    host_ms: float  # launching the kernels and the step's other host work
    host_serial_ms: float  # building the inputs per token, before the first kernel
    bound: Literal["host", "gpu"]  # which of host_ms and gpu_ms the step waits for
    assumptions: tuple[str, ...]


def prefill_time(
    model: ModelSpec,
    gpu: GpuSpec,
    prompt_tokens: int,
    batch: int = 1,
    tp: int = 1,
    dtype: str = "bf16",
    efficiency: Efficiency = Efficiency(),
) -> PrefillTime:
    """host input building + max(host floor, GPU time); GPU = matmul FLOPs + attention FLOPs +
    activation bytes.

    Matmul FLOPs are 2 × active parameters per token (logits for the last token only),
    attention 2 × layers × heads × head dim × L² per prompt (causal), activation bytes
    `activation_bytes_per_token` per token; each at its own fraction of peak. The host floor
    (kernel launches, per layer and per step) overlaps the GPU work it queues, so the step
    takes the larger of the two, not their sum; building the step's inputs (per prompt token)
    comes before the first kernel, so it adds.
    """
    _check_positive(prompt_tokens=prompt_tokens, batch=batch)
    _check_tp(model, tp)
    _check_choice("dtype", dtype, WEIGHT_DTYPES)
    counts = param_counts(model)
    body_params = counts.active_params - counts.embedding_params
    head_params = model.vocab_size * model.hidden_size
    tokens = batch * prompt_tokens
    linear = 2.0 * body_params * tokens + 2.0 * head_params * batch
    attention = 2.0 * model.num_layers * model.num_heads * model.head_dim * prompt_tokens**2
    attention *= batch
    per_token_bytes = activation_bytes_per_token(model, tp)
    activation = float(per_token_bytes * tokens)
    rate, rate_note = _compute_rate(gpu, dtype)
    linear_ms = linear / (rate * tp * efficiency.prefill_compute) * 1e3
    attention_ms = attention / (rate * tp * efficiency.prefill_attention) * 1e3
    memory_ms = activation / (gpu.hbm_bytes_per_s * efficiency.prefill_bandwidth) * 1e3
    comm_ms, comm_notes = _tp_allreduce_ms(model, gpu, tokens, tp, efficiency)
    gpu_ms = linear_ms + attention_ms + memory_ms + comm_ms
    host_ms = efficiency.prefill_overhead_for(model)
    serial_ms = efficiency.prefill_host_serial_ms(tokens)
    bound: Literal["host", "gpu"] = "host" if host_ms > gpu_ms else "gpu"
    prefill_ms = serial_ms + max(host_ms, gpu_ms)
    notes = (
        f"prefill matmul FLOPs = 2 × {body_params:,} active parameters × {tokens:,} tokens + "
        f"logits for the last token only = {linear:.3e}; causal attention 2 × layers × heads "
        f"× head dim × L² = {attention:.3e}",
        f"{rate_note}: {rate / 1e12:g} TFLOP/s dense per GPU × TP={tp}; weight reads are "
        "amortised over the prompt's tokens",
        f"activation traffic: {per_token_bytes:,} bytes per token per GPU (norms, RoPE, KV "
        "store, SwiGLU and the projections' inputs and outputs in bf16, every layer) at "
        f"{gpu.hbm_bytes_per_s / 1e12:g} TB/s",
        f"GPU time = matmuls {linear_ms:.3f} + attention {attention_ms:.3f} + activations "
        f"{memory_ms:.3f} + all-reduces {comm_ms:.3f} = {gpu_ms:.3f} ms; prefill = host input "
        f"building {efficiency.prefill_host_us_per_token:.3g} µs × {tokens:,} tokens "
        f"({serial_ms:.3f} ms, before the first kernel) + max(host {host_ms:.3f} ms, GPU "
        f"{gpu_ms:.3f} ms) = {prefill_ms:.3f} ms: {bound}-bound (the host queues kernels while "
        "the GPU runs earlier ones)",
        efficiency.describe(),
        *comm_notes,
    )
    return PrefillTime(
        prefill_ms, linear + attention, linear, attention, activation, linear_ms, attention_ms,
        memory_ms, comm_ms, gpu_ms, host_ms, serial_ms, bound, notes,
    )  # fmt: skip


@dataclass(frozen=True)
class DecodeStep:
    """One decode step of `batch` sequences, each attending to `context_tokens`."""

    decode_step_ms: float
    weight_read_bytes_per_gpu: float
    kv_read_bytes_per_gpu: float
    memory_ms: float
    compute_ms: float
    allreduce_ms: float
    overhead_ms: float
    bound: Literal["memory", "compute"]
    assumptions: tuple[str, ...]


def _experts_touched(model: ModelSpec, batch: int) -> float:
    """Expected distinct experts a layer reads for `batch` tokens routed uniformly."""
    e, k = model.num_experts, model.experts_per_token
    return e * (1 - (1 - k / e) ** batch)


def decode_step_time(
    model: ModelSpec,
    gpu: GpuSpec,
    batch: int,
    context_tokens: int,
    tp: int = 1,
    dtype: str = "bf16",
    kv_dtype: str = "bf16",
    efficiency: Efficiency = Efficiency(),
) -> DecodeStep:
    """max(memory time, compute time) + all-reduces + fixed overhead; memory = weights + KV."""
    _check_positive(batch=batch, context_tokens=context_tokens)
    _check_tp(model, tp)
    counts = param_counts(model)
    weights = weight_bytes(model, dtype)
    kv = kv_bytes_per_token(model, kv_dtype, tp)
    read = float(weights.weight_bytes)
    notes = [*weights.assumptions]
    if not model.tied_embeddings:
        read -= model.vocab_size * model.hidden_size * DTYPE_BYTES["bf16"]
        notes.append("the input embedding table is looked up, not read whole")
    active = counts.active_params
    if model.is_moe:
        touched = _experts_touched(model, batch)
        expert_bytes = counts.expert_params_per_layer * weights.bytes_per_quantized_param
        read -= model.num_layers * (model.num_experts - touched) * expert_bytes
        notes.append(
            f"MoE: {batch} token(s) routed uniformly touch {touched:.2f} of "
            f"{model.num_experts} experts per layer on average; only those are read"
        )
    weight_read = read / tp
    kv_read = float(batch * context_tokens * kv.kv_bytes_per_token_per_gpu)
    memory_ms = weight_read / (gpu.hbm_bytes_per_s * efficiency.decode_bandwidth) * 1e3
    memory_ms += kv_read / (gpu.hbm_bytes_per_s * efficiency.kv_bandwidth) * 1e3
    head_flops = 2.0 * model.vocab_size * model.hidden_size
    flops = 2.0 * (active - counts.embedding_params) * batch + head_flops * batch
    flops += 4.0 * model.num_layers * model.num_heads * model.head_dim * context_tokens * batch
    rate, rate_note = _compute_rate(gpu, dtype)
    compute_ms = flops / tp / (rate * efficiency.decode_compute) * 1e3
    comm_ms, comm_notes = _tp_allreduce_ms(model, gpu, batch, tp, efficiency)
    bound: Literal["memory", "compute"] = "memory" if memory_ms >= compute_ms else "compute"
    overhead_ms = efficiency.decode_overhead_for(model)
    total = max(memory_ms, compute_ms) + comm_ms + overhead_ms
    notes += [
        *kv.assumptions,
        f"each step reads the weights once ({weight_read / GB:.3f} GB per GPU) and every "
        f"sequence's KV ({batch} × {context_tokens:,} tokens = {kv_read / GB:.3f} GB per GPU)",
        f"{gpu.title}: {gpu.hbm_bytes_per_s / 1e12:g} TB/s HBM; {rate_note}, "
        f"{rate / 1e12:g} TFLOP/s",
        f"step time = max(memory {memory_ms:.3f} ms, compute {compute_ms:.3f} ms): {bound}-bound",
        efficiency.describe(),
        *comm_notes,
    ]
    return DecodeStep(
        total, weight_read, kv_read, memory_ms, compute_ms, comm_ms,
        overhead_ms, bound, tuple(notes),
    )  # fmt: skip


@dataclass(frozen=True)
class PipelineBubble:
    """Idle fraction of a GPipe/1F1B pipeline."""

    bubble_fraction: float
    assumptions: tuple[str, ...]


def pipeline_bubble(pp_stages: int, microbatches: int) -> PipelineBubble:
    """(p - 1) / (m + p - 1): the share of time stages wait to fill and drain."""
    _check_positive(pp_stages=pp_stages, microbatches=microbatches)
    fraction = (pp_stages - 1) / (microbatches + pp_stages - 1)
    return PipelineBubble(
        fraction,
        (
            f"{pp_stages} equal pipeline stages, {microbatches} micro-batches in flight: "
            f"bubble = (p - 1) / (m + p - 1) = {fraction:.3f}",
        ),
    )
