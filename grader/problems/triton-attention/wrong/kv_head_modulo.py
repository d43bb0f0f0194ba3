import torch
import triton
import triton.language as tl

BLOCK_M, BLOCK_N = 32, 32
LOG2_E = 1.4426950408889634


@triton.jit
def _attention_kernel(
    Q, K, V, Out, cu_seqlens, qk_scale, stride_qt, stride_qh, stride_kt, stride_kh,
    NUM_HEADS: tl.constexpr, NUM_KV_HEADS: tl.constexpr, HEAD_DIM: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    m_block = tl.program_id(0)
    seq = tl.program_id(1) // NUM_HEADS
    head = tl.program_id(1) % NUM_HEADS
    start = tl.load(cu_seqlens + seq)
    seq_len = tl.load(cu_seqlens + seq + 1) - start
    if m_block * BLOCK_M >= seq_len:
        return
    kv_head = head % NUM_KV_HEADS  # should be head // (NUM_HEADS // NUM_KV_HEADS)
    offs_m = m_block * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, HEAD_DIM)
    rows = offs_m < seq_len
    q_ptrs = Q + (start + offs_m)[:, None] * stride_qt + head * stride_qh + offs_d[None, :]
    q = tl.load(q_ptrs, mask=rows[:, None], other=0.0)
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], tl.float32)
    for start_n in range(0, (m_block + 1) * BLOCK_M, BLOCK_N):
        keys = start_n + offs_n
        in_seq = keys < seq_len
        kv = (start + keys) * stride_kt + kv_head * stride_kh
        k = tl.load(K + kv[None, :] + offs_d[:, None], mask=in_seq[None, :], other=0.0)
        s = tl.dot(q, k) * qk_scale
        s = tl.where((offs_m[:, None] >= keys[None, :]) & in_seq[None, :], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        p = tl.math.exp2(s - m_new[:, None])
        alpha = tl.math.exp2(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, 1)
        v = tl.load(V + kv[:, None] + offs_d[None, :], mask=in_seq[:, None], other=0.0)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
        m_i = m_new
    acc = acc / l_i[:, None]
    o_ptrs = Out + (start + offs_m)[:, None] * stride_qt + head * stride_qh + offs_d[None, :]
    tl.store(o_ptrs, acc.to(Out.dtype.element_ty), mask=rows[:, None])


def attention(q, k, v, cu_seqlens, max_seqlen: int):
    """Wrong: query head h reads kv head h % num_kv_heads, not h // group: with GQA the
    heads of one group read different kv heads."""
    num_heads, head_dim = q.shape[1], q.shape[2]
    out = torch.empty_like(q)
    bounds = cu_seqlens
    grid = (triton.cdiv(max_seqlen, BLOCK_M), (cu_seqlens.numel() - 1) * num_heads)
    _attention_kernel[grid](
        q, k, v, out, bounds, head_dim**-0.5 * LOG2_E, q.stride(0), q.stride(1), k.stride(0),
        k.stride(1), NUM_HEADS=num_heads, NUM_KV_HEADS=k.shape[1], HEAD_DIM=head_dim,
        BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N,
    )  # fmt: skip
    return out
