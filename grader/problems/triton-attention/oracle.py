"""Trusted half of triton-attention: causal attention in float32 (never sent to the sandbox;
the inputs are drawn by inputs.py in both halves)."""

import torch
import torch.nn.functional as F


def expected(case, inputs):
    """Per sequence, float32 causal SDPA on the same (rounded) inputs, keys shared by groups."""
    q, k, v = (inputs[name].float() for name in ("q", "k", "v"))
    group = q.shape[1] // k.shape[1]
    out = torch.empty_like(q)
    start = 0
    for length in inputs["lengths"]:
        rows = slice(start, start + length)
        out[rows] = F.scaled_dot_product_attention(
            q[rows].transpose(0, 1),
            k[rows].repeat_interleave(group, 1).transpose(0, 1),
            v[rows].repeat_interleave(group, 1).transpose(0, 1),
            is_causal=True,
        ).transpose(0, 1)
        start += length
    return out
