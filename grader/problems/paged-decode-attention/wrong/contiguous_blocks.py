import torch
import triton
import triton.language as tl

BLOCK_P = 32


@triton.jit
def _decode_kernel(
    Q, K, V, Out, block_tables, seq_lens, scale, page,
    stride_qb, stride_qh, stride_bt, stride_kb, stride_kp, stride_kh,
    NUM_HEADS: tl.constexpr, GROUP: tl.constexpr, HEAD_DIM: tl.constexpr, BLOCK_P: tl.constexpr,
):  # fmt: skip
    seq = tl.program_id(0) // NUM_HEADS
    head = tl.program_id(0) % NUM_HEADS
    kv_head = head // GROUP
    length = tl.load(seq_lens + seq)
    offs_d = tl.arange(0, HEAD_DIM)
    q = tl.load(Q + seq * stride_qb + head * stride_qh + offs_d).to(tl.float32)
    m_i = tl.max(tl.full([BLOCK_P], float("-inf"), tl.float32), 0)
    l_i = tl.sum(tl.zeros([BLOCK_P], tl.float32), 0)
    acc = tl.zeros([HEAD_DIM], tl.float32)
    limit = length
    for start in range(0, limit, BLOCK_P):
        positions = start + tl.arange(0, BLOCK_P)
        live = positions < limit
        # Only the first block's number is read: the blocks after it are assumed to follow it.
        block = tl.load(block_tables + seq * stride_bt) + positions // page
        rows = block * stride_kb + (positions % page) * stride_kp + kv_head * stride_kh
        k = tl.load(K + rows[:, None] + offs_d[None, :], mask=live[:, None], other=0.0)
        s = tl.where(live, tl.sum(k.to(tl.float32) * q[None, :], 1) * scale, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 0))
        p = tl.exp(s - m_new)
        alpha = tl.exp(m_i - m_new)
        v = tl.load(V + rows[:, None] + offs_d[None, :], mask=live[:, None], other=0.0)
        acc = acc * alpha + tl.sum(p[:, None] * v.to(tl.float32), 0)
        l_i = l_i * alpha + tl.sum(p, 0)
        m_i = m_new
    out = acc / l_i
    tl.store(Out + seq * stride_qb + head * stride_qh + offs_d, out.to(Out.dtype.element_ty))


def paged_decode_attention(q, k_cache, v_cache, block_tables, seq_lens):
    """Wrong: assumes a sequence's blocks follow its first block, ignoring the rest of the
    block table (true only for a cache that was never fragmented)."""
    batch, num_heads, head_dim = q.shape
    out = torch.empty_like(q)
    _decode_kernel[(batch * num_heads,)](
        q, k_cache, v_cache, out, block_tables, seq_lens, head_dim**-0.5, k_cache.shape[1],
        q.stride(0), q.stride(1), block_tables.stride(0), k_cache.stride(0), k_cache.stride(1),
        k_cache.stride(2), NUM_HEADS=num_heads, GROUP=num_heads // k_cache.shape[2],
        HEAD_DIM=head_dim, BLOCK_P=BLOCK_P,
    )  # fmt: skip
    return out
