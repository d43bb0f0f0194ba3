import torch
import triton
import triton.language as tl


@triton.jit
def _route_kernel(
    Logits, Ids, Gates, Counts, num_experts, stride_l,
    TOP_K: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    # One token a program: k rounds of (max, lowest index holding it, mask it out).
    t = tl.program_id(0).to(tl.int64)
    offs = tl.arange(0, BLOCK_E)
    logits = tl.load(Logits + t * stride_l + offs, mask=offs < num_experts, other=float("-inf"))
    top = tl.max(logits, axis=0)
    offs_k = tl.arange(0, BLOCK_K)
    ids = tl.zeros([BLOCK_K], tl.int32)
    gates = tl.zeros([BLOCK_K], tl.float32)
    for j in tl.static_range(TOP_K):
        best = tl.max(logits, axis=0)
        expert = tl.min(tl.where(logits == best, offs, BLOCK_E), axis=0)
        ids = tl.where(offs_k == j, expert, ids)
        gates = tl.where(offs_k == j, tl.exp(best - top), gates)
        logits = tl.where(offs == expert, float("-inf"), logits)
    live = offs_k < TOP_K
    gates = gates / tl.sum(
        tl.exp(
            tl.load(Logits + t * stride_l + offs, mask=offs < num_experts, other=float("-inf"))
            - top
        ),
        axis=0,
    )
    tl.store(Ids + t * TOP_K + offs_k, ids, mask=live)
    tl.store(Gates + t * TOP_K + offs_k, gates, mask=live)
    tl.atomic_add(Counts + ids, 1, mask=live)


@triton.jit
def _align_kernel(Counts, Starts, Ends, num_experts, BLOCK_M: tl.constexpr, BLOCK_E: tl.constexpr):
    # Each expert's rows padded to whole BLOCK_M tiles, laid end to end: a tile never mixes
    # experts, and an empty expert takes no tile at all.
    offs = tl.arange(0, BLOCK_E)
    live = offs < num_experts
    counts = tl.load(Counts + offs, mask=live, other=0)
    padded = tl.cdiv(counts, BLOCK_M) * BLOCK_M
    ends = tl.cumsum(padded, axis=0)
    tl.store(Starts + offs, ends - padded, mask=live)
    tl.store(Ends + offs, ends, mask=live)


@triton.jit
def _scatter_kernel(Ids, Starts, Cursor, Sorted, TOP_K: tl.constexpr, BLOCK_K: tl.constexpr):
    # Slot t * k + j goes to the next free row of its expert's tiles (order within an expert
    # does not matter: each row is computed on its own and un-permuted by slot).
    t = tl.program_id(0)
    offs_k = tl.arange(0, BLOCK_K)
    live = offs_k < TOP_K
    ids = tl.load(Ids + t * TOP_K + offs_k, mask=live, other=0)
    rows = tl.load(Starts + ids, mask=live, other=0) + tl.atomic_add(Cursor + ids, 1, mask=live)
    tl.store(Sorted + rows, t * TOP_K + offs_k, mask=live)


@triton.jit
def _grouped_gemm_kernel(
    X, W, Gates, Sorted, Ends, Inter, num_slots, num_experts, hidden, d_out,
    stride_x, stride_we, stride_wn, stride_i,
    TOP_K: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    BLOCK_E: tl.constexpr,
):  # fmt: skip
    # One tile of one expert's rows a program: its expert is the number of experts whose
    # tiles end at or before it (empty experts end where the one before them does).
    first = tl.program_id(0) * BLOCK_M
    offs_e = tl.arange(0, BLOCK_E)
    ends = tl.load(Ends + offs_e, mask=offs_e < num_experts, other=0)
    total = tl.max(ends, axis=0)
    if first < total:
        before = (ends <= first) & (offs_e < num_experts)
        expert = tl.sum(before.to(tl.int32), axis=0).to(tl.int64)
        slots = tl.load(Sorted + first + tl.arange(0, BLOCK_M))
        live_m = slots < num_slots
        tokens = slots // TOP_K
        offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
        live_n = offs_n < d_out
        acc = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)
        for k in range(0, hidden, BLOCK_K):
            offs_k = k + tl.arange(0, BLOCK_K)
            live_k = offs_k < hidden
            x = tl.load(
                X + tokens[:, None] * stride_x + offs_k[None, :],
                mask=live_m[:, None] & live_k[None, :],
                other=0.0,
            )
            w = tl.load(
                W + expert * stride_we + offs_n[None, :] * stride_wn + offs_k[:, None],
                mask=live_k[:, None] & live_n[None, :],
                other=0.0,
            )
            acc = tl.dot(x, w, acc)
        gate = tl.load(Gates + slots, mask=live_m, other=0.0)
        i_ptrs = Inter + slots[:, None] * stride_i + offs_n[None, :]
        tl.store(i_ptrs, acc * gate[:, None], mask=live_m[:, None] & live_n[None, :])


@triton.jit
def _combine_kernel(
    Inter, Out, d_out, stride_i, stride_o, TOP_K: tl.constexpr, BLOCK_N: tl.constexpr
):
    # The un-permutation: a token's k weighted rows summed in slot order (deterministic).
    t = tl.program_id(0).to(tl.int64)
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    live = offs_n < d_out
    acc = tl.zeros([BLOCK_N], tl.float32)
    for j in tl.static_range(TOP_K):
        acc += tl.load(Inter + (t * TOP_K + j) * stride_i + offs_n, mask=live, other=0.0)
    tl.store(Out + t * stride_o + offs_n, acc.to(Out.dtype.element_ty), mask=live)


def moe_dispatch(
    x: torch.Tensor, router_logits: torch.Tensor, w: torch.Tensor, top_k: int
) -> torch.Tensor:
    """Wrong: the gates are the chosen experts' probabilities in the softmax over all
    experts, not renormalised over the k chosen: they sum to less than 1."""
    tokens, hidden = x.shape
    num_experts, d_out, _ = w.shape
    num_slots = tokens * top_k
    device = x.device
    # A tile about the size of an expert's load, so most experts' weights are read by one tile
    # (about 16 rows an expert in the benchmark, at most ~30: 32-row tiles); prefill 64.
    rows_per_expert = triton.cdiv(num_slots, num_experts)
    block_m = 16 if rows_per_expert <= 8 else 32 if rows_per_expert <= 24 else 64
    # Tiles: at most one partly filled per expert beyond the full ones.
    max_tiles = triton.cdiv(num_slots, block_m) + num_experts
    block_e = triton.next_power_of_2(num_experts)
    block_k = max(2, triton.next_power_of_2(top_k))
    ids = torch.empty(tokens, top_k, dtype=torch.int32, device=device)
    gates = torch.empty(tokens, top_k, dtype=torch.float32, device=device)
    counts = torch.zeros(num_experts, dtype=torch.int32, device=device)
    cursor = torch.zeros(num_experts, dtype=torch.int32, device=device)
    starts = torch.empty(num_experts, dtype=torch.int32, device=device)
    ends = torch.empty(num_experts, dtype=torch.int32, device=device)
    sorted_slots = torch.full((max_tiles * block_m,), num_slots, dtype=torch.int32, device=device)
    inter = torch.empty(num_slots, d_out, dtype=torch.float32, device=device)
    out = torch.empty(tokens, d_out, dtype=x.dtype, device=device)
    _route_kernel[(tokens,)](
        router_logits, ids, gates, counts, num_experts, router_logits.stride(0),
        TOP_K=top_k, BLOCK_E=block_e, BLOCK_K=block_k,
    )  # fmt: skip
    _align_kernel[(1,)](counts, starts, ends, num_experts, BLOCK_M=block_m, BLOCK_E=block_e)
    _scatter_kernel[(tokens,)](ids, starts, cursor, sorted_slots, TOP_K=top_k, BLOCK_K=block_k)
    block_n = 64
    _grouped_gemm_kernel[(max_tiles, triton.cdiv(d_out, block_n))](
        x, w, gates, sorted_slots, ends, inter, num_slots, num_experts, hidden, d_out,
        x.stride(0), w.stride(0), w.stride(1), inter.stride(0),
        TOP_K=top_k, BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=64, BLOCK_E=block_e,
    )  # fmt: skip
    _combine_kernel[(tokens, triton.cdiv(d_out, 256))](
        inter, out, d_out, inter.stride(0), out.stride(0), TOP_K=top_k, BLOCK_N=256
    )
    return out
