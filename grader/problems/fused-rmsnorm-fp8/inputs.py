"""How fused-rmsnorm-fp8's inputs are drawn and called: public (the sandbox runs it), no answers here."""

import torch


def generate(case, generator, device):
    """Activations ~ N(0, 1), a residual stream ~ N(0, 2) with a few tokens 30x larger (as a
    deep layer's are), a norm weight ~ 1 + N(0, 0.1) with a few channels 8x larger, and the
    last ``zero_rows`` tokens all zeros (padding)."""
    tokens, hidden = case["tokens"], case["hidden"]
    dtype = getattr(torch, case["dtype"])
    x = torch.randn(tokens, hidden, generator=generator, device=device)
    residual = torch.randn(tokens, hidden, generator=generator, device=device) * 2.0
    loud = torch.randint(0, tokens, (max(1, tokens // 16),), generator=generator, device=device)
    residual[loud] *= 30.0
    weight = 1.0 + 0.1 * torch.randn(hidden, generator=generator, device=device)
    outliers = torch.randint(0, hidden, (max(1, hidden // 64),), generator=generator, device=device)
    weight[outliers] *= 8.0
    zero_rows = case.get("zero_rows", 0)
    if zero_rows:
        x[tokens - zero_rows :] = 0.0
        residual[tokens - zero_rows :] = 0.0
    return {
        "x": x.to(dtype),
        "residual": residual.to(dtype),
        "weight": weight.to(dtype),
        "eps": float(case.get("eps", 1e-6)),
    }


def prepare(entry, inputs):
    """The call reads ``x`` when it runs: fresh values written into it are the next call's."""
    x, residual, weight, eps = inputs["x"], inputs["residual"], inputs["weight"], inputs["eps"]
    return lambda: entry(x, residual, weight, eps)


def output_parts(case):
    """fp8 values, one float32 scale per token, the updated residual: in the order returned."""
    tokens, hidden = case["tokens"], case["hidden"]
    return [
        ("values", [tokens, hidden], "float8_e4m3fn"),
        ("scales", [tokens, 1], "float32"),
        ("residual", [tokens, hidden], case["dtype"]),
    ]


def output_shape(case):
    return [case["tokens"], case["hidden"]]


def work(case):
    """x, residual and weight read once; fp8 values, scales and the residual written once."""
    tokens, hidden = case["tokens"], case["hidden"]
    item = 4 if case["dtype"] == "float32" else 2
    return {
        "flops": 6 * tokens * hidden,
        "bytes": tokens * hidden * (3 * item + 1) + hidden * item + 4 * tokens,
    }
