"""Bad input fails only its own request; KV exhaustion preempts, never crashes; parts plug in."""

from __future__ import annotations

import pytest

from engine.config import SamplingParams
from engine.prefix_caching_allocator import PrefixCachingAllocator
from engine.schedulers import FCFSScheduler, PriorityScheduler
from engine.topk_topp_sampler import TopKTopPSampler
from tests.engine.conftest import hf_greedy, make_engine, random_prompts

GREEDY = SamplingParams(temperature=0, max_tokens=6)


@pytest.mark.parametrize(
    ("prompt", "params", "message"),
    [
        pytest.param([], GREEDY, "empty prompt", id="empty"),
        pytest.param([5] * 300, GREEDY, "max_model_len", id="too-long"),
        pytest.param(
            [5, 6], SamplingParams(temperature=-1), "temperature", id="negative-temperature"
        ),
        pytest.param([5, 6], SamplingParams(top_p=0.0), "top_p", id="top-p-zero"),
        pytest.param([5, 6], SamplingParams(top_k=-2), "top_k", id="negative-top-k"),
        pytest.param([5, 6], SamplingParams(max_tokens=0), "max_tokens", id="no-tokens"),
        pytest.param([5, 10**6], GREEDY, "token ids", id="token-out-of-vocab"),
    ],
)
def test_bad_request_errors_alone(tiny_hf, prompt, params, message):
    engine = make_engine(tiny_hf, max_model_len=256)
    good = random_prompts(2, tiny_hf.config.vocab_size, [4, 9], seed=2)
    outputs = engine.generate([good[0], prompt, good[1]], [GREEDY, params, GREEDY])
    assert outputs[1].error and message in outputs[1].error and outputs[1].output_token_ids == []
    assert [outputs[0].output_token_ids, outputs[2].output_token_ids] == [
        hf_greedy(tiny_hf, p, 6) for p in good
    ]


def test_request_bigger_than_the_whole_cache_fails_alone(tiny_hf):
    engine = make_engine(tiny_hf, block_size=4, num_kv_blocks=6)
    small = random_prompts(1, tiny_hf.config.vocab_size, [5], seed=4)[0]
    outputs = engine.generate(
        [small, [7] * 20], [GREEDY, SamplingParams(temperature=0, max_tokens=30, ignore_eos=True)]
    )
    assert outputs[0].output_token_ids == hf_greedy(tiny_hf, small, 6)
    assert "KV blocks" in outputs[1].error


def test_exhausted_cache_preempts_and_finishes_everything(tiny_hf):
    engine = make_engine(tiny_hf, block_size=4, num_kv_blocks=12)
    prompts = random_prompts(10, tiny_hf.config.vocab_size, [6, 11, 3, 17], seed=8)
    outputs = engine.generate(
        prompts, SamplingParams(temperature=0.8, max_tokens=20, ignore_eos=True, seed=1)
    )
    assert all(len(out.output_token_ids) == 20 and out.error is None for out in outputs)
    assert engine.scheduler.num_preemptions > 0
    assert engine.allocator.num_free_blocks == 12


def test_replacement_classes_plug_in(tiny_hf):
    calls = {"schedule": 0, "append": 0, "probs": 0}

    class CountingScheduler(FCFSScheduler):
        def schedule(self):
            calls["schedule"] += 1
            return super().schedule()

    class CountingAllocator(PrefixCachingAllocator):
        def append_slots(self, seq, num_new_tokens):
            calls["append"] += 1
            return super().append_slots(seq, num_new_tokens)

    class CountingSampler(TopKTopPSampler):
        def probs(self, logits, batch):
            calls["probs"] += 1
            return super().probs(logits, batch)

    engine = make_engine(
        tiny_hf,
        scheduler_cls=CountingScheduler,
        allocator_cls=CountingAllocator,
        sampler=CountingSampler(),
    )
    assert (
        isinstance(engine.scheduler, CountingScheduler)
        and engine.scheduler.allocator is engine.allocator
    )
    engine.generate([[5, 6, 7]], SamplingParams(temperature=1.0, max_tokens=3, seed=0))
    assert calls == {"schedule": 3, "append": 3, "probs": 3}


def test_priority_requests_finish_first_under_pressure(tiny_hf):
    engine = make_engine(tiny_hf, scheduler_cls=PriorityScheduler, max_num_seqs=2)
    prompts = random_prompts(5, tiny_hf.config.vocab_size, [5], seed=3)
    params = SamplingParams(temperature=0, max_tokens=8, ignore_eos=True)
    ids = [engine.add_request(p, params, priority=1).request_id for p in prompts[:4]]
    engine.step()
    urgent = engine.add_request(prompts[4], params, priority=0).request_id
    order = []
    while engine.has_unfinished():
        order += [out.request_id for out in engine.step()]
    assert order.index(urgent) < order.index(ids[2]) and sorted(order) == sorted([*ids, urgent])
    assert engine.scheduler.num_preemptions == 1


def test_static_mode_pads_to_the_longest_output_and_trims(tiny_hf):
    engine = make_engine(tiny_hf, static=True)
    prompts = random_prompts(3, tiny_hf.config.vocab_size, [4, 8, 2], seed=11)
    lengths = [2, 9, 5]
    outputs = engine.generate(
        prompts, [SamplingParams(temperature=0, max_tokens=n, ignore_eos=True) for n in lengths]
    )
    assert [len(out.output_token_ids) for out in outputs] == lengths
    assert [out.output_token_ids for out in outputs] == [
        hf_greedy(tiny_hf, p, n) for p, n in zip(prompts, lengths, strict=True)
    ]
    assert [len(step.scheduled) for step in engine.trace] == [3] * 9
