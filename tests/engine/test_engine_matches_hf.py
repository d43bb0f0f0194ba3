"""Greedy tokens from the engine equal transformers' generate, token for token (float32, CPU)."""

from __future__ import annotations

import pytest

from engine.config import SamplingParams
from engine.triton_attention import TritonAttention
from tests.engine.conftest import hf_greedy, make_engine, random_prompts

GREEDY = SamplingParams(temperature=0, max_tokens=12, ignore_eos=False)
LENGTHS = [1, 3, 7, 16, 17, 31, 48, 70]


@pytest.fixture(scope="module")
def tiny_reference(tiny_hf):
    prompts = random_prompts(8, tiny_hf.config.vocab_size, LENGTHS, seed=1)
    return prompts, [hf_greedy(tiny_hf, p, GREEDY.max_tokens) for p in prompts]


@pytest.mark.parametrize(
    "config",
    [
        pytest.param({}, id="defaults"),
        pytest.param({"block_size": 1}, id="block-1"),
        pytest.param({"block_size": 5}, id="block-5"),
        pytest.param({"block_size": 32}, id="block-32"),
        pytest.param({"max_num_batched_tokens": 20}, id="chunked-prefill"),
        pytest.param({"block_size": 4, "num_kv_blocks": 40}, id="small-pool-preempts"),
        pytest.param({"enable_prefix_caching": False}, id="no-prefix-cache"),
    ],
)
def test_tiny_greedy_equals_hf(tiny_hf, tiny_reference, config):
    prompts, expected = tiny_reference
    engine = make_engine(tiny_hf, **config)
    outputs = engine.generate(prompts, GREEDY)
    assert [out.output_token_ids for out in outputs] == expected
    if config.get("num_kv_blocks"):
        assert engine.scheduler.num_preemptions > 0


def test_tiny_triton_kernels_equal_hf(tiny_hf, tiny_reference):
    prompts, expected = tiny_reference
    engine = make_engine(tiny_hf, attention=TritonAttention(block_m=16, block_n=16), block_size=8)
    outputs = engine.generate(
        prompts[:4], SamplingParams(temperature=0, max_tokens=4, ignore_eos=False)
    )
    assert [out.output_token_ids for out in outputs] == [e[:4] for e in expected[:4]]


def test_tiny_shared_prefixes_hit_cache_and_equal_hf(tiny_hf):
    prefix = random_prompts(1, tiny_hf.config.vocab_size, [40], seed=5)[0]
    tails = random_prompts(8, tiny_hf.config.vocab_size, [1, 2, 5, 9, 13, 20, 24, 33], seed=6)
    prompts = [prefix + tail for tail in tails] + [prefix]
    engine = make_engine(tiny_hf, block_size=8)
    first = engine.generate(prompts[:1], GREEDY)
    rest = engine.generate(prompts[1:], GREEDY)
    outputs = first + rest
    assert [out.output_token_ids for out in outputs] == [hf_greedy(tiny_hf, p, 12) for p in prompts]
    assert [out.num_cached_tokens for out in rest] == [40] * 7 + [32]


@pytest.mark.slow
def test_smollm2_greedy_equals_hf_together(smol_hf):
    prompts = random_prompts(8, 49152, [1, 2, 5, 11, 23, 38, 57, 90], seed=3)
    expected = [hf_greedy(smol_hf, p, 10) for p in prompts]
    engine = make_engine(smol_hf, "smollm2-135m")
    got = engine.generate(prompts, SamplingParams(temperature=0, max_tokens=10, ignore_eos=False))
    assert [out.output_token_ids for out in got] == expected

    small = make_engine(smol_hf, "smollm2-135m", block_size=8, num_kv_blocks=24)
    got = small.generate(prompts, SamplingParams(temperature=0, max_tokens=10, ignore_eos=False))
    assert [out.output_token_ids for out in got] == expected
    assert small.scheduler.num_preemptions > 0


@pytest.mark.slow
def test_smollm2_speculative_greedy_equals_hf(smol_hf):
    prompts = random_prompts(2, 49152, [4, 33], seed=4)
    spec = make_engine(smol_hf, "smollm2-135m", num_speculative_tokens=3, draft_layers=20)
    got = spec.generate(prompts, SamplingParams(temperature=0, max_tokens=8))
    assert [out.output_token_ids for out in got] == [hf_greedy(smol_hf, p, 8) for p in prompts]
    assert 0 < spec.spec_accepted < spec.spec_proposed


@pytest.mark.slow
def test_smollm2_shared_prefix_equals_hf(smol_hf):
    from engine.weights import load_tokenizer

    tokenizer = load_tokenizer()
    system = tokenizer("You are a concise assistant. Answer in one short sentence. ").input_ids * 3
    questions = ["What is 2+2?", "Name a colour.", "Where is Paris?", "Say hello.", "What is an H100?",
                 "Define latency.", "Why batch requests?", "What is a KV cache?"]  # fmt: skip
    prompts = [system + tokenizer(q).input_ids for q in questions]
    engine = make_engine(smol_hf, "smollm2-135m", block_size=16)
    engine.generate(prompts[:1], SamplingParams(temperature=0, max_tokens=1))
    got = engine.generate(prompts, SamplingParams(temperature=0, max_tokens=8, ignore_eos=False))
    assert [out.output_token_ids for out in got] == [hf_greedy(smol_hf, p, 8) for p in prompts]
    assert [out.num_cached_tokens for out in got] == [len(system) // 16 * 16] * 8, len(system)


@pytest.mark.parametrize("draft_tokens", [1, 3])
def test_tiny_speculative_greedy_equals_hf(tiny_hf, tiny_reference, draft_tokens):
    prompts, expected = tiny_reference
    engine = make_engine(tiny_hf, num_speculative_tokens=draft_tokens, draft_layers=1, block_size=4)
    outputs = engine.generate(prompts, GREEDY)
    assert [out.output_token_ids for out in outputs] == expected
    assert (
        max(n for step in engine.trace for _, n in step.scheduled if n <= 1 + draft_tokens)
        == 1 + draft_tokens
    )
