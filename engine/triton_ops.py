"""Fused Triton kernels for the decoder's small operations: add + RMSNorm, RoPE, SiLU * up,
and sampling without filters (temperature and greedy).

Each replaces several torch kernels with one. In a decode step the matmuls are small, so the
step's GPU time is mostly kernel count: a layer of plain torch ops launches about 35 kernels,
a fused layer 12. The model uses these only when `EngineConfig.fused_ops` is on (CUDA); the
torch versions in `engine/model.py` stay the reference, and on CPU these run under
`TRITON_INTERPRET=1` in tests.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _add_rmsnorm_kernel(
    X, Residual, Weight, Out, ResidualOut, stride_x, stride_r, stride_o, eps, N,
    HAS_RESIDUAL: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < N
    x = tl.load(X + row * stride_x + cols, mask=mask, other=0.0)
    if HAS_RESIDUAL:
        x = x + tl.load(Residual + row * stride_r + cols, mask=mask, other=0.0)
        tl.store(ResidualOut + row * stride_r + cols, x, mask=mask)
    x32 = x.to(tl.float32)
    rms = tl.rsqrt(tl.sum(x32 * x32, 0) / N + eps)
    normed = (x32 * rms).to(x.dtype)
    weight = tl.load(Weight + cols, mask=mask, other=0.0)
    tl.store(Out + row * stride_o + cols, weight * normed, mask=mask)


def add_rmsnorm(
    x: torch.Tensor, residual: torch.Tensor | None, weight: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """`(rmsnorm(x + residual) * weight, x + residual)`, rounding as `RMSNorm.forward` does.

    The sum is written to a fresh residual tensor (the inputs are left alone), so a captured
    CUDA graph can replay it.
    """
    rows, n = x.shape
    out = torch.empty_like(x)
    residual_out = torch.empty_like(x) if residual is not None else x
    source = residual if residual is not None else x
    _add_rmsnorm_kernel[(rows,)](
        x, source, weight, out, residual_out, x.stride(0), source.stride(0), out.stride(0),
        eps, n, HAS_RESIDUAL=residual is not None, BLOCK=triton.next_power_of_2(n),
        num_warps=4 if n <= 4096 else 8,
    )  # fmt: skip
    return out, residual_out


@triton.jit
def _rotate_heads(
    base, token, stride_t, stride_h, heads, cos, sin, offs_h, offs_d, mask_d, HALF: tl.constexpr
):
    mask = (offs_h < heads)[:, None] & mask_d[None, :]
    ptrs = base + token * stride_t + offs_h[:, None] * stride_h + offs_d[None, :]
    first = tl.load(ptrs, mask=mask, other=0.0)
    second = tl.load(ptrs + HALF, mask=mask, other=0.0)
    # Same rounding as the torch path: cos/sin cast to the activations' dtype first.
    c = cos.to(first.dtype)[None, :]
    s = sin.to(first.dtype)[None, :]
    new_first = (first * c).to(first.dtype) - (second * s).to(first.dtype)
    new_second = (second * c).to(first.dtype) + (first * s).to(first.dtype)
    tl.store(ptrs, new_first, mask=mask)
    tl.store(ptrs + HALF, new_second, mask=mask)


@triton.jit
def _rope_kernel(
    Q, K, Cos, Sin, Positions, stride_qt, stride_qh, stride_kt, stride_kh, stride_cos,
    NUM_Q_HEADS: tl.constexpr, NUM_K_HEADS: tl.constexpr, HALF: tl.constexpr,
    BLOCK_H: tl.constexpr, BLOCK_HALF: tl.constexpr,
):  # fmt: skip
    token = tl.program_id(0)
    position = tl.load(Positions + token)
    offs_d = tl.arange(0, BLOCK_HALF)
    offs_h = tl.arange(0, BLOCK_H)
    mask_d = offs_d < HALF
    # The cos/sin rows are the same for both halves (the cache holds cat(freqs, freqs)).
    cos = tl.load(Cos + position * stride_cos + offs_d, mask=mask_d, other=0.0)
    sin = tl.load(Sin + position * stride_cos + offs_d, mask=mask_d, other=0.0)
    _rotate_heads(
        Q, token, stride_qt, stride_qh, NUM_Q_HEADS, cos, sin, offs_h, offs_d, mask_d, HALF
    )
    _rotate_heads(
        K, token, stride_kt, stride_kh, NUM_K_HEADS, cos, sin, offs_h, offs_d, mask_d, HALF
    )


def rope_(
    q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, positions: torch.Tensor
) -> None:
    """Rotate `q` `[T, heads, head_dim]` and `k` `[T, kv_heads, head_dim]` in place (rotate-half
    form); `cos`, `sin` `[max_position, head_dim]` float32 as `RotaryEmbedding` caches them."""
    tokens, heads, head_dim = q.shape
    half = head_dim // 2
    _rope_kernel[(tokens,)](
        q, k, cos, sin, positions, q.stride(0), q.stride(1), k.stride(0), k.stride(1),
        cos.stride(0), NUM_Q_HEADS=heads, NUM_K_HEADS=k.shape[1], HALF=half,
        BLOCK_H=triton.next_power_of_2(max(heads, k.shape[1])),
        BLOCK_HALF=triton.next_power_of_2(half),
    )  # fmt: skip


@triton.jit
def _silu_mul_kernel(GateUp, Out, stride_in, stride_out, N, BLOCK: tl.constexpr):
    row, col_block = tl.program_id(0), tl.program_id(1)
    cols = col_block * BLOCK + tl.arange(0, BLOCK)
    mask = cols < N
    gate = tl.load(GateUp + row * stride_in + cols, mask=mask, other=0.0)
    up = tl.load(GateUp + row * stride_in + N + cols, mask=mask, other=0.0)
    g32 = gate.to(tl.float32)
    activated = (g32 / (1.0 + tl.exp(-g32))).to(gate.dtype)
    tl.store(Out + row * stride_out + cols, activated * up, mask=mask)


def silu_mul(gate_up: torch.Tensor) -> torch.Tensor:
    """`silu(gate) * up` for `gate_up` `[T, 2 * intermediate]` (gate first), in one pass."""
    rows, width = gate_up.shape
    n = width // 2
    out = gate_up.new_empty(rows, n)
    block = 1024
    _silu_mul_kernel[(rows, triton.cdiv(n, block))](
        gate_up, out, gate_up.stride(0), out.stride(0), n, BLOCK=block
    )
    return out


@triton.jit
def _sample_kernel(Logits, Temperature, Uniforms, Out, stride_row, vocab, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    base = Logits + row.to(tl.int64) * stride_row
    temperature = tl.load(Temperature + row)
    greedy = temperature == 0
    divisor = tl.where(greedy, 1.0, temperature)
    offs = tl.arange(0, BLOCK)
    best = tl.full([BLOCK], float("-inf"), tl.float32)
    best_at = tl.zeros([BLOCK], tl.int32)
    for start in range(0, vocab, BLOCK):
        cols = start + offs
        x = tl.load(base + cols, mask=cols < vocab, other=float("-inf")).to(tl.float32)
        better = x > best
        best = tl.where(better, x, best)
        best_at = tl.where(better, cols, best_at)
    top = tl.max(best, 0)
    argmax = tl.min(tl.where(best == top, best_at, vocab), 0)  # the first maximum, as torch
    # Division is monotonic, so the largest of logits / T is the largest logit / T.
    peak = top / divisor
    total = tl.zeros([BLOCK], tl.float64)
    for start in range(0, vocab, BLOCK):
        cols = start + offs
        x = tl.load(base + cols, mask=cols < vocab, other=float("-inf")).to(tl.float32)
        total += tl.exp(x / divisor - peak).to(tl.float64)
    target = tl.load(Uniforms + row) * tl.sum(total, 0)
    running = tl.sum(tl.zeros([BLOCK], tl.float64), 0)
    choice = tl.sum(tl.zeros([BLOCK], tl.int32), 0) + vocab
    for start in range(0, vocab, BLOCK):
        cols = start + offs
        x = tl.load(base + cols, mask=cols < vocab, other=float("-inf")).to(tl.float32)
        weight = tl.exp(x / divisor - peak).to(tl.float64)
        cumulative = tl.cumsum(weight, 0) + running
        first = tl.min(tl.where((cumulative > target) & (cols < vocab), cols, vocab), 0)
        choice = tl.minimum(choice, first)
        running += tl.sum(weight, 0)
    token = tl.where(greedy, argmax, tl.minimum(choice, vocab - 1))
    tl.store(Out + row, token.to(tl.int64))


def sample_unfiltered(
    logits: torch.Tensor, temperature: torch.Tensor, uniforms: torch.Tensor
) -> torch.Tensor:
    """`Sampler.sample` for rows without top-k, top-p or min-p, in one kernel: `[B]` int64.

    Row i takes `argmax(logits[i])` when `temperature[i] == 0`, else the first token whose
    cumulative weight `exp(logits / T - max)` (summed in float64) exceeds `uniforms[i]` times
    the row's total: the reference's inverse-CDF draw from `softmax(logits / T)`, without
    writing the probabilities out. `logits` `[B, vocab]` in any float dtype, rows contiguous.
    """
    rows, vocab = logits.shape
    out = torch.empty(rows, dtype=torch.int64, device=logits.device)
    if rows:
        _sample_kernel[(rows,)](
            logits,
            temperature.contiguous(),
            uniforms.contiguous(),
            out,
            logits.stride(0),
            vocab,
            BLOCK=2048,
            num_warps=8,
        )
    return out
