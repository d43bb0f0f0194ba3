"""How paged-decode-attention's inputs are drawn and called: public (the sandbox runs it), no answers here."""

import torch


def _lengths(case, generator, device):
    """Fixed ``lengths``; ``batch`` sequences of ``seq_len``; or ``batch`` random up to ``max_len``."""
    if "lengths" in case:
        return [int(n) for n in case["lengths"]]
    if "seq_len" in case:
        return [int(case["seq_len"])] * case["batch"]
    drawn = torch.randint(
        1, case["max_len"] + 1, (case["batch"],), generator=generator, device=device
    )
    return [int(n) for n in drawn.tolist()]


def generate(case, generator, device):
    """A cache with spare blocks, each sequence's blocks scattered by a random permutation."""
    lengths = _lengths(case, generator, device)
    page, dtype = case["block_size"], getattr(torch, case["dtype"])
    heads, kv_heads, dim = case["heads"], case["kv_heads"], case["head_dim"]
    blocks_per_seq = [-(-n // page) for n in lengths]
    num_blocks = sum(blocks_per_seq) + case.get("spare_blocks", 3)
    cache_shape = (num_blocks, page, kv_heads, dim)
    k_cache = torch.randn(cache_shape, generator=generator, device=device).to(dtype)
    v_cache = torch.randn(cache_shape, generator=generator, device=device).to(dtype)
    order = torch.randperm(num_blocks, generator=generator, device=device).to(torch.int32)
    table = torch.zeros(len(lengths), max(blocks_per_seq), dtype=torch.int32, device=device)
    used = 0
    for row, count in enumerate(blocks_per_seq):
        table[row, :count] = order[used : used + count]
        used += count
    q = torch.randn(len(lengths), heads, dim, generator=generator, device=device) * case.get(
        "scale", 1.0
    )
    return {
        "q": q.to(dtype),
        "k_cache": k_cache,
        "v_cache": v_cache,
        "block_tables": table,
        "seq_lens": torch.tensor(lengths, dtype=torch.int32, device=device),
        "lengths": lengths,
    }


def prepare(entry, inputs):
    args = [inputs[name] for name in ("q", "k_cache", "v_cache", "block_tables", "seq_lens")]
    return lambda: entry(*args)


def output_shape(case):
    batch = len(case["lengths"]) if "lengths" in case else case["batch"]
    return [batch, case["heads"], case["head_dim"]]


def work(case):
    """Every cached key and value of every sequence read once, q read and out written once."""
    lengths = case.get("lengths") or [case.get("seq_len", case.get("max_len"))] * case["batch"]
    heads, kv_heads, dim, page = (
        case["heads"],
        case["kv_heads"],
        case["head_dim"],
        case["block_size"],
    )
    item = 4 if case["dtype"] == "float32" else 2
    tokens = sum(lengths)
    table_bytes = 4 * sum(-(-n // page) for n in lengths) + 4 * len(lengths)
    return {
        "flops": 4 * tokens * heads * dim,
        "bytes": 2 * tokens * kv_heads * dim * item
        + 2 * len(lengths) * heads * dim * item
        + table_bytes,
    }
