"""Service-level objectives per request class, and the scheduler interface that plans for them:
`SLO` and `SLOScheduler`. Candidates implement an `SLOScheduler`; time is the engine's step
clock, so a policy's attainment is the same on any machine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.scheduler import Scheduler
from engine.sequence import Sequence

if TYPE_CHECKING:
    from engine.block_allocator import BlockAllocator


@dataclass(frozen=True)
class SLO:
    """One request class's targets, in engine steps.

    `ttft_steps`: from the step a request arrives at to the step that yields its first output
    token, both counted (a prompt prefilled whole in its arrival step has a TTFT of 1).
    `tpot_steps`: the mean steps per output token after the first, (step of the last token -
    step of the first) / (outputs - 1); a request decoded every step has 1.0.
    """

    ttft_steps: int
    tpot_steps: float

    def met(self, ttft_steps: int, tpot_steps: float) -> bool:
        return ttft_steps <= self.ttft_steps and tpot_steps <= self.tpot_steps


class SLOScheduler(Scheduler):
    """A `Scheduler` (`engine/scheduler.py`: the token budget, the seats, the allocator calls,
    preemption by recompute) that plans for goodput: the requests that meet *both* their
    class's TTFT and TPOT targets.

    A request's class is `seq.priority` (0, 1, ...), its targets `self.slos[seq.priority]`; it
    arrived at step `seq.arrival_time`, and `self.now` is the index of the step being planned
    (`engine.driver.drive`, or the grader's link, sets it before each `schedule()`). A request that will miss its target still
    has to be served (every request must finish), but late work should not push others past
    theirs. The levers: which waiting request to admit (an earliest-deadline-first order, say),
    how large a prefill chunk to give it, whether a decode that has slack can skip a step so
    the budget goes to a prefill with a deadline, and whom to preempt when blocks run out.

    Example (a step with budget 32: two requests decoding, one prompt of 40 tokens waiting)::

        scheduler = MySLOScheduler(allocator, max_num_seqs=8, max_num_batched_tokens=32,
                                   slos={0: SLO(ttft_steps=6, tpot_steps=1.5),
                                         1: SLO(ttft_steps=40, tpot_steps=3.0)})
        scheduler.now = 12
        out = scheduler.schedule()
        [n for _, n in out.scheduled]    # e.g. [1, 1, 30]: both decode, the prompt is chunked

    Plugged in as the engine's scheduler: `LLMEngine(model, config,
    scheduler_cls=functools.partial(MySLOScheduler, slos=...))`.
    """

    def __init__(
        self,
        allocator: BlockAllocator,
        max_num_seqs: int = 256,
        max_num_batched_tokens: int = 8192,
        slos: dict[int, SLO] | None = None,
    ):
        super().__init__(allocator, max_num_seqs, max_num_batched_tokens)
        self.slos: dict[int, SLO] = dict(slos or {})
        self.now = 0

    def slo(self, seq: Sequence) -> SLO:
        """The targets of `seq`'s class."""
        return self.slos[seq.priority]

    def ttft_deadline(self, seq: Sequence) -> int:
        """The last step at which `seq`'s first token still meets its TTFT target."""
        return int(seq.arrival_time) + self.slo(seq).ttft_steps - 1
