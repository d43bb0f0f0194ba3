"""Trusted half of moe-dispatch: the routing and every chosen expert in float32 (never sent to
the sandbox; the inputs are drawn by inputs.py in both halves)."""

import torch


def expected(case, inputs):
    """Top-k by a stable descending sort (ties: the lower expert index), weights renormalised
    over the chosen k, each token's k expert outputs summed with them."""
    x, logits, w, top_k = inputs["x"].float(), inputs["router_logits"], inputs["w"], case["top_k"]
    order = torch.sort(logits, dim=-1, descending=True, stable=True).indices[:, :top_k]
    gates = torch.softmax(logits.gather(-1, order), dim=-1)
    out = torch.zeros(x.shape[0], w.shape[1], dtype=torch.float32, device=x.device)
    for expert in order.unique().tolist():
        rows, slot = (order == expert).nonzero(as_tuple=True)
        out[rows] += gates[rows, slot, None] * (x[rows] @ w[expert].float().T)
    return out
