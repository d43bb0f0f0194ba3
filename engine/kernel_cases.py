"""Random paged-attention inputs: ragged batches over scattered blocks, for kernel checks."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.attention import AttentionMetadata


@dataclass
class AttentionCase:
    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    k_cache: torch.Tensor
    v_cache: torch.Tensor
    meta: AttentionMetadata
    scale: float

    def args(self) -> tuple[torch.Tensor, ...]:
        """Fresh copies of the inputs (backends write into the cache)."""
        return self.q, self.k, self.v, self.k_cache.clone(), self.v_cache.clone()


def random_case(
    query_lens: list[int],
    context_lens: list[int],
    block_size: int = 16,
    num_heads: int = 8,
    num_kv_heads: int = 2,
    head_dim: int = 64,
    dtype: torch.dtype = torch.float32,
    device: str = "cpu",
    seed: int = 0,
) -> AttentionCase:
    """Sequence b has `context_lens[b]` cached tokens and `query_lens[b]` new ones; blocks are
    a random permutation, so tables are scattered and last blocks partly filled."""
    gen = torch.Generator().manual_seed(seed)
    seq_lens = [c + q for c, q in zip(context_lens, query_lens, strict=True)]
    needed = [-(-n // block_size) for n in seq_lens]
    num_blocks = sum(needed) + 3
    order = torch.randperm(num_blocks, generator=gen).tolist()
    tables, slots, used = [], [], 0
    for context, seq_len, count in zip(context_lens, seq_lens, needed, strict=True):
        table = order[used : used + count]
        used += count
        tables.append(table + [0] * (max(needed) - count))
        slots.extend(
            table[p // block_size] * block_size + p % block_size for p in range(context, seq_len)
        )
    total = sum(query_lens)

    def randn(*shape):
        return torch.randn(*shape, generator=gen).to(device=device, dtype=dtype)

    starts = [0]
    for n in query_lens:
        starts.append(starts[-1] + n)
    meta = AttentionMetadata(
        slot_mapping=torch.tensor(slots, dtype=torch.int64, device=device),
        query_start_loc=torch.tensor(starts, dtype=torch.int32, device=device),
        seq_lens=torch.tensor(seq_lens, dtype=torch.int32, device=device),
        block_tables=torch.tensor(tables, dtype=torch.int32, device=device),
        max_query_len=max(query_lens),
        max_seq_len=max(seq_lens),
        block_size=block_size,
        query_lens_cpu=list(query_lens),
        seq_lens_cpu=seq_lens,
    )
    cache_shape = (num_blocks, block_size, num_kv_heads, head_dim)
    return AttentionCase(
        q=randn(total, num_heads, head_dim),
        k=randn(total, num_kv_heads, head_dim),
        v=randn(total, num_kv_heads, head_dim),
        k_cache=randn(*cache_shape),
        v_cache=randn(*cache_shape),
        meta=meta,
        scale=head_dim**-0.5,
    )
