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
def _attend_keys(
    q, m_i, l_i, acc, K_cache, V_cache, block_tables, seq, kv_head, context, offs_m, offs_d,
    mask_d, scale, n_begin, n_end, stride_kb, stride_ks, stride_kh, stride_bt,
    PAGE: tl.constexpr, BLOCK_N: tl.constexpr, MASKED: tl.constexpr, CAUSAL: tl.constexpr,
):  # fmt: skip
    """Online-softmax over keys [n_begin, n_end). MASKED masks keys past `n_end`, and with
    CAUSAL keys after each query row's position (`context + offs_m`)."""
    for n_start in range(n_begin, n_end, BLOCK_N):
        offs_n = n_start + tl.arange(0, BLOCK_N)
        mask_n = offs_n < n_end
        block = tl.load(block_tables + seq * stride_bt + offs_n // PAGE, mask=mask_n, other=0)
        kv_off = block * stride_kb + (offs_n % PAGE) * stride_ks + kv_head * stride_kh
        kv_mask = mask_n[:, None] & mask_d[None, :]
        k = tl.load(K_cache + kv_off[:, None] + offs_d[None, :], mask=kv_mask, other=0.0)
        v = tl.load(V_cache + kv_off[:, None] + offs_d[None, :], mask=kv_mask, other=0.0)
        scores = tl.dot(q, tl.trans(k)).to(tl.float32) * scale
        if MASKED and CAUSAL:
            causal = offs_n[None, :] <= (context + offs_m)[:, None]
            scores = tl.where(causal & mask_n[None, :], scores, float("-inf"))
        elif MASKED:
            scores = tl.where(mask_n[None, :], scores, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(scores, 1))
        alpha = tl.exp(m_i - m_new)
        p = tl.exp(scores - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v).to(tl.float32)
        m_i = m_new
    return m_i, l_i, acc


@triton.jit(do_not_specialize=["stride_bt"])
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
    # Keys before this block's first query position are visible to all its rows: no masks.
    unmasked_end = (context + m_block * BLOCK_M) // BLOCK_N * BLOCK_N
    m_i, l_i, acc = _attend_keys(
        q, m_i, l_i, acc, K_cache, V_cache, block_tables, seq, kv_head, context, offs_m, offs_d,
        mask_d, scale, 0, unmasked_end, stride_kb, stride_ks, stride_kh, stride_bt,
        PAGE=PAGE, BLOCK_N=BLOCK_N, MASKED=False, CAUSAL=False,
    )  # fmt: skip
    end = tl.minimum(seq_len, context + (m_block + 1) * BLOCK_M)
    m_i, l_i, acc = _attend_keys(
        q, m_i, l_i, acc, K_cache, V_cache, block_tables, seq, kv_head, context, offs_m, offs_d,
        mask_d, scale, unmasked_end, end, stride_kb, stride_ks, stride_kh, stride_bt,
        PAGE=PAGE, BLOCK_N=BLOCK_N, MASKED=True, CAUSAL=True,
    )  # fmt: skip
    acc = acc / l_i[:, None]
    o_ptrs = Out + (q_start + offs_m)[:, None] * stride_ot + head * stride_oh + offs_d[None, :]
    tl.store(o_ptrs, acc.to(Out.dtype.element_ty), mask=mask_m[:, None] & mask_d[None, :])


# Arguments that change from step to step are not specialised on, so a new table width or
# split count never triggers a recompile in the middle of serving.
@triton.jit(do_not_specialize=["stride_bt", "stride_pt", "stride_ph"])
def _decode_split_kernel(
    Q, K_cache, V_cache, PartOut, PartMax, PartSum, seq_lens, block_tables, scale,
    stride_qt, stride_qh, stride_kb, stride_ks, stride_kh, stride_bt,
    stride_pt, stride_ph, stride_ps,
    GROUP: tl.constexpr, BLOCK_G: tl.constexpr, PAGE: tl.constexpr, HEAD_DIM: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, SPLIT: tl.constexpr,
):  # fmt: skip
    """One (sequence, kv head, split of SPLIT keys): the split's softmax partials, unnormalised."""
    seq, kv_head, split = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    seq_len = tl.load(seq_lens + seq)
    begin = split * SPLIT
    if begin >= seq_len:
        return
    end = tl.minimum(seq_len, begin + SPLIT)
    offs_g = tl.arange(0, BLOCK_G)
    offs_d = tl.arange(0, BLOCK_D)
    mask_g, mask_d = offs_g < GROUP, offs_d < HEAD_DIM
    heads = kv_head * GROUP + offs_g
    q_ptrs = Q + seq * stride_qt + heads[:, None] * stride_qh + offs_d[None, :]
    q = tl.load(q_ptrs, mask=mask_g[:, None] & mask_d[None, :], other=0.0)
    m_i = tl.full([BLOCK_G], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_G], tl.float32)
    acc = tl.zeros([BLOCK_G, BLOCK_D], tl.float32)
    m_i, l_i, acc = _attend_keys(
        q, m_i, l_i, acc, K_cache, V_cache, block_tables, seq, kv_head, 0, offs_g, offs_d,
        mask_d, scale, begin, end, stride_kb, stride_ks, stride_kh, stride_bt,
        PAGE=PAGE, BLOCK_N=BLOCK_N, MASKED=True, CAUSAL=False,
    )  # fmt: skip
    part = seq * stride_pt + heads * stride_ph + split * stride_ps
    tl.store(
        PartOut + part[:, None] * BLOCK_D + offs_d[None, :],
        acc,
        mask=mask_g[:, None] & mask_d[None, :],
    )
    tl.store(PartMax + part, m_i, mask=mask_g)
    tl.store(PartSum + part, l_i, mask=mask_g)


@triton.jit(do_not_specialize=["stride_pt", "stride_ph"])
def _decode_reduce_kernel(
    PartOut, PartMax, PartSum, Out, seq_lens, stride_ot, stride_oh, stride_pt, stride_ph,
    stride_ps, HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, SPLIT: tl.constexpr,
):  # fmt: skip
    """One (sequence, head): merge its splits' partials into the softmax-weighted output."""
    seq, head = tl.program_id(0), tl.program_id(1)
    num_splits = tl.cdiv(tl.load(seq_lens + seq), SPLIT)
    offs_d = tl.arange(0, BLOCK_D)
    m_i = float("-inf")
    l_i = 0.0
    acc = tl.zeros([BLOCK_D], tl.float32)
    for split in range(0, num_splits):
        part = seq * stride_pt + head * stride_ph + split * stride_ps
        m_split = tl.load(PartMax + part)
        m_new = tl.maximum(m_i, m_split)
        alpha, beta = tl.exp(m_i - m_new), tl.exp(m_split - m_new)
        acc = acc * alpha + tl.load(PartOut + part * BLOCK_D + offs_d) * beta
        l_i = l_i * alpha + tl.load(PartSum + part) * beta
        m_i = m_new
    out = acc / l_i
    tl.store(
        Out + seq * stride_ot + head * stride_oh + offs_d,
        out.to(Out.dtype.element_ty),
        mask=offs_d < HEAD_DIM,
    )


class TritonAttention(AttentionBackend):
    """Flash-attention-style kernels over the paged cache: online softmax, float32 accumulators.

    Prefill: one program per (sequence, head, `block_m` query rows); keys wholly before a
    block's first row skip the causal mask. Decode (flash-decoding): one program per
    (sequence, kv head, `decode_split` keys) serving all of that kv head's query heads, so
    each key is read once and long contexts still fill the GPU; a second kernel merges the
    splits. `decode_split` None picks it from the number of (sequence, kv head) pairs.
    """

    def __init__(
        self,
        block_m: int = 64,
        block_n: int = 64,
        decode_split: int | None = None,
        num_warps: int = 4,
        num_stages: int = 2,
    ):
        self.block_m, self.block_n, self.decode_split = block_m, block_n, decode_split
        self.num_warps, self.num_stages = num_warps, num_stages

    def split_size(self, pairs: int) -> int:
        """Keys per decode program: fewer (sequence, kv head) pairs get smaller splits."""
        if self.decode_split:
            return self.decode_split
        split = 256 if pairs >= 256 else 128 if pairs >= 64 else 64
        return max(split, self.block_n)

    def forward(self, q, k, v, k_cache, v_cache, meta: AttentionMetadata, scale):
        self.store_kv(k, v, k_cache, v_cache, meta.slot_mapping)
        out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
        num_heads, head_dim = q.shape[1], q.shape[2]
        num_kv_heads = k.shape[1]
        group = num_heads // num_kv_heads
        block_d = triton.next_power_of_2(head_dim)
        kv_strides = (k_cache.stride(0), k_cache.stride(1), k_cache.stride(2))
        common = dict(PAGE=meta.block_size, HEAD_DIM=head_dim, BLOCK_D=block_d)
        tuning = dict(num_warps=self.num_warps, num_stages=self.num_stages)
        num_seqs = meta.seq_lens.shape[0]
        if meta.decode_only:
            split = self.split_size(num_seqs * num_kv_heads)
            num_splits = triton.cdiv(meta.max_seq_len, split)
            part_max = torch.empty(
                num_seqs, num_heads, num_splits, dtype=torch.float32, device=q.device
            )
            part_sum = torch.empty_like(part_max)
            part_out = torch.empty(*part_max.shape, block_d, dtype=torch.float32, device=q.device)
            part_strides = (part_max.stride(0), part_max.stride(1), part_max.stride(2))
            _decode_split_kernel[(num_seqs, num_kv_heads, num_splits)](
                q, k_cache, v_cache, part_out, part_max, part_sum, meta.seq_lens,
                meta.block_tables, scale, q.stride(0), q.stride(1), *kv_strides,
                meta.block_tables.stride(0), *part_strides, GROUP=group,
                BLOCK_G=max(16, triton.next_power_of_2(group)), BLOCK_N=self.block_n,
                SPLIT=split, **common, **tuning,
            )  # fmt: skip
            _decode_reduce_kernel[(num_seqs, num_heads)](
                part_out, part_max, part_sum, out, meta.seq_lens, out.stride(0), out.stride(1),
                *part_strides, HEAD_DIM=head_dim, BLOCK_D=block_d, SPLIT=split,
            )  # fmt: skip
        else:
            grid = (num_seqs, num_heads, triton.cdiv(meta.max_query_len, self.block_m))
            _prefill_kernel[grid](
                q, k_cache, v_cache, out, meta.query_start_loc, meta.seq_lens, meta.block_tables,
                scale, q.stride(0), q.stride(1), out.stride(0), out.stride(1), *kv_strides,
                meta.block_tables.stride(0), GROUP=group, BLOCK_M=self.block_m,
                BLOCK_N=self.block_n, **common, **tuning,
            )  # fmt: skip
        return out
