"""Which requests run each step, and with how many tokens: the `Scheduler` interface.

Candidates implement it; the engine's own policies are in `engine/schedulers.py`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.sequence import Sequence, Status

if TYPE_CHECKING:
    from engine.block_allocator import BlockAllocator


@dataclass
class SchedulerOutput:
    """One step's plan: `scheduled` pairs each sequence with the tokens it computes this step."""

    scheduled: list[tuple[Sequence, int]] = field(default_factory=list)
    preempted: list[Sequence] = field(default_factory=list)

    @property
    def num_tokens(self) -> int:
        return sum(n for _, n in self.scheduled)


class Scheduler(ABC):
    """Decides, each step, which sequences run and how many new tokens each computes.

    The rule (vLLM v1's): a sequence has `seq.num_tokens` known tokens (prompt, outputs so far,
    speculative drafts) of which `seq.num_computed_tokens` are already in the KV cache. Each
    step may give it up to `seq.num_tokens - seq.num_computed_tokens` tokens. A fresh prompt
    gets its whole prompt (or a chunk of it), a decoding sequence gets 1 (1 + k with k draft
    tokens), a prefix hit starts `num_computed_tokens` past the cached blocks. Nothing else
    distinguishes prefill from decode.

    Limits per step: the total of scheduled tokens <= `max_num_batched_tokens` (the token
    budget; a prompt longer than what is left is chunked, chunked prefill), and at most
    `max_num_seqs` sequences running.

    Memory: before scheduling `n` tokens for `seq`, call `allocator.append_slots(seq, n)`; when
    it returns False, preempt by recompute: `self.preempt(victim)` frees the victim's blocks,
    resets its `num_computed_tokens` to 0, and puts it back at the front of `waiting` (its
    generated tokens are kept and recomputed with the prompt later). Never crash on a full
    cache; if the sequence itself is the only one left, it waits. A newly admitted sequence
    first gets `allocator.allocate_prefix(seq)` (its cached prefix); set
    `seq.num_computed_tokens` and `seq.num_cached_tokens` to the value it returns, and call
    `allocator.free(seq)` if it then cannot get slots.

    The engine calls `add(seq)` for each new request, `schedule()` once per step, then runs the
    model, then `abort(seq)` for each sequence that ended (it calls `finish(seq)` after taking
    a sequence that ended while waiting out of `waiting`). A scheduled sequence must be
    RUNNING and in `self.running`.

    Example (the engine's first-come-first-served policy, `engine/schedulers.py`)::

        scheduler = FCFSScheduler(allocator, max_num_seqs=2, max_num_batched_tokens=8)
        scheduler.add(Sequence([1, 2, 3, 4, 5, 6]))
        scheduler.add(Sequence([7, 8, 9, 10, 11]))
        out = scheduler.schedule()
        [n for _, n in out.scheduled]    # [6, 2]: the second prompt is chunked (budget 8)

    To plug in a candidate's class, pass it to the engine: `LLMEngine(model, config,
    scheduler_cls=MyScheduler)`; it is constructed as
    `MyScheduler(allocator, max_num_seqs=..., max_num_batched_tokens=...)`.
    """

    def __init__(
        self, allocator: BlockAllocator, max_num_seqs: int = 256, max_num_batched_tokens: int = 8192
    ):
        self.allocator = allocator
        self.max_num_seqs = max_num_seqs
        self.max_num_batched_tokens = max_num_batched_tokens
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self.num_preemptions = 0

    def add(self, seq: Sequence) -> None:
        """Queue a new request."""
        seq.status = Status.WAITING
        self.waiting.append(seq)

    def has_unfinished(self) -> bool:
        return bool(self.waiting or self.running)

    @abstractmethod
    def schedule(self) -> SchedulerOutput:
        """Plan one step under the token budget, preempting by recompute when blocks run out."""

    def finish(self, seq: Sequence) -> None:
        """Remove a sequence that ended and free its blocks."""
        seq.status = Status.FINISHED
        if seq in self.running:
            self.running.remove(seq)
        self.allocator.free(seq)

    def abort(self, seq: Sequence) -> None:
        """End `seq` wherever it is: out of `waiting` if it waits there, then `finish`."""
        if seq.status is Status.WAITING and seq in self.waiting:
            self.waiting.remove(seq)
        self.finish(seq)

    def preempt(self, seq: Sequence) -> None:
        """Preempt by recompute: free the blocks and requeue `seq` at the front of `waiting`."""
        self.running.remove(seq)
        self.allocator.free(seq)
        seq.status = Status.WAITING
        seq.num_computed_tokens = 0
        seq.spec_token_ids = []
        seq.num_preemptions += 1
        self.num_preemptions += 1
        self.waiting.appendleft(seq)

    def admit(self, seq: Sequence, budget: int) -> int:
        """Try to start waiting `seq` with at most `budget` tokens; return the tokens or 0."""
        cached = self.allocator.allocate_prefix(seq)
        seq.num_computed_tokens = seq.num_cached_tokens = cached
        num_new = min(seq.num_tokens - cached, budget)
        if not self.allocator.append_slots(seq, num_new):
            self.allocator.free(seq)
            seq.num_computed_tokens = seq.num_cached_tokens = 0
            return 0
        seq.status = Status.RUNNING
        self.running.append(seq)
        return num_new
