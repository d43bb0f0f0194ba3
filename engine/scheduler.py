"""Which requests run each step, and with how many tokens.

Interface `Scheduler` (candidates implement it) and the reference policies `FCFSScheduler`,
`PriorityScheduler` and `StaticScheduler` (the static-batching baseline).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field

from engine.block_allocator import BlockAllocator
from engine.sequence import Sequence, Status


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
    model, then `finish(seq)` for each sequence that ended. A scheduled sequence must be
    RUNNING and in `self.running`.

    Example::

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


class FCFSScheduler(Scheduler):
    """First come, first served: running sequences first, then waiting ones in arrival order.

    When blocks run out, the most recently admitted running sequence is preempted.
    """

    def victim(self) -> Sequence:
        """The running sequence to preempt when blocks run out."""
        return self.running[-1]

    def next_waiting(self) -> Sequence:
        """The waiting sequence to admit next."""
        return self.waiting[0]

    def schedule(self) -> SchedulerOutput:
        out = SchedulerOutput()
        budget = self.max_num_batched_tokens
        index = 0
        while index < len(self.running) and budget > 0:
            seq = self.running[index]
            num_new = min(seq.num_tokens - seq.num_computed_tokens, budget)
            while not self.allocator.append_slots(seq, num_new):
                victim = self.victim()
                self.preempt(victim)
                out.preempted.append(victim)
                if victim is seq:
                    break
            else:
                out.scheduled.append((seq, num_new))
                budget -= num_new
                index += 1
        if out.preempted:
            return out
        while self.waiting and budget > 0 and len(self.running) < self.max_num_seqs:
            seq = self.next_waiting()
            num_new = self.admit(seq, budget)
            if not num_new:
                break
            self.waiting.remove(seq)
            out.scheduled.append((seq, num_new))
            budget -= num_new
        return out


class PriorityScheduler(FCFSScheduler):
    """Lower `seq.priority` runs first (ties by arrival); a high-priority arrival preempts.

    Waiting sequences are admitted best priority first. When one cannot get blocks or a seat
    (`max_num_seqs`), running sequences of strictly worse priority are preempted, worst first,
    until it fits. When a running sequence needs blocks, the worst running one is preempted.
    """

    @staticmethod
    def rank(seq: Sequence) -> tuple[int, float, int]:
        return (seq.priority, seq.arrival_time, seq.seq_id)

    def victim(self) -> Sequence:
        return max(self.running, key=self.rank)

    def next_waiting(self) -> Sequence:
        return min(self.waiting, key=self.rank)

    def schedule(self) -> SchedulerOutput:
        self.running.sort(key=self.rank)
        preempted = self._make_room()
        out = super().schedule()
        out.preempted[:0] = preempted
        return out

    def _make_room(self) -> list[Sequence]:
        """Preempt worse-priority running sequences so the best waiting one can start."""
        preempted: list[Sequence] = []
        if not self.waiting or not self.running:
            return preempted
        best = self.next_waiting()
        need = self.allocator.blocks_needed(best.num_tokens)
        while self.running and self.rank(self.victim()) > self.rank(best):
            if len(self.running) < self.max_num_seqs and self.allocator.num_free_blocks >= need:
                break
            victim = self.victim()
            self.preempt(victim)
            preempted.append(victim)
        return preempted


class StaticScheduler(Scheduler):
    """Static batching, the baseline: a batch of up to `max_num_seqs` sequences starts only when
    the previous batch has ended, and every member keeps computing (padding) tokens until the
    longest output in its batch ends (`seq.pad_to_tokens`). A batch takes only the sequences
    whose prompt plus padded output fits in the free blocks, so it never preempts. Prompts are
    prefilled unpadded (chunked under the token budget), which flatters this baseline.
    """

    def schedule(self) -> SchedulerOutput:
        out = SchedulerOutput()
        if not self.running and self.waiting:
            batch = list(self.waiting)[: self.max_num_seqs]
            pad = max(seq.params.max_tokens for seq in batch)
            free = self.allocator.num_free_blocks
            for seq in batch:
                need = self.allocator.blocks_needed(seq.num_prompt_tokens + pad)
                if need > free and self.running:
                    break
                free -= need
                seq.pad_to_tokens = pad
                seq.status = Status.RUNNING
                self.running.append(seq)
                self.waiting.popleft()
        budget = self.max_num_batched_tokens
        for seq in self.running:
            if not seq.block_table:
                seq.num_computed_tokens = seq.num_cached_tokens = self.allocator.allocate_prefix(
                    seq
                )
            num_new = min(seq.num_tokens - seq.num_computed_tokens, budget)
            if num_new and self.allocator.append_slots(seq, num_new):
                out.scheduled.append((seq, num_new))
                budget -= num_new
        return out
