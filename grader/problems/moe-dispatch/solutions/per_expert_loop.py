import torch


def moe_dispatch(x, router_logits, w, top_k: int):
    """The naive per-expert loop in torch (what a first MoE port runs): top-k and softmax,
    then for every expert that got tokens, gather them, one matmul, scatter-add back."""
    values, ids = torch.topk(router_logits, top_k, dim=-1)
    gates = torch.softmax(values, dim=-1)
    out = torch.zeros(x.shape[0], w.shape[1], dtype=torch.float32, device=x.device)
    for expert in range(w.shape[0]):
        rows, slot = (ids == expert).nonzero(as_tuple=True)
        if rows.numel() == 0:
            continue
        y = (x[rows] @ w[expert].T).float() * gates[rows, slot, None]
        out.index_add_(0, rows, y)
    return out.to(x.dtype)
