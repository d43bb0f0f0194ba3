import torch
import triton
import triton.language as tl


@triton.jit
def _segment_rows(seg_indptr, seg_adapters, BLOCK_M: tl.constexpr):
    """(adapter, rows, live) of this program's block of its segment: rows seg_indptr[s] to
    seg_indptr[s + 1] - 1 (axis 0 is the segment, axis 1 the block of BLOCK_M rows)."""
    seg, block = tl.program_id(0), tl.program_id(1)
    adapter = tl.load(seg_adapters + seg).to(tl.int64)
    end = tl.load(seg_indptr + seg + 1)
    rows = tl.load(seg_indptr + seg) + block * BLOCK_M + tl.arange(0, BLOCK_M)
    return adapter, rows, rows < end


@triton.jit
def _shrink_kernel(
    X, A, T, seg_indptr, seg_adapters, d_in, rank,
    stride_xm, stride_ae, stride_ar, stride_tm,
    BLOCK_M: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_K: tl.constexpr, SPLIT_K: tl.constexpr,
):  # fmt: skip
    # t[rows] += x[rows, k-slice] @ A_i[:, k-slice].T: one program per (segment, row block,
    # k-slice). The k-split gives decode (one row a segment) enough programs to fill the card;
    # the slices meet in T by atomic adds (T starts at zero).
    split = tl.program_id(2)
    adapter, rows, live_m = _segment_rows(seg_indptr, seg_adapters, BLOCK_M)
    if (adapter >= 0) & (tl.max(live_m.to(tl.int32), axis=0) > 0):
        offs_r = tl.arange(0, BLOCK_R)
        live_r = offs_r < rank
        span = tl.cdiv(tl.cdiv(d_in, SPLIT_K), BLOCK_K) * BLOCK_K
        acc = tl.zeros([BLOCK_M, BLOCK_R], tl.float32)
        for k in range(split * span, tl.minimum((split + 1) * span, d_in), BLOCK_K):
            offs_k = k + tl.arange(0, BLOCK_K)
            live_k = offs_k < d_in
            x = tl.load(
                X + rows[:, None] * stride_xm + offs_k[None, :],
                mask=live_m[:, None] & live_k[None, :],
                other=0.0,
            )
            a = tl.load(
                A + adapter * stride_ae + offs_r[None, :] * stride_ar + offs_k[:, None],
                mask=live_r[None, :] & live_k[:, None],
                other=0.0,
            )
            acc = tl.dot(x, a, acc)
        t_ptrs = T + rows[:, None] * stride_tm + offs_r[None, :]
        tl.atomic_add(t_ptrs, acc, mask=live_m[:, None] & live_r[None, :])


@triton.jit
def _expand_kernel(
    T, B, Base, Scales, Y, seg_indptr, seg_adapters, d_out, rank,
    stride_tm, stride_be, stride_bn, stride_basem, stride_ym,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_R: tl.constexpr,
):  # fmt: skip
    # y[rows, n-block] = base + scale_i * t[rows] @ B_i[n-block].T; rows of no adapter copy base.
    adapter, rows, live_m = _segment_rows(seg_indptr, seg_adapters, BLOCK_M)
    offs_n = tl.program_id(2) * BLOCK_N + tl.arange(0, BLOCK_N)
    live = live_m[:, None] & (offs_n < d_out)[None, :]
    y = tl.load(Base + rows[:, None] * stride_basem + offs_n[None, :], mask=live, other=0.0)
    y = y.to(tl.float32)
    if adapter >= 0:
        offs_r = tl.arange(0, BLOCK_R)
        live_r = offs_r < rank
        t = tl.load(
            T + rows[:, None] * stride_tm + offs_r[None, :],
            mask=live_m[:, None] & live_r[None, :],
            other=0.0,
        )
        b = tl.load(
            B + adapter * stride_be + offs_n[None, :] * stride_bn + offs_r[:, None],
            mask=live_r[:, None] & (offs_n < d_out)[None, :],
            other=0.0,
        )
        scale = tl.load(Scales + adapter)
        # t in the weights' dtype for the tensor cores: half an ulp of t, the largest error an
        # honest kernel makes (the tolerance is set for it: problem.yaml).
        y += scale * tl.dot(t.to(b.dtype), b)
    tl.store(Y + rows[:, None] * stride_ym + offs_n[None, :], y.to(Y.dtype.element_ty), mask=live)


def _blocks(max_seg_len: int, d_in: int, num_segments: int) -> tuple[int, int]:
    """(rows a program, k-slices): decode splits d_in so that segments x slices fill ~4 waves of
    132 SMs; prefill tiles rows and streams all of d_in per program."""
    block_m = 16 if max_seg_len <= 16 else 64
    split_k = max(1, min(d_in // 256, 512 // max(1, num_segments))) if block_m == 16 else 1
    return block_m, split_k


def lora_apply(
    x: torch.Tensor,
    base: torch.Tensor,
    lora_a: torch.Tensor,
    lora_b: torch.Tensor,
    scales: torch.Tensor,
    seg_indptr: torch.Tensor,
    seg_adapters: torch.Tensor,
    max_seg_len: int,
) -> torch.Tensor:
    """Batched multi-LoRA (BGMV for decode, SGMV for prefill segments), shrink then expand."""
    tokens, d_in = x.shape
    d_out = base.shape[1]
    rank = lora_a.shape[1]
    num_segments = seg_adapters.shape[0]
    t = torch.zeros(tokens, rank, dtype=torch.float32, device=x.device)
    y = torch.empty_like(base)
    block_m, split_k = _blocks(max_seg_len, d_in, num_segments)
    block_r = max(16, triton.next_power_of_2(rank))
    row_blocks = max(1, triton.cdiv(max_seg_len, block_m))
    _shrink_kernel[(num_segments, row_blocks, split_k)](
        x, lora_a, t, seg_indptr, seg_adapters, d_in, rank,
        x.stride(0), lora_a.stride(0), lora_a.stride(1), t.stride(0),
        BLOCK_M=block_m, BLOCK_R=block_r, BLOCK_K=64, SPLIT_K=split_k,
    )  # fmt: skip
    block_n = 128
    _expand_kernel[(num_segments, row_blocks, triton.cdiv(d_out, block_n))](
        t, lora_b, base, scales, y, seg_indptr, seg_adapters, d_out, rank,
        t.stride(0), lora_b.stride(0), lora_b.stride(1), base.stride(0), y.stride(0),
        BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_R=block_r,
    )  # fmt: skip
    return y
