"""Triton kernels for paged attention: varlen causal prefill and decode (GQA), one backend.

Both kernels read keys and values through the block table one key position at a time, so any
block size works. On CPU they run under `TRITON_INTERPRET=1` (tests); on CUDA they are the
fast path (the decode kernel also runs inside CUDA graphs).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from engine.attention import AttentionBackend, AttentionMetadata


@triton.jit
def _prefill_kernel(
    Q, K_cache, V_cache, Out, query_start_loc, seq_lens, block_tables, scale,
    stride_qt, stride_qh, stride_ot, stride_oh, stride_kb, stride_ks, stride_kh, stride_bt,
    GROUP: tl.constexpr, PAGE: tl.constexpr, HEAD_DIM: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    seq, head, m_block = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    q_start = tl.load(query_start_loc + seq)
    q_len = tl.load(query_start_loc + seq + 1) - q_start
    if m_block * BLOCK_M >= q_len:
        return
    seq_len = tl.load(seq_lens + seq)
    context = seq_len - q_len
    kv_head = head // GROUP
    offs_m = m_block * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    mask_m, mask_d = offs_m < q_len, offs_d < HEAD_DIM
    q_ptrs = Q + (q_start + offs_m)[:, None] * stride_qt + head * stride_qh + offs_d[None, :]
    q = tl.load(q_ptrs, mask=mask_m[:, None] & mask_d[None, :], other=0.0)
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    end = tl.minimum(seq_len, context + (m_block + 1) * BLOCK_M)
    for n_start in range(0, end, BLOCK_N):
        offs_n = n_start + tl.arange(0, BLOCK_N)
        mask_n = offs_n < end
        block = tl.load(block_tables + seq * stride_bt + offs_n // PAGE, mask=mask_n, other=0)
        kv_off = block * stride_kb + (offs_n % PAGE) * stride_ks + kv_head * stride_kh
        kv_mask = mask_n[:, None] & mask_d[None, :]
        k = tl.load(K_cache + kv_off[:, None] + offs_d[None, :], mask=kv_mask, other=0.0)
        v = tl.load(V_cache + kv_off[:, None] + offs_d[None, :], mask=kv_mask, other=0.0)
        scores = tl.dot(q, tl.trans(k)).to(tl.float32) * scale
        causal = offs_n[None, :] <= (context + offs_m)[:, None]
        scores = tl.where(causal & mask_n[None, :], scores, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(scores, 1))
        alpha = tl.exp(m_i - m_new)
        p = tl.exp(scores - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v).to(tl.float32)
        m_i = m_new
    acc = acc / l_i[:, None]
    o_ptrs = Out + (q_start + offs_m)[:, None] * stride_ot + head * stride_oh + offs_d[None, :]
    tl.store(o_ptrs, acc.to(Out.dtype.element_ty), mask=mask_m[:, None] & mask_d[None, :])


@triton.jit
def _decode_kernel(
    Q, K_cache, V_cache, Out, seq_lens, block_tables, scale,
    stride_qt, stride_qh, stride_ot, stride_oh, stride_kb, stride_ks, stride_kh, stride_bt,
    GROUP: tl.constexpr, BLOCK_G: tl.constexpr, PAGE: tl.constexpr, HEAD_DIM: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    seq, kv_head = tl.program_id(0), tl.program_id(1)
    seq_len = tl.load(seq_lens + seq)
    offs_g = tl.arange(0, BLOCK_G)
    offs_d = tl.arange(0, BLOCK_D)
    mask_g, mask_d = offs_g < GROUP, offs_d < HEAD_DIM
    heads = kv_head * GROUP + offs_g
    q_ptrs = Q + seq * stride_qt + heads[:, None] * stride_qh + offs_d[None, :]
    q = tl.load(q_ptrs, mask=mask_g[:, None] & mask_d[None, :], other=0.0)
    m_i = tl.full([BLOCK_G], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_G], tl.float32)
    acc = tl.zeros([BLOCK_G, BLOCK_D], tl.float32)
    for n_start in range(0, seq_len, BLOCK_N):
        offs_n = n_start + tl.arange(0, BLOCK_N)
        mask_n = offs_n < seq_len
        block = tl.load(block_tables + seq * stride_bt + offs_n // PAGE, mask=mask_n, other=0)
        kv_off = block * stride_kb + (offs_n % PAGE) * stride_ks + kv_head * stride_kh
        kv_mask = mask_n[:, None] & mask_d[None, :]
        k = tl.load(K_cache + kv_off[:, None] + offs_d[None, :], mask=kv_mask, other=0.0)
        v = tl.load(V_cache + kv_off[:, None] + offs_d[None, :], mask=kv_mask, other=0.0)
        scores = tl.dot(q, tl.trans(k)).to(tl.float32) * scale
        scores = tl.where(mask_n[None, :], scores, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(scores, 1))
        alpha = tl.exp(m_i - m_new)
        p = tl.exp(scores - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v).to(tl.float32)
        m_i = m_new
    acc = acc / l_i[:, None]
    o_ptrs = Out + seq * stride_ot + heads[:, None] * stride_oh + offs_d[None, :]
    tl.store(o_ptrs, acc.to(Out.dtype.element_ty), mask=mask_g[:, None] & mask_d[None, :])


class TritonAttention(AttentionBackend):
    """Flash-attention-style kernels over the paged cache: online softmax, float32 accumulators.

    Prefill: one program per (sequence, head, BLOCK_M query rows). Decode: one program per
    (sequence, kv head) serving all of that head's query heads, so each key is read once.
    """

    def __init__(self, block_m: int = 64, block_n: int = 64):
        self.block_m, self.block_n = block_m, block_n

    def forward(self, q, k, v, k_cache, v_cache, meta: AttentionMetadata, scale):
        self.store_kv(k, v, k_cache, v_cache, meta.slot_mapping)
        out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
        num_heads, head_dim = q.shape[1], q.shape[2]
        group = num_heads // k.shape[1]
        strides = (
            q.stride(0), q.stride(1), out.stride(0), out.stride(1), k_cache.stride(0), k_cache.stride(1), k_cache.stride(2),
            meta.block_tables.stride(0),
        )  # fmt: skip
        common = dict(
            PAGE=meta.block_size, HEAD_DIM=head_dim, BLOCK_D=triton.next_power_of_2(head_dim)
        )
        if meta.decode_only:
            grid = (meta.seq_lens.shape[0], k.shape[1])
            _decode_kernel[grid](
                q, k_cache, v_cache, out, meta.seq_lens, meta.block_tables, scale, *strides,
                GROUP=group, BLOCK_G=max(16, triton.next_power_of_2(group)),
                BLOCK_N=self.block_n, **common,
            )  # fmt: skip
        else:
            grid = (
                meta.seq_lens.shape[0],
                num_heads,
                triton.cdiv(meta.max_query_len, self.block_m),
            )
            _prefill_kernel[grid](
                q, k_cache, v_cache, out, meta.query_start_loc, meta.seq_lens, meta.block_tables,
                scale, *strides, GROUP=group, BLOCK_M=self.block_m, BLOCK_N=self.block_n, **common,
            )  # fmt: skip
        return out
