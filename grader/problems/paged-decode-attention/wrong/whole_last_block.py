import torch


def paged_decode_attention(q, k_cache, v_cache, block_tables, seq_lens):
    """Wrong: attends to every row of the last block, past seq_len (stale or unused slots)."""
    page, kv_heads = k_cache.shape[1], k_cache.shape[2]
    group = q.shape[1] // kv_heads
    out = torch.empty_like(q)
    for b, length in enumerate(seq_lens.tolist()):
        blocks = block_tables[b, : -(-length // page)].long()
        keys = k_cache[blocks].flatten(0, 1).repeat_interleave(group, 1).float()
        values = v_cache[blocks].flatten(0, 1).repeat_interleave(group, 1).float()
        scores = torch.einsum("hd,khd->hk", q[b].float(), keys) * q.shape[2] ** -0.5
        out[b] = torch.einsum("hk,khd->hd", scores.softmax(-1), values).to(q.dtype)
    return out
