import torch
import torch.nn.functional as F


def attention(q, k, v, cu_seqlens, max_seqlen):
    """Wrong: maps query head h to kv head h % num_kv_heads instead of h // group."""
    group = q.shape[1] // k.shape[1]
    out = torch.empty_like(q)
    bounds = cu_seqlens.tolist()
    for start, end in zip(bounds[:-1], bounds[1:], strict=True):
        rows = slice(start, end)
        out[rows] = (
            F.scaled_dot_product_attention(
                q[rows].transpose(0, 1).float(),
                k[rows].repeat(1, group, 1).transpose(0, 1).float(),
                v[rows].repeat(1, group, 1).transpose(0, 1).float(),
                is_causal=True,
            )
            .transpose(0, 1)
            .to(q.dtype)
        )
    return out
