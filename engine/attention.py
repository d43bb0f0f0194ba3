"""Attention over the paged KV cache: the interface, its metadata, and the torch reference.

The Triton kernels (`TritonAttention`) live in `engine/triton_attention.py`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch


@dataclass
class AttentionMetadata:
    """Where one step's tokens come from and go to.

    The step's `T` new tokens are the concatenation of `B` sequences' new tokens: sequence `b`
    owns rows `query_start_loc[b] : query_start_loc[b + 1]`. Its context after this step is
    `seq_lens[b]` tokens, so its new tokens sit at positions
    `seq_lens[b] - query_len(b) ... seq_lens[b] - 1` and each attends causally to every
    position up to its own (the cached prefix included). Position `p` of sequence `b` lives in
    KV slot `block_tables[b, p // block_size] * block_size + p % block_size`; `slot_mapping[t]`
    is that slot for new token `t`.
    """

    slot_mapping: torch.Tensor  # [T] int64
    query_start_loc: torch.Tensor  # [B + 1] int32
    seq_lens: torch.Tensor  # [B] int32
    block_tables: torch.Tensor  # [B, max_blocks] int32, padded with 0
    max_query_len: int
    max_seq_len: int
    block_size: int
    query_lens_cpu: list[int]
    seq_lens_cpu: list[int]

    @property
    def decode_only(self) -> bool:
        return self.max_query_len == 1


class AttentionBackend(ABC):
    """Causal grouped-query attention for one layer, reading keys and values from the paged cache.

    `forward(q, k, v, k_cache, v_cache, meta, scale)` gets the step's new tokens:
    `q` `[T, num_heads, head_dim]`, `k` and `v` `[T, num_kv_heads, head_dim]`, and the layer's
    cache `k_cache`, `v_cache` `[num_blocks, block_size, num_kv_heads, head_dim]`. It must

    1. write `k[t]`, `v[t]` into slot `meta.slot_mapping[t]` of the cache (`store_kv` does this),
    2. return `[T, num_heads, head_dim]`: for new token `t` of sequence `b` at position `p`,
       `softmax(scale * q[t, h] . K[j]) @ V[j]` over the positions `j <= p` of sequence `b`,
       with `K`, `V` read through `meta.block_tables[b]` from kv head `h // (num_heads //
       num_kv_heads)`.

    One call may mix sequences in prefill (many new tokens, possibly after a cached prefix) and
    in decode (one new token); `meta.decode_only` says when every sequence has one. Compute the
    softmax in float32. Output rows must not depend on the other sequences in the batch.

    Example (one sequence of 3 tokens, block_size 2, blocks [5, 2])::

        meta = AttentionMetadata(slot_mapping=tensor([10, 11, 4]), query_start_loc=tensor([0, 3]),
                                 seq_lens=tensor([3]), block_tables=tensor([[5, 2]]),
                                 max_query_len=3, max_seq_len=3, block_size=2,
                                 query_lens_cpu=[3], seq_lens_cpu=[3])
        out = TorchAttention().forward(q, k, v, k_cache, v_cache, meta, scale=head_dim**-0.5)

    Plug in a candidate's class with `LLMEngine(..., attention=MyBackend())`.
    """

    @abstractmethod
    def forward(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        meta: AttentionMetadata,
        scale: float,
    ) -> torch.Tensor:
        """Store this step's keys and values, then attend; see the class docstring."""

    @staticmethod
    def store_kv(
        k: torch.Tensor, v: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, slots
    ) -> None:
        """Write new keys and values into their slots (works inside a CUDA graph)."""
        k_cache.view(-1, *k_cache.shape[2:]).index_copy_(0, slots, k)
        v_cache.view(-1, *v_cache.shape[2:]).index_copy_(0, slots, v)


class TorchAttention(AttentionBackend):
    """The readable reference: gather each sequence's context padded to the longest, mask, softmax.

    Decoding sequences (one new token) and prefilling ones are attended separately, so a
    prompt chunk in the step does not pad every decode row to its length. Within a group,
    queries are padded per sequence to `[S, max_query_len]` and keys and values gathered
    through the block tables to `[S, max_seq_len]`; one masked softmax serves every row.
    """

    def forward(self, q, k, v, k_cache, v_cache, meta, scale):
        self.store_kv(k, v, k_cache, v_cache, meta.slot_mapping)
        starts = meta.query_start_loc.long()
        query_lens = starts[1:] - starts[:-1]
        token_seq = torch.repeat_interleave(
            torch.arange(len(query_lens), device=q.device), query_lens
        )
        token_row = torch.arange(q.shape[0], device=q.device) - starts[token_seq]
        decoding = query_lens[token_seq] == 1
        out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
        for rows in (decoding, ~decoding):
            if bool(rows.any()):
                out[rows] = self._attend(
                    q[rows], token_seq[rows], token_row[rows], k_cache, v_cache, meta, scale
                )
        return out

    @staticmethod
    def _attend(q, token_seq, token_row, k_cache, v_cache, meta, scale):
        seqs, local = torch.unique(token_seq, return_inverse=True)
        group = q.shape[1] // k_cache.shape[2]
        seq_lens = meta.seq_lens.long()[seqs]
        query_lens = torch.bincount(local, minlength=len(seqs))
        max_query_len, max_seq_len = int(query_lens.max()), int(seq_lens.max())
        queries = q.new_zeros(len(seqs), max_query_len, *q.shape[1:])
        queries[local, token_row] = q
        key_pos = torch.arange(max_seq_len, device=q.device)
        tables = meta.block_tables.long()[seqs]
        blocks = tables[:, (key_pos // meta.block_size).clamp(max=tables.shape[1] - 1)]
        slots = blocks * meta.block_size + key_pos % meta.block_size
        keys = k_cache.flatten(0, 1)[slots].repeat_interleave(group, dim=2).float()
        values = v_cache.flatten(0, 1)[slots].repeat_interleave(group, dim=2).float()
        scores = torch.einsum("bqhd,bkhd->bhqk", queries.float(), keys) * scale
        query_pos = (seq_lens - query_lens)[:, None] + torch.arange(max_query_len, device=q.device)
        visible = (key_pos[None, None, :] <= query_pos[:, :, None]) & (
            key_pos[None, None, :] < seq_lens[:, None, None]
        )
        scores.masked_fill_(~visible[:, None], float("-inf"))
        out = torch.einsum("bhqk,bkhd->bqhd", scores.softmax(dim=-1), values)
        return out[local, token_row].to(q.dtype)


def attention_backend(name: str) -> AttentionBackend:
    """The engine's backend named by `EngineConfig.attention`: `torch` or `triton`."""
    if name == "triton":
        from engine.triton_attention import TritonAttention

        return TritonAttention()
    return TorchAttention()
