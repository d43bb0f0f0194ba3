import torch
import triton  # noqa: F401  (for the candidate)
import triton.language as tl  # noqa: F401


def fused_add_rmsnorm_fp8(
    x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Residual add, RMSNorm and per-token dynamic FP8 (E4M3) quantisation in one pass.

    x, residual: [tokens, hidden] (bf16 or fp16); weight: [hidden], same dtype; eps: float.
    Per token t, in float32:
        h = x[t] + residual[t]                    (residual_out[t] = h in the input dtype)
        y = h / sqrt(mean(h * h) + eps) * weight
        scale[t] = max(max|y| / 448, 1 / (448 * 512))
        q[t] = clamp(y / scale[t], -448, 448) as float8_e4m3fn (round to nearest even)
    Returns (q [tokens, hidden] float8_e4m3fn, scales [tokens, 1] float32,
    residual_out [tokens, hidden] in the input dtype); q * scales approximates y.

    Example: hidden 4, x = [[1, 2, 3, 4]], residual = 0, weight = 1, eps = 0:
    h = [1, 2, 3, 4], rms = sqrt(7.5) = 2.739, y = [0.365, 0.730, 1.095, 1.461],
    scale = 1.461 / 448 = 0.00326, q = [112, 224, 320, 448] (336 is a tie between 320 and
    352, E4M3's neighbours there: to the even one).
    """
    raise NotImplementedError
