"""The analytic capacity model: memory, roofline prefill and decode, parallelism costs.

Every estimate is a frozen dataclass whose `assumptions` say, in words a candidate can read,
what the number took for granted. GPU and model figures come from datasheets and published
configs; efficiency factors and host costs are named parameters (`Efficiency`) that
`fit_efficiency` can calibrate from the engine's measured prefill and decode times.

    python -m engine.capacity --model llama-3-8b --gpu h100-sxm --batch 64 --context 4096
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

GB = 10**9
GIB = 2**30

WEIGHT_DTYPES = ("bf16", "fp16", "fp8", "int8", "int4")
KV_DTYPES = ("bf16", "fp16", "fp8", "int8")
DTYPE_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}

# INT4 (AWQ/GPTQ style): one fp16 scale and one fp16 zero point per group of 128 weights.
INT4_GROUP_SIZE = 128
INT4_GROUP_OVERHEAD_BYTES = 4

# vLLM's default gpu_memory_utilization: the rest is left to the CUDA context and fragmentation.
DEFAULT_MEMORY_UTILIZATION = 0.9
# Peak activations of an 8K-token prefill chunk plus CUDA graphs and allocator slack.
DEFAULT_ACTIVATION_RESERVE_BYTES = 2 * GIB
# vLLM's default paged-KV block size; a sequence's KV is rounded up to whole blocks.
DEFAULT_BLOCK_SIZE_TOKENS = 16
# Activations cross the interconnect in bf16.
ACTIVATION_BYTES = 2


@dataclass(frozen=True)
class GpuSpec:
    """One accelerator from its datasheet: dense (not sparse) tensor-core rates."""

    name: str
    title: str
    memory_bytes: int
    hbm_bytes_per_s: float
    bf16_flops_per_s: float
    fp8_flops_per_s: float  # 0 where the card has no FP8 tensor cores
    int8_ops_per_s: float
    interconnect_bytes_per_s: float  # one direction, per GPU
    interconnect: str


@dataclass(frozen=True)
class ModelSpec:
    """A decoder-only transformer's shape from its published config."""

    name: str
    title: str
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    vocab_size: int
    tied_embeddings: bool = False
    num_experts: int = 1
    experts_per_token: int = 1
    qkv_bias: bool = False

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 1


GPUS: dict[str, GpuSpec] = {
    g.name: g
    for g in (
        GpuSpec("h100-sxm", "NVIDIA H100 SXM 80GB", 80 * GB, 3.35e12, 989.4e12, 1978.9e12,
                1978.9e12, 450e9, "NVLink 4 (900 GB/s bidirectional)"),
        GpuSpec("h200", "NVIDIA H200 SXM 141GB", 141 * GB, 4.8e12, 989.4e12, 1978.9e12,
                1978.9e12, 450e9, "NVLink 4 (900 GB/s bidirectional)"),
        GpuSpec("a100-80gb", "NVIDIA A100 SXM 80GB", 80 * GB, 2.039e12, 312e12, 0.0, 624e12,
                300e9, "NVLink 3 (600 GB/s bidirectional)"),
        GpuSpec("a100-40gb", "NVIDIA A100 SXM 40GB", 40 * GB, 1.555e12, 312e12, 0.0, 624e12,
                300e9, "NVLink 3 (600 GB/s bidirectional)"),
        GpuSpec("l4", "NVIDIA L4 24GB", 24 * GB, 300e9, 121e12, 242.5e12, 242.5e12, 32e9,
                "PCIe Gen4 x16 (64 GB/s bidirectional)"),
        GpuSpec("l40s", "NVIDIA L40S 48GB", 48 * GB, 864e9, 362.05e12, 733e12, 733e12, 32e9,
                "PCIe Gen4 x16 (64 GB/s bidirectional)"),
    )
}  # fmt: skip

MODELS: dict[str, ModelSpec] = {
    m.name: m
    for m in (
        ModelSpec("llama-3-8b", "Llama 3 8B", 4096, 32, 32, 8, 14336, 128256),
        ModelSpec("llama-3-70b", "Llama 3 70B", 8192, 80, 64, 8, 28672, 128256),
        ModelSpec("mixtral-8x7b", "Mixtral 8x7B", 4096, 32, 32, 8, 14336, 32000,
                  num_experts=8, experts_per_token=2),
        ModelSpec("qwen2.5-7b", "Qwen2.5 7B", 3584, 28, 28, 4, 18944, 152064, qkv_bias=True),
        ModelSpec("smollm2-135m", "SmolLM2 135M", 576, 30, 9, 3, 1536, 49152,
                  tied_embeddings=True),
        ModelSpec("smollm2-135m-random", "SmolLM2-135M shape, random weights", 576, 30, 9, 3,
                  1536, 49152, tied_embeddings=True),
        ModelSpec("llama-1b-random", "~1B Llama shape, random weights", 2048, 16, 32, 8, 8192,
                  128256, tied_embeddings=True),
    )
}  # fmt: skip


@dataclass(frozen=True)
class Efficiency:
    """Fractions of datasheet peak that real kernels reach, plus fixed per-step costs.

    Defaults are priors until `fit_efficiency` calibrates them on the engine. For scale, on
    this workplace's H100s (device notes, 2026-11): a bf16 8192³ matmul ran at ~800 TFLOP/s
    (81% of 989), a device copy at ~3.0 TB/s (90% of 3.35), a 1 GiB NCCL all-reduce at
    330-360 GB/s bus bandwidth (73-80% of 450).
    """

    # Prefill's linear-layer matmuls are big GEMMs: near the 81% an 8192³ matmul reaches.
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


def gpu_spec(name: str) -> GpuSpec:
    """The catalog GPU called `name`; ValueError listing the valid names otherwise."""
    try:
        return GPUS[name]
    except KeyError:
        raise ValueError(f"unknown GPU {name!r}; choose from {', '.join(GPUS)}") from None


def model_spec(name: str) -> ModelSpec:
    """The catalog model called `name`; ValueError listing the valid names otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}") from None


def _check_choice(kind: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {kind} {value!r}; choose from {', '.join(choices)}")


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")


def _check_tp(model: ModelSpec, tp: int) -> None:
    _check_positive(tp=tp)
    if model.num_heads % tp:
        raise ValueError(
            f"tp={tp} does not divide {model.name}'s {model.num_heads} attention heads"
        )


# ---------------------------------------------------------------- parameters and bytes


@dataclass(frozen=True)
class ParamCounts:
    """Parameter counts; `active_params` is what one token runs through (MoE: top-k experts)."""

    total_params: int
    active_params: int
    embedding_params: int  # input table plus the output head (once when tied)
    expert_params_per_layer: int  # one expert's MLP
    assumptions: tuple[str, ...]


def _attention_params(m: ModelSpec) -> int:
    q_out, kv_out = m.num_heads * m.head_dim, m.num_kv_heads * m.head_dim
    bias = (q_out + 2 * kv_out) if m.qkv_bias else 0
    return m.hidden_size * (q_out + 2 * kv_out) + q_out * m.hidden_size + bias


def param_counts(model: ModelSpec) -> ParamCounts:
    """Total and per-token active parameters (MoE active parameters included)."""
    expert = 3 * model.hidden_size * model.intermediate_size
    router = model.hidden_size * model.num_experts if model.is_moe else 0
    norms = 2 * model.hidden_size
    layer_shared = _attention_params(model) + router + norms
    embedding = model.vocab_size * model.hidden_size * (1 if model.tied_embeddings else 2)
    total = model.num_layers * (layer_shared + model.num_experts * expert)
    total += embedding + model.hidden_size
    active = model.num_layers * (layer_shared + model.experts_per_token * expert)
    active += embedding + model.hidden_size
    notes = [
        "gated MLP (gate, up, down projections), RMSNorm, no biases except where the config has them",
        "embedding and output head counted "
        + ("once (tied)" if model.tied_embeddings else "separately (untied)"),
    ]
    if model.is_moe:
        notes.append(
            f"MoE: {model.num_experts} experts per layer, {model.experts_per_token} active per "
            "token; attention, router and embeddings shared"
        )
    return ParamCounts(total, active, embedding, expert, tuple(notes))


@dataclass(frozen=True)
class WeightBytes:
    """Bytes the weights occupy in one dtype."""

    weight_bytes: int
    quantized_params: int
    unquantized_params: int
    bytes_per_quantized_param: float
    assumptions: tuple[str, ...]


def weight_bytes(model: ModelSpec, dtype: str = "bf16") -> WeightBytes:
    """Weight bytes; FP8/INT8/INT4 quantise the linear layers, embeddings stay in bf16."""
    _check_choice("dtype", dtype, WEIGHT_DTYPES)
    counts = param_counts(model)
    per_param = DTYPE_BYTES[dtype]
    notes = [f"{counts.total_params:,} parameters"]
    if dtype in ("bf16", "fp16"):
        return WeightBytes(
            int(counts.total_params * per_param), counts.total_params, 0, per_param,
            (*notes, f"all weights in {dtype}, {per_param:g} bytes per parameter"),
        )  # fmt: skip
    unquantized = counts.embedding_params + model.hidden_size * (2 * model.num_layers + 1)
    quantized = counts.total_params - unquantized
    if dtype == "int4":
        per_param += INT4_GROUP_OVERHEAD_BYTES / INT4_GROUP_SIZE
        notes.append(
            f"int4 weights in groups of {INT4_GROUP_SIZE}, each with an fp16 scale and zero "
            f"point: {per_param:g} bytes per parameter"
        )
    else:
        notes.append(f"{dtype} linear weights, 1 byte per parameter (per-channel scales ignored)")
    notes.append("embeddings, output head and norms kept in bf16")
    total = int(quantized * per_param + unquantized * DTYPE_BYTES["bf16"])
    return WeightBytes(total, quantized, unquantized, per_param, tuple(notes))


@dataclass(frozen=True)
class KvBytes:
    """KV-cache bytes one token occupies: K and V, every layer, every KV head."""

    kv_bytes_per_token: int
    kv_bytes_per_token_per_gpu: int
    kv_heads_per_gpu: int
    assumptions: tuple[str, ...]


def kv_bytes_per_token(model: ModelSpec, kv_dtype: str = "bf16", tp: int = 1) -> KvBytes:
    """2 (K and V) × layers × KV heads × head dim × bytes; GQA-aware, split by TP."""
    _check_choice("kv dtype", kv_dtype, KV_DTYPES)
    _check_tp(model, tp)
    element = int(DTYPE_BYTES[kv_dtype])
    per_token = 2 * model.num_layers * model.num_kv_heads * model.head_dim * element
    heads_per_gpu = math.ceil(model.num_kv_heads / tp)
    per_gpu = 2 * model.num_layers * heads_per_gpu * model.head_dim * element
    notes = [
        f"KV per token = 2 × {model.num_layers} layers × {model.num_kv_heads} KV heads × "
        f"{model.head_dim} head dim × {element} bytes ({kv_dtype}) = {per_token:,} bytes"
    ]
    if tp > 1:
        replicated = (
            " (KV heads replicated: TP exceeds their count)" if tp > model.num_kv_heads else ""
        )
        notes.append(f"TP={tp}: {heads_per_gpu} KV head(s) per GPU{replicated}")
    return KvBytes(per_token, per_gpu, heads_per_gpu, tuple(notes))


def activation_bytes_per_token(model: ModelSpec, tp: int = 1) -> int:
    """HBM bytes one prompt token's activations move through one GPU in a prefill, bf16.

    Counts what a fused decoder layer (engine/model.py with engine/triton_ops.py) reads and
    writes per token, in elements, with q = heads × head dim, kv = KV heads × head dim and
    i = intermediate size, each split by TP (the norms and the hidden-sized inputs and
    outputs of the projections are whole on every GPU):

    - two fused residual add + RMSNorms, each reading x and the residual and writing the sum
      and the normed output: 8 × hidden
    - QKV projection: reads hidden, writes q + 2 kv
    - RoPE in place: reads and writes q and k: 2 q + 2 kv
    - KV-cache store: reads and writes k and v: 4 kv
    - attention: reads q, writes its output: 2 q (its K and V reads are attention's own)
    - output projection: reads q, writes hidden
    - per active expert, gate-up projection (reads hidden, writes 2 i), SiLU × up (reads
      2 i, writes i), down projection (reads i, writes hidden): 2 × hidden + 6 i

    Per layer 10 × hidden + 6 q + 8 kv + experts per token × (2 × hidden + 6 i), times layers.
    Weights are not counted (read once per step, amortised over the prompt); the embedding
    lookup stands in for layer 0's missing residual; the final norm, the last tokens' logits
    and MoE routing (under 1%) are left out.
    """
    _check_tp(model, tp)
    q = model.num_heads // tp * model.head_dim
    kv = math.ceil(model.num_kv_heads / tp) * model.head_dim
    ffn = math.ceil(model.intermediate_size / tp)
    hidden = model.hidden_size
    per_layer = 10 * hidden + 6 * q + 8 * kv + model.experts_per_token * (2 * hidden + 6 * ffn)
    return model.num_layers * per_layer * ACTIVATION_BYTES


# ---------------------------------------------------------------- memory


@dataclass(frozen=True)
class MemoryPlan:
    """Per-GPU memory: weights, activation reserve, and the KV cache that fits in the rest."""

    memory_bytes_per_gpu: int
    usable_bytes_per_gpu: int
    weight_bytes_per_gpu: int
    activation_reserve_bytes: int
    kv_budget_bytes_per_gpu: int
    kv_bytes_per_sequence_per_gpu: int
    kv_token_capacity: int
    max_concurrent_sequences: int
    fits: bool
    assumptions: tuple[str, ...]


def max_concurrent_sequences(
    model: ModelSpec,
    gpu: GpuSpec,
    context_tokens: int,
    tp: int = 1,
    dtype: str = "bf16",
    kv_dtype: str = "bf16",
    memory_utilization: float = DEFAULT_MEMORY_UTILIZATION,
    activation_reserve_bytes: int = DEFAULT_ACTIVATION_RESERVE_BYTES,
    block_size_tokens: int = DEFAULT_BLOCK_SIZE_TOKENS,
) -> MemoryPlan:
    """How many sequences of `context_tokens` fit in the KV cache of one TP group."""
    _check_positive(context_tokens=context_tokens, block_size_tokens=block_size_tokens)
    if not 0 < memory_utilization <= 1:
        raise ValueError(f"memory_utilization must be in (0, 1], got {memory_utilization}")
    weights = weight_bytes(model, dtype)
    kv = kv_bytes_per_token(model, kv_dtype, tp)
    usable = int(gpu.memory_bytes * memory_utilization)
    weights_per_gpu = math.ceil(weights.weight_bytes / tp)
    budget = usable - weights_per_gpu - activation_reserve_bytes
    blocks_per_sequence = math.ceil(context_tokens / block_size_tokens)
    per_sequence = blocks_per_sequence * block_size_tokens * kv.kv_bytes_per_token_per_gpu
    sequences = max(budget, 0) // per_sequence
    token_capacity = max(budget, 0) // kv.kv_bytes_per_token_per_gpu
    notes = [
        *weights.assumptions,
        *kv.assumptions,
        f"{gpu.title}: {gpu.memory_bytes / GB:g} GB, {memory_utilization:.0%} usable "
        f"= {usable / GB:.2f} GB per GPU",
        f"weights sharded evenly over TP={tp}: {weights_per_gpu / GB:.2f} GB per GPU",
        f"activation reserve {activation_reserve_bytes / GIB:g} GiB per GPU",
        f"KV of a sequence rounded up to {block_size_tokens}-token blocks",
    ]
    if budget <= 0:
        notes.append("the weights and reserve do not fit: no room for a KV cache")
    return MemoryPlan(
        gpu.memory_bytes, usable, weights_per_gpu, activation_reserve_bytes, max(budget, 0),
        per_sequence, token_capacity, sequences, sequences >= 1, tuple(notes),
    )  # fmt: skip


# ---------------------------------------------------------------- time


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


# ---------------------------------------------------------------- throughput and sizing


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


# ---------------------------------------------------------------- calibration


@dataclass(frozen=True)
class Measurement:
    """One timing measured on the engine, to calibrate `Efficiency`."""

    kind: Literal["prefill", "decode"]
    model: str
    gpu: str
    batch: int
    context_tokens: int  # prefill: prompt length; decode: tokens attended per sequence
    measured_ms: float
    tp: int = 1
    dtype: str = "bf16"
    kv_dtype: str = "bf16"


def _fit_time(
    ideal_ms: list[float], overhead_units: list[float], measured_ms: list[float]
) -> tuple[float, float]:
    """Least squares for measured = ideal / efficiency + overhead × units: (efficiency, overhead).

    A negative overhead, or too few distinct points to separate the two, refits through zero.
    """
    x = np.column_stack([ideal_ms, overhead_units])
    y = np.asarray(measured_ms)
    if np.linalg.matrix_rank(x) == 2:
        (slope, overhead), *_ = np.linalg.lstsq(x, y, rcond=None)
        if overhead >= 0 and slope > 0:
            return 1 / float(slope), float(overhead)
    slope = float(x[:, 0] @ y / (x[:, 0] @ x[:, 0]))
    if slope <= 0:
        raise ValueError("measured times do not grow with the model's ideal times")
    return 1 / slope, 0.0


# Bounds on the prefill fit's (serial, floor, 1 / efficiency): no negative host cost, and no
# kernel above the datasheet's peak.
_PREFILL_FIT_LOWER = np.array([0.0, 0.0, 1.0])


def _fit_serial_and_floor_or_time(
    serial_units: list[float],
    floor_units: list[float],
    fixed_ms: list[float],
    ideal_ms: list[float],
    measured_ms: list[float],
    prior_efficiency: float,
) -> tuple[float, float, float]:
    """Least squares on relative error for measured = serial × serial units + max(floor × floor
    units, fixed + ideal / efficiency), with serial ≥ 0, floor ≥ 0 and efficiency ≤ 1:
    (serial, floor, efficiency).

    Points sorted by GPU time per floor unit at `prior_efficiency`; each split of that order
    into floor-bound points (the first k) and GPU-bound ones (the rest) is linear in (serial,
    floor, 1 / efficiency). Each split is solved with every combination of those held at
    their bounds (the bounded optimum is one of them), and the solution whose max() model fits
    all points best wins. No floor-bound points: floor and serial 0 (on GPU-bound points alone
    a serial term that grows like the ideal time cannot be told from the efficiency); no
    GPU-bound points: the prior efficiency.
    """
    serial_u, floor_u, fixed, ideal, measured = (
        np.asarray(v, dtype=float)
        for v in (serial_units, floor_units, fixed_ms, ideal_ms, measured_ms)
    )
    prior = np.array([0.0, 0.0, 1 / prior_efficiency])
    order = np.argsort((fixed + ideal * prior[2]) / floor_u, kind="stable")
    best = (math.inf, prior)
    for k in range(len(order) + 1):
        floor_bound = np.isin(np.arange(len(order)), order[:k])
        serial_column = serial_u if k else np.zeros_like(serial_u)
        columns = (
            serial_column,
            np.where(floor_bound, floor_u, 0.0),
            np.where(floor_bound, 0.0, ideal),
        )
        x = np.column_stack(columns) / measured[:, None]
        y = 1 - np.where(floor_bound, 0.0, fixed) / measured
        fitted = [j for j in range(3) if x[:, j].any()]
        for held in itertools.product((False, True), repeat=len(fitted)):
            at_bound = [j for j, h in zip(fitted, held, strict=True) if h]
            free = [j for j, h in zip(fitted, held, strict=True) if not h]
            params = prior.copy()
            params[at_bound] = _PREFILL_FIT_LOWER[at_bound]
            if free:
                if np.linalg.matrix_rank(x[:, free]) < len(free):
                    continue
                rest = [j for j in range(3) if j not in free]
                params[free], *_ = np.linalg.lstsq(
                    x[:, free], y - x[:, rest] @ params[rest], rcond=None
                )
            if (params < _PREFILL_FIT_LOWER).any():
                continue
            serial, floor, inverse = params
            predicted = serial * serial_u + np.maximum(floor * floor_u, fixed + ideal * inverse)
            relative = predicted / measured - 1
            loss = float(relative @ relative)
            if loss < best[0]:
                best = (loss, params)
    serial, floor, inverse = best[1]
    return float(serial), float(floor), float(1 / inverse)


def _fit_prefill(
    measured: list[Measurement], base: Efficiency, overhead: Literal["per_step", "per_layer"]
) -> tuple[float, float, float]:
    """(host µs per prompt token, host floor in ms per step or per layer, prefill_bandwidth)
    from prefill points."""
    kilotokens, units, fixed, ideal, times = [], [], [], [], []
    for m in measured:
        model, gpu = model_spec(m.model), gpu_spec(m.gpu)
        t = prefill_time(model, gpu, m.context_tokens, m.batch, m.tp, m.dtype, base)
        kilotokens.append(m.batch * m.context_tokens / 1e3)  # µs per token × 10³ tokens = ms
        units.append(float(model.num_layers) if overhead == "per_layer" else 1.0)
        fixed.append(t.linear_ms + t.attention_ms + t.allreduce_ms)
        ideal.append(t.memory_ms * base.prefill_bandwidth)
        times.append(m.measured_ms)
    return _fit_serial_and_floor_or_time(
        kilotokens, units, fixed, ideal, times, base.prefill_bandwidth
    )


def fit_efficiency(
    measured: list[Measurement],
    base: Efficiency = Efficiency(),
    overhead: Literal["per_step", "per_layer"] = "per_step",
    split_kv: bool = False,
) -> Efficiency:
    """Fit bandwidth factors, prefill's host costs and decode overheads to measured times.

    Prefill: measured = host µs per prompt token × tokens + max(host floor, matmul time at
    `base.prefill_compute` + attention time at `base.prefill_attention` + activation bytes /
    `prefill_bandwidth` + all-reduces), fitting `prefill_host_us_per_token`, the floor and
    `prefill_bandwidth` (at most 1) by least squares on relative error. Within one model
    shape, matmul FLOPs, attention FLOPs (at one prompt length) and activation bytes all grow
    with the token count, so its points fix only the GPU time's sum: the matmul and attention
    efficiencies stay priors (a big matmul's efficiency is measured directly; what small-row
    elementwise kernels and projection epilogues reach is not). The per-token host time grows
    with the tokens too; the host-bound points, where the floor does not, set it apart.

    Decode: measured = peak-bandwidth time / decode_bandwidth + overhead, using the points
    that are memory-bound at peak. The overhead (prefill's host floor, decode's added cost) is
    per step (`per_step`) or per layer (`per_layer`: eager kernel launches, the better guess
    when carrying factors fitted on one model shape to another). Kinds with no points keep
    `base`'s factors.

    `split_kv` fits the KV read's bandwidth (`decode_kv_bandwidth`) apart from the weights':
    measured - weight time at `base.decode_bandwidth` = peak KV time / decode_kv_bandwidth +
    overhead. Within one dense shape the weight time is the same at every batch, so it cannot
    be told from a fixed overhead; the weights keep `base`'s (prior) bandwidth.
    """
    fitted = asdict(base)
    suffix = "_per_layer" if overhead == "per_layer" else ""
    prefill = [m for m in measured if m.kind == "prefill"]
    if prefill:
        serial_us, floor_ms, bandwidth = _fit_prefill(prefill, base, overhead)
        fitted |= {
            "prefill_host_us_per_token": serial_us,
            "prefill_bandwidth": bandwidth,
            "prefill_overhead_ms": 0.0,
            "prefill_overhead_ms_per_layer": 0.0,
            f"prefill_overhead_ms{suffix}": floor_ms,
        }
    ideal, units, times = [], [], []
    for m in (m for m in measured if m.kind == "decode"):
        model, gpu = model_spec(m.model), gpu_spec(m.gpu)
        s = decode_step_time(model, gpu, m.batch, m.context_tokens, m.tp, m.dtype, m.kv_dtype, PEAK)
        if s.bound != "memory":
            continue
        ideal_ms, comm_ms = s.memory_ms, s.allreduce_ms
        if split_kv:
            weight_ms = s.weight_read_bytes_per_gpu / gpu.hbm_bytes_per_s * 1e3
            ideal_ms = s.kv_read_bytes_per_gpu / gpu.hbm_bytes_per_s * 1e3
            comm_ms += weight_ms / base.decode_bandwidth
        ideal.append(ideal_ms)
        units.append(float(model.num_layers) if overhead == "per_layer" else 1.0)
        times.append(m.measured_ms - comm_ms)
    if ideal:
        efficiency, overhead_ms = _fit_time(ideal, units, times)
        fitted |= {
            "decode_kv_bandwidth" if split_kv else "decode_bandwidth": efficiency,
            "decode_overhead_ms": 0.0,
            "decode_overhead_ms_per_layer": 0.0,
            f"decode_overhead_ms{suffix}": overhead_ms,
        }
    return Efficiency(**fitted)


@dataclass(frozen=True)
class Comparison:
    """One measured time beside the model's prediction for it."""

    measurement: Measurement
    predicted_ms: float
    error: float  # predicted / measured - 1


def predict_ms(m: Measurement, efficiency: Efficiency = Efficiency()) -> float:
    """The model's time for what `m` measured."""
    model, gpu = model_spec(m.model), gpu_spec(m.gpu)
    if m.kind == "prefill":
        return prefill_time(
            model, gpu, m.context_tokens, m.batch, m.tp, m.dtype, efficiency
        ).prefill_ms
    return decode_step_time(
        model, gpu, m.batch, m.context_tokens, m.tp, m.dtype, m.kv_dtype, efficiency
    ).decode_step_ms


def compare(measured: list[Measurement], efficiency: Efficiency = Efficiency()) -> list[Comparison]:
    """Predicted against measured, in the order given."""
    rows = []
    for m in measured:
        predicted = predict_ms(m, efficiency)
        rows.append(Comparison(m, predicted, predicted / m.measured_ms - 1))
    return rows


def comparison_table(rows: list[Comparison]) -> str:
    """A Markdown table of predicted vs measured times, for READMEs and closing notes."""
    lines = [
        "| kind | model | gpu | TP | batch | context | measured ms | predicted ms | error |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        m = row.measurement
        lines.append(
            f"| {m.kind} | {m.model} | {m.gpu} | {m.tp} | {m.batch} | {m.context_tokens} | "
            f"{m.measured_ms:.3f} | {row.predicted_ms:.3f} | {row.error:+.0%} |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------- CLI


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
    parser = argparse.ArgumentParser(prog="python -m engine.capacity", description=__doc__)
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


if __name__ == "__main__":
    sys.exit(main())
