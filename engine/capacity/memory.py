"""Memory: parameter counts, weight, KV-cache and activation bytes, and how many sequences
fit in what the weights leave."""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.capacity.catalog import (
    ACTIVATION_BYTES,
    DEFAULT_ACTIVATION_RESERVE_BYTES,
    DEFAULT_BLOCK_SIZE_TOKENS,
    DEFAULT_MEMORY_UTILIZATION,
    DTYPE_BYTES,
    GB,
    GIB,
    INT4_GROUP_OVERHEAD_BYTES,
    INT4_GROUP_SIZE,
    KV_DTYPES,
    WEIGHT_DTYPES,
    GpuSpec,
    ModelSpec,
    _check_choice,
    _check_positive,
    _check_tp,
)


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
