"""The fused Triton ops (under TRITON_INTERPRET=1 on CPU) against the torch modules they
replace, and a fused-ops engine against transformers."""

from __future__ import annotations

import pytest
import torch

from engine.config import SamplingParams
from engine.model import RMSNorm, RotaryEmbedding
from engine.triton_attention import TritonAttention
from engine.triton_ops import add_rmsnorm, rope_, silu_mul
from tests.engine.conftest import hf_greedy, make_engine, random_prompts

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.mark.parametrize("with_residual", [False, True])
@pytest.mark.parametrize("hidden", [64, 96])
def test_add_rmsnorm_equals_torch_norm(with_residual, hidden):
    gen = torch.Generator().manual_seed(hidden)
    norm = RMSNorm(hidden, 1e-5)
    norm.weight.data = torch.randn(hidden, generator=gen)
    x = torch.randn(5, hidden, generator=gen)
    residual = torch.randn(5, hidden, generator=gen) if with_residual else None
    expected_out, expected_residual = norm(x, residual)
    x_before = x.clone()
    got_out, got_residual = add_rmsnorm(x, residual, norm.weight, norm.eps)
    torch.testing.assert_close(got_out, expected_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got_residual, expected_residual)
    torch.testing.assert_close(x, x_before)  # inputs untouched: graphs can replay it


@pytest.mark.parametrize(("heads", "kv_heads", "head_dim"), [(4, 2, 16), (9, 3, 64)])
def test_rope_in_place_equals_torch_rotary(heads, kv_heads, head_dim):
    gen = torch.Generator().manual_seed(heads)
    rope = RotaryEmbedding(head_dim, 10000.0, 256)
    positions = torch.tensor([0, 3, 17, 255, 100])
    # q and k as the model has them: strided views into one fused projection's output.
    qkv = torch.randn(5, (heads + 2 * kv_heads) * head_dim, generator=gen)
    q, k, _ = qkv.split([heads * head_dim, kv_heads * head_dim, kv_heads * head_dim], dim=-1)
    q, k = q.view(5, heads, head_dim), k.view(5, kv_heads, head_dim)
    expected_q, expected_k = rope(q, positions), rope(k, positions)
    rope_(q, k, rope.cos, rope.sin, positions)
    torch.testing.assert_close(q, expected_q, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(k, expected_k, atol=1e-5, rtol=1e-5)


def test_silu_mul_equals_torch_swiglu():
    gen = torch.Generator().manual_seed(0)
    gate_up = torch.randn(3, 2 * 1500, generator=gen)  # more columns than one program's block
    gate, up = gate_up.chunk(2, dim=-1)
    torch.testing.assert_close(
        silu_mul(gate_up), torch.nn.functional.silu(gate) * up, atol=1e-6, rtol=1e-5
    )


def test_fused_ops_engine_greedy_equals_hf(tiny_hf):
    prompts = random_prompts(3, tiny_hf.config.vocab_size, [5, 19, 40], seed=3)
    engine = make_engine(
        tiny_hf, attention=TritonAttention(block_m=16, block_n=16, decode_split=16),
        block_size=8, fused_ops=True,
    )  # fmt: skip
    outputs = engine.generate(prompts, SamplingParams(temperature=0, max_tokens=4))
    assert [out.output_token_ids for out in outputs] == [hf_greedy(tiny_hf, p, 4) for p in prompts]
