import torch

from engine.attention import AttentionMetadata
from engine.triton_attention import TritonAttention

_BACKEND = TritonAttention()


def paged_decode_attention(q, k_cache, v_cache, block_tables, seq_lens):
    """The engine's own decode kernel (engine/triton_attention.py), through its public backend.

    No new keys are stored (empty k, v and slot mapping), so the call is the decode kernel alone.
    """
    batch, _, dim = q.shape
    kv_heads = k_cache.shape[2]
    empty = torch.empty(0, kv_heads, dim, dtype=q.dtype, device=q.device)
    meta = AttentionMetadata(
        slot_mapping=torch.empty(0, dtype=torch.int64, device=q.device),
        query_start_loc=torch.arange(batch + 1, dtype=torch.int32, device=q.device),
        seq_lens=seq_lens,
        block_tables=block_tables,
        max_query_len=1,
        max_seq_len=block_tables.shape[1] * k_cache.shape[1],
        block_size=k_cache.shape[1],
        query_lens_cpu=[1] * batch,
        seq_lens_cpu=[],
    )
    return _BACKEND.forward(q, empty, empty, k_cache, v_cache, meta, dim**-0.5)
