"""Async scheduling (step N+1 launched before step N's tokens are read) changes nothing a
request sees: the same tokens as transformers and as the synchronous engine, the same stops."""

from __future__ import annotations

import dataclasses

import pytest

from engine.config import EngineConfig, ModelConfig, SamplingParams
from engine.llm_engine import LLMEngine
from engine.schedulers import PriorityScheduler
from engine.triton_attention import TritonAttention
from tests.engine.conftest import hf_greedy, make_engine, random_prompts

GREEDY = SamplingParams(temperature=0, max_tokens=10, ignore_eos=True)
LENGTHS = [1, 4, 9, 16, 17, 33, 50]


@pytest.mark.parametrize(
    "config",
    [
        pytest.param({}, id="defaults"),
        pytest.param({"block_size": 4, "num_kv_blocks": 40}, id="small-pool-preempts"),
        pytest.param({"max_num_batched_tokens": 12}, id="chunked-prefill"),
    ],
)
def test_async_greedy_equals_hf(tiny_hf, config):
    prompts = random_prompts(7, tiny_hf.config.vocab_size, LENGTHS, seed=11)
    engine = make_engine(tiny_hf, async_scheduling=True, **config)
    outputs = engine.generate(prompts, GREEDY)
    assert [out.output_token_ids for out in outputs] == [
        hf_greedy(tiny_hf, p, GREEDY.max_tokens) for p in prompts
    ]
    assert all(len(out.token_times) == GREEDY.max_tokens for out in outputs)
    if config.get("num_kv_blocks"):
        assert engine.scheduler.num_preemptions > 0
    assert not engine.scheduler.running and engine.allocator.num_free_blocks == (
        engine.allocator.num_blocks
    )


def _engines(tiny_hf, eos: int, **config):
    model = dataclasses.replace(ModelConfig.from_hf("tiny", tiny_hf.config), eos_token_id=eos)
    return [
        LLMEngine(
            model, EngineConfig(async_scheduling=mode, **config), state_dict=tiny_hf.state_dict()
        )
        for mode in (False, True)
    ]


def test_async_stops_at_eos_like_sync(tiny_hf):
    """A token that greedy decoding emits mid-output is made the EOS: both engines stop there
    and drop the extra token async scheduling computed."""
    prompts = random_prompts(4, tiny_hf.config.vocab_size, [5, 12, 20, 31], seed=12)
    eos = hf_greedy(tiny_hf, prompts[0], 6)[3]
    params = SamplingParams(temperature=0, max_tokens=12)
    sync, eager = (
        engine.generate(prompts, params) for engine in _engines(tiny_hf, eos, block_size=4)
    )
    assert [o.output_token_ids for o in eager] == [o.output_token_ids for o in sync]
    assert [o.finish_reason for o in eager] == [o.finish_reason for o in sync]
    assert eager[0].finish_reason == "stop" and eager[0].output_token_ids[-1] == eos


def test_async_seeded_sampling_and_priority_preemption_match_sync(tiny_hf):
    """Seeded sampling with a priority scheduler preempting in a small pool: same tokens."""
    prompts = random_prompts(6, tiny_hf.config.vocab_size, [8, 20, 30], seed=13)
    runs = []
    for mode in (False, True):
        engine = make_engine(
            tiny_hf, scheduler_cls=PriorityScheduler, async_scheduling=mode, block_size=4,
            num_kv_blocks=30,
        )  # fmt: skip
        for index, prompt in enumerate(prompts):
            params = SamplingParams(temperature=0.9, top_k=20, seed=index, max_tokens=8)
            engine.add_request(prompt, params, request_id=str(index), priority=index % 3)
        done = {}
        while engine.has_unfinished():
            for out in engine.step():
                done[out.request_id] = out.output_token_ids
        runs.append((done, engine.scheduler.num_preemptions))
    (sync, sync_preemptions), (eager, _) = runs
    assert eager == sync
    assert sync_preemptions > 0


class EagerGraph:
    """Stands in for a captured CUDA graph on the CPU: replay runs the captured body."""

    def __init__(self, runner, size: int):
        self.runner, self.size = runner, size

    def replay(self) -> None:
        self.runner._graph_body(self.size, self.runner._static_meta(self.size))


@pytest.mark.parametrize("async_scheduling", [False, True])
def test_decode_graph_inputs_give_hf_tokens(tiny_hf, async_scheduling):
    """The decode-graph path on the CPU (Triton kernels under the interpreter): one packed
    input buffer, block tables kept by slot between steps, padded rows, placeholder tokens
    taken inside the graph, blocks appended mid-run and a pool small enough to preempt."""
    prompts = random_prompts(6, tiny_hf.config.vocab_size, [3, 7, 15, 16, 21, 30], seed=13)
    engine = make_engine(
        tiny_hf, attention=TritonAttention(), async_scheduling=async_scheduling, block_size=4,
        num_kv_blocks=26, max_num_seqs=6,
    )  # fmt: skip
    runner = engine.runner
    runner._allocate_graph_inputs(engine.config.max_num_seqs)
    runner.graphs = {size: EagerGraph(runner, size) for size in (1, 2, 4, 6)}
    replays = []
    replay = runner._replay
    runner._replay = lambda size, seqs, placeholders: (
        replays.append(size) or replay(size, seqs, placeholders)
    )
    params = SamplingParams(temperature=0, max_tokens=9, ignore_eos=True)
    outputs = engine.generate(prompts, params)
    assert [out.output_token_ids for out in outputs] == [
        hf_greedy(tiny_hf, p, params.max_tokens) for p in prompts
    ]
    assert engine.scheduler.num_preemptions > 0
    assert {4, 6} <= set(replays)  # padded batches ran through the graph path
