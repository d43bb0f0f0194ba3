import torch
import triton  # noqa: F401  (for the candidate)
import triton.language as tl  # noqa: F401


class W8A16Linear:
    """y = x @ W.T with W stored as int8, one scale per output channel."""

    def __init__(self, weight: torch.Tensor) -> None:
        """Quantise weight ([n, k], bf16 or fp16): scale = absmax / 127, q = round(w / scale)."""
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x: [m, k] in the weight's dtype; returns [m, n] in that dtype, dequantising on the fly."""
        raise NotImplementedError
