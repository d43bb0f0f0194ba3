"""How triton-attention's inputs are drawn and called: public (the sandbox runs it), no answers here."""

import torch


def _lengths(case, generator, device):
    """The case's sequence lengths: fixed ``lengths``, or ``batch`` random ones up to ``max_len``."""
    if "lengths" in case:
        return [int(n) for n in case["lengths"]]
    drawn = torch.randint(
        1, case["max_len"] + 1, (case["batch"],), generator=generator, device=device
    )
    return [int(n) for n in drawn.tolist()]


def generate(case, generator, device):
    lengths = _lengths(case, generator, device)
    total, dtype = sum(lengths), getattr(torch, case["dtype"])
    heads, kv_heads, dim = case["heads"], case["kv_heads"], case["head_dim"]
    scale = case.get("scale", 1.0)

    def draw(*shape):
        return (torch.randn(*shape, generator=generator, device=device) * scale).to(dtype)

    cu = torch.zeros(len(lengths) + 1, dtype=torch.int32)
    cu[1:] = torch.tensor(lengths).cumsum(0)
    return {
        "q": draw(total, heads, dim),
        "k": draw(total, kv_heads, dim),
        "v": torch.randn(total, kv_heads, dim, generator=generator, device=device).to(dtype),
        "cu_seqlens": cu.to(device),
        "max_seqlen": max(lengths),
        "lengths": lengths,
    }


def prepare(entry, inputs):
    """The call reads the input tensors when it runs: fresh values written into them are the
    next call's inputs."""
    q, k, v = inputs["q"], inputs["k"], inputs["v"]
    cu, max_seqlen = inputs["cu_seqlens"], inputs["max_seqlen"]
    return lambda: entry(q, k, v, cu, max_seqlen)


def output_shape(case):
    total = sum(case["lengths"]) if "lengths" in case else case["batch"] * case["max_len"]
    return [total, case["heads"], case["head_dim"]]


def work(case):
    """Causal FLOPs (QK^T and PV over the lower triangle) and the bytes of q, k, v and out."""
    lengths = case.get("lengths") or [case["max_len"]] * case["batch"]
    heads, kv_heads, dim = case["heads"], case["kv_heads"], case["head_dim"]
    pairs = sum(n * (n + 1) // 2 for n in lengths)
    tokens = sum(lengths)
    item = 4 if case["dtype"] == "float32" else 2
    return {
        "flops": 4 * pairs * heads * dim,
        "bytes": tokens * (2 * heads + 2 * kv_heads) * dim * item,
    }
