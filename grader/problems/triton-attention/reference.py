import torch
import triton
import triton.language as tl

# Hopper, head dim 128: 128 query rows by 64 keys per step, 8 warps, 3 stages of K/V in flight.
# Under the interpreter (no GPU) the same tiles run; only their speed is not measured.
BLOCK_M, BLOCK_N, NUM_WARPS, NUM_STAGES = 128, 64, 8, 3
LOG2_E = 1.4426950408889634


@triton.jit
def _attend(
    acc, l_i, m_i, q, k_ptrs, v_ptrs, stride_kt, offs_m, offs_n, lo, hi, seq_len, qk_scale,
    MASKED: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    """Online softmax over keys [lo, hi); qk_scale carries log2(e), so exp2 is exp."""
    for start_n in range(lo, hi, BLOCK_N):
        keys = start_n + offs_n
        if MASKED:
            in_seq = keys < seq_len
            k = tl.load(k_ptrs + start_n * stride_kt, mask=in_seq[None, :], other=0.0)
        else:
            k = tl.load(k_ptrs + start_n * stride_kt)
        s = tl.dot(q, k) * qk_scale
        if MASKED:
            s = tl.where(offs_m[:, None] >= keys[None, :], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        alpha = tl.math.exp2(m_i - m_new)
        p = tl.math.exp2(s - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None]
        if MASKED:
            v = tl.load(v_ptrs + start_n * stride_kt, mask=in_seq[:, None], other=0.0)
        else:
            v = tl.load(v_ptrs + start_n * stride_kt)
        acc = tl.dot(p.to(v.dtype), v, acc)
        m_i = m_new
    return acc, l_i, m_i


@triton.jit
def _causal_varlen_kernel(
    Q, K, V, Out, cu_seqlens, qk_scale,
    stride_qt, stride_qh, stride_kt, stride_kh, stride_ot, stride_oh,
    NUM_HEADS: tl.constexpr, GROUP: tl.constexpr, HEAD_DIM: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    # Longest rows first: block m of a causal sequence does m + 1 steps, so the grid starts
    # with the most work and the tail of the launch is short blocks.
    m_block = tl.num_programs(0) - 1 - tl.program_id(0)
    seq = tl.program_id(1) // NUM_HEADS
    head = tl.program_id(1) % NUM_HEADS
    start = tl.load(cu_seqlens + seq)
    seq_len = tl.load(cu_seqlens + seq + 1) - start
    if m_block * BLOCK_M >= seq_len:
        return
    kv_head = head // GROUP
    offs_m = m_block * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, HEAD_DIM)
    rows = offs_m < seq_len
    q_ptrs = Q + (start + offs_m)[:, None] * stride_qt + head * stride_qh + offs_d[None, :]
    q = tl.load(q_ptrs, mask=rows[:, None], other=0.0)
    kv_base = start * stride_kt + kv_head * stride_kh
    k_ptrs = K + kv_base + offs_n[None, :] * stride_kt + offs_d[:, None]
    v_ptrs = V + kv_base + offs_n[:, None] * stride_kt + offs_d[None, :]
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], tl.float32)
    # Keys wholly before this block's first row need no mask; the diagonal block does.
    diagonal = m_block * BLOCK_M
    acc, l_i, m_i = _attend(
        acc, l_i, m_i, q, k_ptrs, v_ptrs, stride_kt, offs_m, offs_n, 0, diagonal, seq_len,
        qk_scale, False, BLOCK_N,
    )  # fmt: skip
    acc, l_i, m_i = _attend(
        acc, l_i, m_i, q, k_ptrs, v_ptrs, stride_kt, offs_m, offs_n, diagonal,
        tl.minimum(diagonal + BLOCK_M, seq_len), seq_len, qk_scale, True, BLOCK_N,
    )  # fmt: skip
    acc = acc / l_i[:, None]
    o_ptrs = Out + (start + offs_m)[:, None] * stride_ot + head * stride_oh + offs_d[None, :]
    tl.store(o_ptrs, acc.to(Out.dtype.element_ty), mask=rows[:, None])


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor, max_seqlen: int
) -> torch.Tensor:
    """Causal varlen GQA attention: a FlashAttention-2 forward with the softmax in float32."""
    total, num_heads, head_dim = q.shape
    out = torch.empty_like(q)
    scale = head_dim**-0.5 * LOG2_E
    grid = (triton.cdiv(max_seqlen, BLOCK_M), (cu_seqlens.numel() - 1) * num_heads)
    _causal_varlen_kernel[grid](
        q, k, v, out, cu_seqlens, scale,
        q.stride(0), q.stride(1), k.stride(0), k.stride(1), out.stride(0), out.stride(1),
        NUM_HEADS=num_heads, GROUP=num_heads // k.shape[1], HEAD_DIM=head_dim,
        BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, num_warps=NUM_WARPS, num_stages=NUM_STAGES,
    )  # fmt: skip
    return out
