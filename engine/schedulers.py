"""The engine's own scheduling policies: `FCFSScheduler`, `PriorityScheduler` and
`StaticScheduler` (the static-batching baseline), each a `Scheduler` (`engine/scheduler.py`)."""

from __future__ import annotations

from engine.scheduler import Scheduler, SchedulerOutput
from engine.sequence import Sequence, Status


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
