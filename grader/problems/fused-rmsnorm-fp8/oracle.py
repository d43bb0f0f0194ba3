"""Trusted half of fused-rmsnorm-fp8: the float32 norm and the stated scales (never sent to the
sandbox; the inputs are drawn by inputs.py in both halves).

The fp8 values are judged dequantised: ``q * scale`` of the candidate against the float32 ``y``,
both divided by the stated scale (so in E4M3 units, where the format's precision is stated
once for every token: half a step is 2^-4 of the value in the normal range and 2^-10 in the
subnormal one).
"""

import torch

FP8_MAX = 448.0
# vLLM's floor: an all-zero token still gets a finite, positive scale.
MIN_SCALE = 1.0 / (FP8_MAX * 512.0)


def expected(case, inputs):
    """The residual (x + residual in float32), the stated scales and y in E4M3 units."""
    x, residual, weight = inputs["x"], inputs["residual"], inputs["weight"]
    h = x.float() + residual.float()
    rounded = h.to(x.dtype).float()
    y = rounded * torch.rsqrt(rounded.square().mean(-1, keepdim=True) + inputs["eps"])
    y = y * weight.float()
    scales = (y.abs().amax(-1, keepdim=True) / FP8_MAX).clamp(min=MIN_SCALE)
    return {"residual": h, "scales": scales, "values": y / scales}


def observed(case, got, want):
    """The candidate's values dequantised by its own scales, in the stated scale's units."""
    values = got["values"].float() * got["scales"].float() / want["scales"]
    return {"residual": got["residual"].float(), "scales": got["scales"].float(), "values": values}
