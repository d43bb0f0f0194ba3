import torch
import triton  # noqa: F401  (for the candidate)
import triton.language as tl  # noqa: F401


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor, max_seqlen: int
) -> torch.Tensor:
    """Causal attention over a ragged batch; returns a tensor shaped and typed like q.

    q: [total_tokens, num_heads, head_dim]; k, v: [total_tokens, num_kv_heads, head_dim];
    sequence b owns rows cu_seqlens[b]:cu_seqlens[b + 1] (int32, on q's device).
    """
    raise NotImplementedError
