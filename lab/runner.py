"""One engine-lab experiment: the reference engine on the tiny model, on the CPU, with the
settings a person chose, recorded step by step. Django-free, like ``engine/``.

Every mode in one experiment serves the same requests (same prompts, lengths, arrival times
and priorities), so their timelines and throughputs compare like for like.
"""

from __future__ import annotations

import random
from typing import Any

from engine.config import EngineConfig, SamplingParams
from engine.driver import Run, drive, one_thread
from engine.llm_engine import LLMEngine
from engine.metrics import compute_metrics
from engine.schedulers import FCFSScheduler, PriorityScheduler
from engine.sequence import Sequence
from engine.workloads import Request
from lab.experiment import MAX_OUTPUT_TOKENS, MAX_PROMPT_TOKENS, LabSettings

POLICIES = {"fcfs": FCFSScheduler, "priority": PriorityScheduler}


def workload(settings: LabSettings) -> list[Request]:
    """Seeded requests: mixed prompt and output lengths (the mix that makes padding costly),
    Poisson arrivals at the chosen rate (0: all at once), priority 0 or 1 at random."""
    rng = random.Random(settings.seed)
    clock, requests = 0.0, []
    for _ in range(settings.requests):
        if settings.arrival_rate_per_s:
            clock += rng.expovariate(settings.arrival_rate_per_s)
        prompt = [rng.randrange(1, 10_000) for _ in range(rng.randint(8, MAX_PROMPT_TOKENS))]
        params = SamplingParams(
            temperature=0.0, max_tokens=rng.randint(4, MAX_OUTPUT_TOKENS), ignore_eos=True
        )
        priority, request_id = rng.randint(0, 1), str(len(requests))
        requests.append(Request(prompt, params, clock, priority, request_id))
    return requests


def experiment_run(settings: LabSettings) -> dict[str, Any]:
    """Run every chosen mode on the same workload; returns JSON-ready results per mode."""
    requests = workload(settings)
    with one_thread():
        return {
            "requests": [
                {
                    "id": r.request_id,
                    "prompt_tokens": len(r.prompt_token_ids),
                    "output_tokens": r.params.max_tokens,
                    "arrival_s": round(r.arrival_s, 4),
                    "priority": r.priority,
                }
                for r in requests
            ],
            "modes": {mode: _mode_run(settings, mode, requests) for mode in settings.modes},
        }


def _mode_run(settings: LabSettings, mode: str, requests: list[Request]) -> dict[str, Any]:
    config = EngineConfig(
        block_size=settings.block_size,
        num_kv_blocks=settings.num_kv_blocks,
        max_num_seqs=settings.max_num_seqs,
        max_model_len=MAX_PROMPT_TOKENS + MAX_OUTPUT_TOKENS + 1,
    )
    engine = LLMEngine(
        "tiny",
        config,
        static=mode == "static",
        scheduler_cls=POLICIES[settings.policy] if mode == "continuous" else None,
    )
    steps: list[dict[str, Any]] = []

    def record(run: Run) -> None:
        if engine.trace and engine.trace[-1].step == len(steps):
            steps.append(_step_record(engine, run.sequences))

    run = drive(engine, requests, on_step=record)
    metrics = compute_metrics(
        run.outputs,
        run.wall_s,
        [step["kv_blocks_used"] for step in steps],
        engine.allocator.num_blocks,
        engine.scheduler.num_preemptions,
    )
    computed = sum(n for step in steps for _, n, _ in step["scheduled"])
    padding = sum(n for step in steps for _, n, kind in step["scheduled"] if kind == "padding")
    return {
        "metrics": metrics.as_dict(),
        "latency": [_latency(out) for out in sorted(run.outputs, key=lambda o: int(o.request_id))],
        "steps": steps,
        "num_kv_blocks": engine.allocator.num_blocks,
        "computed_tokens": computed,
        "padding_tokens": padding,
    }


def _latency(output: Any) -> dict[str, Any]:
    """One request's time to first token and to its last, from its arrival, in ms."""
    times = output.token_times or [output.arrival_time]
    return {
        "id": output.request_id,
        "priority": output.priority,
        "ttft_ms": round((times[0] - output.arrival_time) * 1e3, 3),
        "e2e_ms": round((times[-1] - output.arrival_time) * 1e3, 3),
        "preemptions": output.num_preemptions,
    }


def _step_record(engine: LLMEngine, sequences: dict[str, Sequence]) -> dict[str, Any]:
    """The last step: who ran how many tokens as what, who was preempted, who holds which block."""
    record = engine.trace[-1]
    scheduled = []
    for request_id, num_tokens in record.scheduled:
        seq = sequences.get(request_id)
        if seq is not None and seq.num_output_tokens > seq.params.max_tokens:
            kind = "padding"
        elif num_tokens > 1:
            kind = "prefill"
        else:
            kind = "decode"
        scheduled.append((request_id, num_tokens, kind))
    blocks = {
        seq.request_id: list(seq.block_table) for seq in engine.scheduler.running if seq.block_table
    }
    return {
        "step": record.step,
        "time_ms": round(record.time_s * 1e3, 3),
        "duration_ms": round(record.duration_ms, 3),
        "scheduled": scheduled,
        "preempted": list(record.preempted),
        "kv_blocks_used": record.kv_blocks_used,
        "blocks": blocks,
    }
