"""Attention backends: the torch reference against dense causal attention, and the Triton
kernels (under TRITON_INTERPRET=1 on CPU) against the torch reference."""

from __future__ import annotations

import pytest
import torch

from engine.attention import TorchAttention
from engine.kernel_cases import random_case
from engine.triton_attention import TritonAttention

CASES = [
    pytest.param([5, 1, 20], [0, 9, 3], 4, id="mixed-prefill-decode-block4"),
    pytest.param([17, 33], [16, 0], 16, id="prefill-after-prefix-block16"),
    pytest.param([1, 1, 1, 1], [0, 15, 16, 40], 16, id="decode-ragged-block16"),
    pytest.param([1, 1, 1], [6, 12, 2], 3, id="decode-partial-last-block3"),
]


def dense_reference(case) -> torch.Tensor:
    """Each sequence's full K/V rebuilt contiguously, then plain causal softmax attention."""
    k_cache, v_cache = case.k_cache.clone(), case.v_cache.clone()
    TorchAttention.store_kv(case.k, case.v, k_cache, v_cache, case.meta.slot_mapping)
    out, start = [], 0
    group = case.q.shape[1] // case.k.shape[1]
    for b, (q_len, seq_len) in enumerate(
        zip(case.meta.query_lens_cpu, case.meta.seq_lens_cpu, strict=True)
    ):
        slots = [
            int(case.meta.block_tables[b, p // case.meta.block_size]) * case.meta.block_size
            + p % case.meta.block_size
            for p in range(seq_len)
        ]
        keys = k_cache.flatten(0, 1)[slots].repeat_interleave(group, dim=1)
        values = v_cache.flatten(0, 1)[slots].repeat_interleave(group, dim=1)
        for i in range(q_len):
            pos = seq_len - q_len + i
            scores = torch.einsum("hd,khd->hk", case.q[start + i], keys[: pos + 1]) * case.scale
            out.append(torch.einsum("hk,khd->hd", scores.softmax(-1), values[: pos + 1]))
        start += q_len
    return torch.stack(out)


@pytest.mark.parametrize(("query_lens", "context_lens", "block_size"), CASES)
def test_torch_reference_equals_dense_attention(query_lens, context_lens, block_size):
    case = random_case(
        query_lens, context_lens, block_size, num_heads=6, num_kv_heads=2, head_dim=16, seed=1
    )
    got = TorchAttention().forward(*case.args(), case.meta, case.scale)
    torch.testing.assert_close(got, dense_reference(case), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("query_lens", "context_lens", "block_size"), CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_triton_kernels_equal_torch_reference(query_lens, context_lens, block_size, seed):
    case = random_case(
        query_lens, context_lens, block_size, num_heads=4, num_kv_heads=1, head_dim=32, seed=seed
    )
    ref_cache = case.args()
    expected = TorchAttention().forward(*ref_cache, case.meta, case.scale)
    got_cache = case.args()
    got = TritonAttention(block_m=16, block_n=16).forward(*got_cache, case.meta, case.scale)
    torch.testing.assert_close(got, expected, atol=2e-5, rtol=2e-5)
    torch.testing.assert_close(got_cache[3], ref_cache[3])


@pytest.mark.parametrize("split", [16, 32])
def test_split_decode_merges_splits_like_one_pass(split):
    """Contexts many splits long, ragged, one shorter than a split: the flash-decoding merge."""
    case = random_case(
        [1] * 4, [100, 7, 63, 250], 16, num_heads=6, num_kv_heads=2, head_dim=32, seed=4
    )
    expected = TorchAttention().forward(*case.args(), case.meta, case.scale)
    got = TritonAttention(block_n=16, decode_split=split).forward(
        *case.args(), case.meta, case.scale
    )
    torch.testing.assert_close(got, expected, atol=2e-5, rtol=2e-5)


def test_prefill_long_chunk_after_prefix_skips_mask_correctly():
    """Query blocks far from the diagonal take the unmasked path; rows near it the masked one."""
    case = random_case([70, 45], [50, 0], 16, num_heads=4, num_kv_heads=2, head_dim=32, seed=5)
    expected = TorchAttention().forward(*case.args(), case.meta, case.scale)
    got = TritonAttention(block_m=16, block_n=16).forward(*case.args(), case.meta, case.scale)
    torch.testing.assert_close(got, expected, atol=2e-5, rtol=2e-5)


def test_store_kv_writes_exactly_the_mapped_slots():
    case = random_case([3], [2], block_size=2, num_heads=2, num_kv_heads=1, head_dim=16)
    _, _, _, k_cache, v_cache = case.args()
    TorchAttention.store_kv(case.k, case.v, k_cache, v_cache, case.meta.slot_mapping)
    flat = k_cache.flatten(0, 1)
    torch.testing.assert_close(flat[case.meta.slot_mapping], case.k)
    untouched = torch.ones(flat.shape[0], dtype=torch.bool)
    untouched[case.meta.slot_mapping] = False
    torch.testing.assert_close(flat[untouched], case.k_cache.flatten(0, 1)[untouched])
