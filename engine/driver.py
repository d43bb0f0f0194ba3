"""The one driver loop: feed requests to the engine as they arrive, step until all are done.

The benchmark, the engine lab and the grader's engine harnesses all serve workloads through
`drive`; `one_thread` keeps torch on one thread where the engine shares a machine.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from engine.slo import SLOScheduler

if TYPE_CHECKING:
    from engine.llm_engine import LLMEngine
    from engine.outputs import RequestOutput
    from engine.sequence import Sequence
    from engine.workloads import Request

IDLE_POLL_S = 0.01  # the longest the wall-clock loop sleeps while it waits for an arrival


@dataclass
class Run:
    """A served workload: the outputs in the order they finished, every request's sequence
    by request id (in arrival order), the steps taken and the wall time."""

    outputs: list[RequestOutput] = field(default_factory=list)
    sequences: dict[str, Sequence] = field(default_factory=dict)
    steps: int = 0
    wall_s: float = 0.0


def drive(
    engine: LLMEngine,
    requests: Iterable[Request],
    *,
    step_clock: bool = False,
    max_steps: int | None = None,
    concurrency: int | None = None,
    on_step: Callable[[Run], None] | None = None,
) -> Run:
    """Add each request when it arrives, step until every one has finished (or `max_steps`).

    Arrivals are seconds after the start on the wall clock (the loop sleeps while nothing is
    due), or, with `step_clock`, steps: a request arriving at `s` is added before step `s`,
    and the loop steps whether or not anything is due, so a run is a pure function of the
    workload. `concurrency` caps the requests in flight. `on_step(run)` runs after every
    step. An `SLOScheduler` is told the step it plans (`now`). The engine's trace and clock restart with the run.
    """
    pending = deque(sorted(requests, key=lambda r: r.arrival_s))
    run, in_flight = Run(), 0
    start = engine.start_time = time.perf_counter()
    engine.trace.clear()
    while (pending or engine.has_unfinished()) and (max_steps is None or run.steps < max_steps):
        now = run.steps if step_clock else time.perf_counter() - start
        while (
            pending
            and pending[0].arrival_s <= now
            and (concurrency is None or in_flight < concurrency)
        ):
            r = pending.popleft()
            arrival = r.arrival_s if step_clock else start + max(r.arrival_s, 0.0)
            seq = engine.add_request(
                r.prompt_token_ids,
                r.params,
                request_id=r.request_id,
                priority=r.priority,
                arrival_time=arrival,
            )
            run.sequences[seq.request_id] = seq
            in_flight += 1
        if not step_clock and not engine.has_unfinished():
            time.sleep(max(0.0, min(pending[0].arrival_s - now, IDLE_POLL_S)))
            continue
        if isinstance(engine.scheduler, SLOScheduler):
            engine.scheduler.now = run.steps  # it plans on the step clock
        done = engine.step()
        in_flight -= len(done)
        run.outputs += done
        run.steps += 1
        if on_step is not None:
            on_step(run)
    if engine.runner.device.type == "cuda":
        torch.cuda.synchronize()
    run.wall_s = time.perf_counter() - start
    return run


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread (a process that shares its machine), then restore it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
