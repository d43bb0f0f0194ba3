"""Async scheduling: the host schedules and prepares step N+1 while the GPU runs step N.

Each sampled sequence gets a placeholder token `-1 - row` at once, so the scheduler can give
it its next decode token before the real one is known; the model runner reads the real token
from the previous step's sampled tokens on the device. A request that stops computes one token
more, which is thrown away.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from engine.sequence import Sequence, Status

if TYPE_CHECKING:
    from engine.llm_engine import LLMEngine
    from engine.outputs import RequestOutput


@dataclass
class InFlightStep:
    """A launched step: its sampled tokens (on the device, and being copied to the host) and,
    per sampled sequence, where its placeholder sits in `token_ids`."""

    tokens: torch.Tensor
    host_tokens: torch.Tensor
    done: torch.cuda.Event | None
    placed: list[tuple[Sequence, int]]
    unsampled: list[Sequence]  # scheduled for a prompt chunk that samples nothing


def launch(engine: LLMEngine, scheduled: list[tuple[Sequence, int]]) -> InFlightStep:
    """Run and sample one step without waiting for the device; place the placeholders."""
    previous = engine.in_flight.tokens if engine.in_flight is not None else None
    logits, sampled = engine.runner.run(scheduled, placeholders=previous)
    for seq, num_new in scheduled:
        seq.num_computed_tokens += num_new
    tokens = engine.sample(logits, sampled)
    placed = []
    for row, seq in enumerate(sampled):
        placed.append((seq, len(seq.token_ids)))
        seq.token_ids.append(-1 - row)
    done = None
    if tokens.is_cuda:
        host_tokens = torch.empty(tokens.shape, dtype=tokens.dtype, pin_memory=True)
        host_tokens.copy_(tokens, non_blocking=True)
        done = torch.cuda.Event()
        done.record()
    else:
        host_tokens = tokens
    if len(sampled) == len(scheduled):
        unsampled = []
    else:
        ids = {id(seq) for seq in sampled}
        unsampled = [seq for seq, _ in scheduled if id(seq) not in ids]
    return InFlightStep(tokens, host_tokens, done, placed, unsampled)


def resolve(engine: LLMEngine, step: InFlightStep) -> list[RequestOutput]:
    """Wait for a launched step; put its real tokens in place of the placeholders, then end
    the sequences that stopped (dropping the token they computed since)."""
    if step.done is not None:
        step.done.synchronize()
    tokens, now = step.host_tokens.tolist(), time.perf_counter()
    finished = []
    for seq, index in step.placed:
        if seq.status is Status.FINISHED:
            continue
        token = seq.token_ids[index] = tokens[-1 - seq.token_ids[index]]
        engine.allocator.cache_full_blocks(seq)
        seq.token_times.append(now)
        if engine.stopped(seq, token, index + 1):
            del seq.token_ids[index + 1 :]
            finished.append(engine.end(seq))
    for seq in step.unsampled:
        if seq.status is not Status.FINISHED:
            engine.allocator.cache_full_blocks(seq)
    return finished
