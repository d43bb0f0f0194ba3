"""Trusted half of int8-matmul: the exact per-channel int8 product in float32 (never sent to
the sandbox; the inputs are drawn by inputs.py in both halves)."""

import torch

QMAX = 127


def quantise(weight):
    """Symmetric per output channel: scale = absmax / 127, q = round-half-even(w / scale)."""
    scale = (weight.float().abs().amax(dim=1) / QMAX).clamp(min=torch.finfo(torch.float32).tiny)
    return torch.round(weight.float() / scale[:, None]).clamp(-QMAX, QMAX), scale


def expected(case, inputs):
    quantised, scale = quantise(inputs["weight"])
    return inputs["x"].float() @ (quantised * scale[:, None]).T
