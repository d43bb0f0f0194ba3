"""The one driver loop: requests fed as they arrive, every request's own sequence, a hook per step."""

from __future__ import annotations

import functools

from engine.config import SamplingParams
from engine.driver import Run, drive
from engine.workloads import Request
from tests.engine.conftest import hf_greedy, make_engine, random_prompts

GREEDY = SamplingParams(temperature=0, max_tokens=5, ignore_eos=True)


def test_add_request_returns_the_requests_own_sequence_even_when_refused(tiny_hf):
    engine = make_engine(tiny_hf)
    waiting = engine.add_request([5, 6, 7], GREEDY, request_id="waiting")
    refused = engine.add_request([5, 10**6], GREEDY, request_id="refused")
    assert waiting.request_id == "waiting" and waiting.error is None
    assert refused.request_id == "refused" and "token ids" in refused.error
    assert refused.is_finished and list(engine.scheduler.waiting) == [waiting]


def test_a_refused_request_keeps_every_other_request_on_its_own_sequence(tiny_hf):
    prompts = random_prompts(3, tiny_hf.config.vocab_size, [4, 9], seed=5)
    requests = [
        Request(prompts[0], GREEDY, 0, 0, "a"),
        Request([1, 10**6], GREEDY, 1, 0, "refused"),
        Request(prompts[1], GREEDY, 1, 0, "b"),
        Request(prompts[2], GREEDY, 3, 0, "c"),
    ]
    run = drive(make_engine(tiny_hf), requests, step_clock=True)
    assert list(run.sequences) == ["a", "refused", "b", "c"]
    for request in requests:
        seq = run.sequences[request.request_id]
        assert seq.request_id == request.request_id
        assert seq.prompt_token_ids == request.prompt_token_ids
    assert "token ids" in run.sequences["refused"].error
    tokens = {out.request_id: out.output_token_ids for out in run.outputs}
    assert tokens == {
        "a": hf_greedy(tiny_hf, prompts[0], 5),
        "refused": [],
        "b": hf_greedy(tiny_hf, prompts[1], 5),
        "c": hf_greedy(tiny_hf, prompts[2], 5),
    }


def test_the_step_clock_adds_each_request_before_its_step_and_the_hook_sees_every_step(tiny_hf):
    engine = make_engine(tiny_hf)
    prompts = random_prompts(2, tiny_hf.config.vocab_size, [4], seed=6)
    requests = [
        Request(prompts[0], GREEDY, 0, 0, "early"),
        Request(prompts[1], GREEDY, 4, 0, "late"),
    ]
    seen: list[tuple[int, list[str]]] = []

    def hook(run: Run) -> None:
        seen.append((run.steps, sorted(run.sequences)))

    run = drive(engine, requests, step_clock=True, on_step=hook)
    assert [steps for steps, _ in seen] == list(range(1, run.steps + 1))
    assert [names for _, names in seen[:4]] == [["early"]] * 4
    assert seen[4][1] == ["early", "late"]
    first_step = {rid: min(r.step for r in engine.trace for i, _ in r.scheduled if i == rid)
                  for rid in ("early", "late")}  # fmt: skip
    assert first_step == {"early": 0, "late": 4}


def test_max_steps_stops_the_loop_and_concurrency_caps_requests_in_flight(tiny_hf):
    prompts = random_prompts(4, tiny_hf.config.vocab_size, [4], seed=7)
    requests = [Request(p, GREEDY, request_id=str(i)) for i, p in enumerate(prompts)]
    stopped = drive(make_engine(tiny_hf), requests, step_clock=True, max_steps=3)
    assert stopped.steps == 3 and stopped.outputs == []
    in_flight = []
    capped = drive(
        make_engine(tiny_hf),
        requests,
        concurrency=2,
        on_step=lambda run: in_flight.append(len(run.sequences) - len(run.outputs)),
    )
    assert sorted(out.request_id for out in capped.outputs) == ["0", "1", "2", "3"]
    assert max(in_flight) == 2 and capped.wall_s > 0


def test_an_slo_scheduler_is_told_the_step_it_plans(tiny_hf):
    """`SLOScheduler.now` is the driver's step: a request arriving at step 2 is first seen by
    the scheduler planning step 2, and its TTFT deadline counts from there."""
    from engine.schedulers import FCFSScheduler
    from engine.slo import SLO, SLOScheduler

    seen: list[tuple[int, list[int]]] = []

    class Watching(SLOScheduler, FCFSScheduler):
        def schedule(self):
            seen.append((self.now, [self.ttft_deadline(s) for s in self.waiting]))
            return super().schedule()

    slos = {0: SLO(ttft_steps=3, tpot_steps=1.0)}
    engine = make_engine(tiny_hf, scheduler_cls=functools.partial(Watching, slos=slos))
    prompt = random_prompts(1, tiny_hf.config.vocab_size, [4], seed=7)[0]
    run = drive(engine, [Request(prompt, GREEDY, 2, 0, "late")], step_clock=True)
    assert [now for now, _ in seen] == list(range(run.steps))
    assert seen[2] == (2, [4])  # arrived at step 2, first token due by step 2 + 3 - 1
    assert seen[1] == (1, [])
