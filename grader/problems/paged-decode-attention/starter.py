import torch
import triton  # noqa: F401  (for the candidate)
import triton.language as tl  # noqa: F401


def paged_decode_attention(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    block_tables: torch.Tensor,
    seq_lens: torch.Tensor,
) -> torch.Tensor:
    """One decode step of attention over a paged KV cache; returns a tensor like q.

    q: [batch, num_heads, head_dim]; k_cache, v_cache: [num_blocks, block_size, num_kv_heads,
    head_dim]; block_tables: int32 [batch, max_blocks]; seq_lens: int32 [batch].
    """
    raise NotImplementedError
