import torch


def paged_decode_attention(q, k_cache, v_cache, block_tables, seq_lens):
    """Wrong: assumes a sequence's blocks follow its first block, ignoring the rest of the table."""
    page, kv_heads = k_cache.shape[1], k_cache.shape[2]
    group = q.shape[1] // kv_heads
    out = torch.empty_like(q)
    for b, length in enumerate(seq_lens.tolist()):
        first = int(block_tables[b, 0])
        blocks = -(-length // page)
        keys = k_cache[first : first + blocks].flatten(0, 1)[:length]
        values = v_cache[first : first + blocks].flatten(0, 1)[:length]
        keys = keys.repeat_interleave(group, 1).float()
        values = values.repeat_interleave(group, 1).float()
        scores = torch.einsum("hd,khd->hk", q[b].float(), keys) * q.shape[2] ** -0.5
        out[b] = torch.einsum("hk,khd->hd", scores.softmax(-1), values).to(q.dtype)
    return out
