"""Trusted half of paged-decode-attention: the engine's torch reference on float32 copies (never sent to the sandbox;
the inputs are drawn by inputs.py in both halves)."""

import torch


def expected(case, inputs):
    """The engine's readable reference (engine.attention.TorchAttention) on float32 copies."""
    from engine.attention import AttentionMetadata, TorchAttention

    q, lengths = inputs["q"].float(), inputs["lengths"]
    batch, kv_heads, dim = q.shape[0], inputs["k_cache"].shape[2], q.shape[2]
    device = q.device
    meta = AttentionMetadata(
        slot_mapping=torch.zeros(0, dtype=torch.int64, device=device),
        query_start_loc=torch.arange(batch + 1, dtype=torch.int32, device=device),
        seq_lens=inputs["seq_lens"],
        block_tables=inputs["block_tables"],
        max_query_len=1,
        max_seq_len=max(lengths),
        block_size=case["block_size"],
        query_lens_cpu=[1] * batch,
        seq_lens_cpu=lengths,
    )
    empty = torch.zeros(0, kv_heads, dim, device=device)
    k_cache, v_cache = inputs["k_cache"].float(), inputs["v_cache"].float()
    return TorchAttention().forward(q, empty, empty, k_cache, v_cache, meta, dim**-0.5)
