"""How lora-bgmv's inputs are drawn and called: public (the sandbox runs it), no answers here."""

import torch


def segment_lengths(case):
    """Fixed ``lengths``, or ``tokens`` segments of one row each (decode)."""
    if "lengths" in case:
        return [int(n) for n in case["lengths"]]
    return [1] * case["tokens"]


def _adapters(case, generator, device):
    """Distinct adapters for the segments, every ``plain_every``-th segment -1 (no adapter)."""
    segments = len(segment_lengths(case))
    order = torch.randperm(case["adapters"], generator=generator, device=device)[:segments]
    chosen = order.to(torch.int32)
    every = case.get("plain_every", 0)
    if every:
        chosen[every - 1 :: every] = -1
    return chosen


def generate(case, generator, device):
    """x and base ~ N(0, 1); A ~ N(0, 1 / d_in) and B ~ N(0, 1 / rank), so each update is of the
    size of base; scales 0.5 to 2 (alpha / rank of different adapters)."""
    lengths = segment_lengths(case)
    tokens, d_in, d_out = sum(lengths), case["d_in"], case["d_out"]
    rank, adapters = case["rank"], case["adapters"]
    dtype = getattr(torch, case["dtype"])

    def draw(*shape, std=1.0):
        return (torch.randn(*shape, generator=generator, device=device) * std).to(dtype)

    indptr = torch.zeros(len(lengths) + 1, dtype=torch.int32)
    indptr[1:] = torch.tensor(lengths).cumsum(0)
    return {
        "x": draw(tokens, d_in),
        "base": draw(tokens, d_out),
        "lora_a": draw(adapters, rank, d_in, std=d_in**-0.5),
        "lora_b": draw(adapters, d_out, rank, std=rank**-0.5),
        "scales": 2.0 ** (torch.rand(adapters, generator=generator, device=device) * 2 - 1),
        "seg_indptr": indptr.to(device),
        "seg_adapters": _adapters(case, generator, device),
        "max_seg_len": max(lengths),
    }


def prepare(entry, inputs):
    """The call reads ``x`` when it runs: fresh values written into it are the next call's."""
    names = ("x", "base", "lora_a", "lora_b", "scales", "seg_indptr", "seg_adapters")
    args = [inputs[name] for name in names]
    max_seg_len = inputs["max_seg_len"]
    return lambda: entry(*args, max_seg_len)


def output_shape(case):
    return [sum(segment_lengths(case)), case["d_out"]]


def work(case):
    """x and base read, y written; each segment's adapter (A and B) read once, its scale too."""
    lengths = segment_lengths(case)
    tokens, d_in, d_out, rank = sum(lengths), case["d_in"], case["d_out"], case["rank"]
    item = 4 if case["dtype"] == "float32" else 2
    every = case.get("plain_every", 0)
    with_adapter = len(lengths) - (len(lengths) // every if every else 0)
    adapter_bytes = rank * (d_in + d_out) * item + 4
    return {
        "flops": 2 * tokens * rank * (d_in + d_out),
        "bytes": tokens * (d_in + 2 * d_out) * item
        + with_adapter * adapter_bytes
        + 8 * len(lengths)
        + 4,
    }
