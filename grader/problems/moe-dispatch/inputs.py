"""How moe-dispatch's inputs are drawn and called: public (the sandbox runs it), no answers here."""

import torch

# A bias no N(0, 2) logit overcomes: a "cold" expert is never chosen (its load is empty).
COLD_BIAS = -60.0
# Hot experts: chosen by most tokens, so loads are ragged.
HOT_BIAS = 3.0


def generate(case, generator, device):
    """x ~ N(0, 1); expert weights ~ N(0, 1 / hidden), so each expert's output is ~ N(0, 1);
    router logits ~ N(0, 2), the first ``hot`` experts raised and the last ``cold`` ones
    lowered out of reach (empty experts)."""
    tokens, hidden, d_out = case["tokens"], case["hidden"], case["d_out"]
    experts = case["experts"]
    dtype = getattr(torch, case["dtype"])
    x = torch.randn(tokens, hidden, generator=generator, device=device)
    w = torch.randn(experts, d_out, hidden, generator=generator, device=device) * hidden**-0.5
    logits = torch.randn(tokens, experts, generator=generator, device=device) * 2.0
    hot, cold = case.get("hot", 0), case.get("cold", 0)
    logits[:, :hot] += HOT_BIAS
    if cold:
        logits[:, experts - cold :] += COLD_BIAS
    return {"x": x.to(dtype), "router_logits": logits, "w": w.to(dtype), "top_k": case["top_k"]}


def prepare(entry, inputs):
    """The call reads ``x`` and the logits when it runs: fresh values written into them are
    the next call's inputs."""
    x, logits, w, top_k = inputs["x"], inputs["router_logits"], inputs["w"], inputs["top_k"]
    return lambda: entry(x, logits, w, top_k)


def output_shape(case):
    return [case["tokens"], case["d_out"]]


def work(case):
    """2 x tokens x top_k x hidden x d_out FLOPs; every expert's weights read once (the
    benchmark's 2,048 choices over 128 experts leave one empty with odds near 1e-5),
    x, the logits and out once."""
    tokens, hidden, d_out, experts = case["tokens"], case["hidden"], case["d_out"], case["experts"]
    item = 4 if case["dtype"] == "float32" else 2
    return {
        "flops": 2 * tokens * case["top_k"] * hidden * d_out,
        "bytes": experts * d_out * hidden * item
        + tokens * (hidden + d_out) * item
        + tokens * experts * 4,
    }
