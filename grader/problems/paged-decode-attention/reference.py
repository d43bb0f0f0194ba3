import torch
import triton
import triton.language as tl

# Keys per step: four 16-token pages of 128 bf16 channels, 16 KB each for K and V.
BLOCK_N, NUM_WARPS, NUM_STAGES = 64, 4, 3
# Enough (sequence, kv head, split) programs to keep every SM streaming: about 4 per SM on
# a 132-SM Hopper, and no split shorter than 256 keys (its partial result costs a write).
TARGET_PROGRAMS, MIN_SPLIT_KEYS = 512, 256
LOG2_E = 1.4426950408889634


@triton.jit
def _split_kernel(
    Q, K_cache, V_cache, Part_acc, Part_ml, block_tables, seq_lens, qk_scale,
    stride_qb, stride_qh, stride_kb, stride_ks, stride_kh, stride_bt,
    NUM_SPLITS: tl.constexpr, GROUP: tl.constexpr, BLOCK_G: tl.constexpr,
    PAGE: tl.constexpr, HEAD_DIM: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    seq, kv_head, split = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    seq_len = tl.load(seq_lens + seq)
    per_split = tl.cdiv(tl.cdiv(seq_len, NUM_SPLITS), BLOCK_N) * BLOCK_N
    lo = split * per_split
    hi = tl.minimum(lo + per_split, seq_len)
    offs_g = tl.arange(0, BLOCK_G)
    offs_d = tl.arange(0, HEAD_DIM)
    offs_n = tl.arange(0, BLOCK_N)
    heads = kv_head * GROUP + offs_g
    q = tl.load(
        Q + seq * stride_qb + heads[:, None] * stride_qh + offs_d[None, :],
        mask=(offs_g < GROUP)[:, None],
        other=0.0,
    )
    m_i = tl.full([BLOCK_G], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_G], tl.float32)
    acc = tl.zeros([BLOCK_G, HEAD_DIM], tl.float32)
    table = block_tables + seq * stride_bt
    for start in range(lo, hi, BLOCK_N):
        keys = start + offs_n
        valid = keys < hi
        block = tl.load(table + keys // PAGE, mask=valid, other=0)
        offset = block.to(tl.int64) * stride_kb + (keys % PAGE) * stride_ks + kv_head * stride_kh
        k = tl.load(K_cache + offset[:, None] + offs_d[None, :], mask=valid[:, None], other=0.0)
        v = tl.load(V_cache + offset[:, None] + offs_d[None, :], mask=valid[:, None], other=0.0)
        s = tl.dot(q, tl.trans(k)) * qk_scale
        s = tl.where(valid[None, :], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        alpha = tl.math.exp2(m_i - m_new)
        p = tl.math.exp2(s - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
        m_i = m_new
    row = (seq * tl.num_programs(1) * GROUP + heads) * NUM_SPLITS + split
    keep = offs_g < GROUP
    tl.store(Part_acc + row[:, None] * HEAD_DIM + offs_d[None, :], acc, mask=keep[:, None])
    tl.store(Part_ml + row * 2, m_i, mask=keep)
    tl.store(Part_ml + row * 2 + 1, l_i, mask=keep)


@triton.jit
def _combine_kernel(
    Part_acc, Part_ml, Out, stride_ob, stride_oh,
    NUM_HEADS: tl.constexpr, NUM_SPLITS: tl.constexpr, BLOCK_S: tl.constexpr,
    HEAD_DIM: tl.constexpr,
):  # fmt: skip
    seq, head = tl.program_id(0), tl.program_id(1)
    offs_s = tl.arange(0, BLOCK_S)
    offs_d = tl.arange(0, HEAD_DIM)
    row = (seq * NUM_HEADS + head) * NUM_SPLITS + offs_s
    used = offs_s < NUM_SPLITS
    m = tl.load(Part_ml + row * 2, mask=used, other=float("-inf"))
    l_part = tl.load(Part_ml + row * 2 + 1, mask=used, other=0.0)
    acc = tl.load(
        Part_acc + row[:, None] * HEAD_DIM + offs_d[None, :], mask=used[:, None], other=0.0
    )
    m_max = tl.max(m, 0)
    weight = tl.where(m > float("-inf"), tl.math.exp2(m - m_max), 0.0)
    out = tl.sum(acc * weight[:, None], 0) / tl.sum(l_part * weight, 0)
    tl.store(Out + seq * stride_ob + head * stride_oh + offs_d, out.to(Out.dtype.element_ty))


def paged_decode_attention(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    block_tables: torch.Tensor,
    seq_lens: torch.Tensor,
) -> torch.Tensor:
    """Split-KV (flash-decoding) paged attention: partial softmaxes per split, then a combine.

    The number of splits comes from shapes only (no host sync), so the call can be captured
    in a CUDA graph.
    """
    batch, num_heads, head_dim = q.shape
    page, num_kv_heads = k_cache.shape[1], k_cache.shape[2]
    group = num_heads // num_kv_heads
    max_keys = block_tables.shape[1] * page
    splits = max(
        1, min(triton.cdiv(TARGET_PROGRAMS, batch * num_kv_heads), max_keys // MIN_SPLIT_KEYS)
    )
    part_acc = torch.empty(
        batch * num_heads * splits, head_dim, dtype=torch.float32, device=q.device
    )
    part_ml = torch.empty(batch * num_heads * splits, 2, dtype=torch.float32, device=q.device)
    out = torch.empty_like(q)
    _split_kernel[(batch, num_kv_heads, splits)](
        q, k_cache, v_cache, part_acc, part_ml, block_tables, seq_lens, head_dim**-0.5 * LOG2_E,
        q.stride(0), q.stride(1), k_cache.stride(0), k_cache.stride(1), k_cache.stride(2),
        block_tables.stride(0), NUM_SPLITS=splits, GROUP=group,
        BLOCK_G=max(16, triton.next_power_of_2(group)), PAGE=page, HEAD_DIM=head_dim,
        BLOCK_N=BLOCK_N, num_warps=NUM_WARPS, num_stages=NUM_STAGES,
    )  # fmt: skip
    _combine_kernel[(batch, num_heads)](
        part_acc, part_ml, out, out.stride(0), out.stride(1), NUM_HEADS=num_heads,
        NUM_SPLITS=splits, BLOCK_S=triton.next_power_of_2(splits), HEAD_DIM=head_dim,
    )  # fmt: skip
    return out
