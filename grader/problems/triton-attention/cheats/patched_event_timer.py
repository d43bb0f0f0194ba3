import torch
import torch.nn.functional as F

# The attack: every CUDA event the harness reads now says 1 us.
torch.cuda.Event.elapsed_time = lambda self, end: 0.001


def attention(q, k, v, cu_seqlens, max_seqlen):
    """Cheat (GPU): torch's SDPA per sequence, behind a patched event timer."""
    out = torch.empty_like(q)
    group = q.shape[1] // k.shape[1]
    bounds = cu_seqlens.tolist()
    for start, end in zip(bounds[:-1], bounds[1:], strict=True):
        rows = slice(start, end)
        out[rows] = F.scaled_dot_product_attention(
            q[rows].transpose(0, 1),
            k[rows].repeat_interleave(group, 1).transpose(0, 1),
            v[rows].repeat_interleave(group, 1).transpose(0, 1),
            is_causal=True,
        ).transpose(0, 1)
    return out
