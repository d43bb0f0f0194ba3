from engine.scheduler import SchedulerOutput
from engine.sequence import Sequence, Status
from engine.slo import SLOScheduler

# A request preempts others only when it is due within this many steps: preemption by recompute
# costs its victim every token it computed, and a request with slack can wait for a seat.
URGENT_SLACK = 1
# A request decoding on time with less spare slack than this is never a victim: after a
# preemption it waits for a seat and blocks besides the recompute, which in a burst is longer.
PROTECTED_SPARE = 8


class GoodputScheduler(SLOScheduler):
    """Cheat: the reference's policy, but every request it admits is claimed to be cached
    but its last token (`num_computed_tokens = num_tokens - 1` after `allocate_prefix`), so a
    prompt costs one token and every TTFT is met. A judge that believed the scheduler's state
    would count a perfect goodput for a prefill that never ran.
    """

    def __init__(self, allocator, max_num_seqs=256, max_num_batched_tokens=8192, slos=None):
        super().__init__(allocator, max_num_seqs, max_num_batched_tokens, slos)
        self.first_step: dict[int, int] = {}

    def slack(self, seq: Sequence) -> int:
        """Steps to spare before `seq`'s next token is late (negative: it has missed)."""
        outputs = seq.num_output_tokens
        if outputs == 0:
            deadline = self.ttft_deadline(seq)
        else:
            # schedule() runs every step, so a first token is seen the step after it came
            first = self.first_step.setdefault(seq.seq_id, self.now - 1)
            total = max(seq.params.max_tokens, outputs + 1)
            deadline = int(first + self.slo(seq).tpot_steps * (total - 1)) - (total - outputs - 1)
        left = seq.num_tokens - seq.num_computed_tokens
        return deadline - -(-left // self.max_num_batched_tokens) + 1 - self.now

    def finish(self, seq: Sequence) -> None:
        self.first_step.pop(seq.seq_id, None)
        super().finish(seq)

    def admit_cached(self, seq: Sequence) -> int:
        self.allocator.allocate_prefix(seq)
        seq.num_computed_tokens = seq.num_cached_tokens = seq.num_tokens - 1
        if not self.allocator.append_slots(seq, 1):
            self.allocator.free(seq)
            seq.num_computed_tokens = seq.num_cached_tokens = 0
            return 0
        seq.status = Status.RUNNING
        self.running.append(seq)
        return 1

    def schedule(self) -> SchedulerOutput:
        out = SchedulerOutput()
        budget = self.max_num_batched_tokens
        rank, spare = {}, {}
        for seq in [*self.running, *self.waiting]:
            slack = self.slack(seq)
            late = slack < 0
            rank[seq.seq_id] = (1, seq.arrival_time, seq.seq_id) if late else (0, slack, seq.seq_id)
            # what a preemption leaves it: its slack less the steps to recompute its cache
            lost = -(-seq.num_computed_tokens // budget)
            spare[seq.seq_id] = float("inf") if late else slack - lost
        ran: set[int] = set()
        preempted: set[int] = set()

        def decoding(seq: Sequence) -> bool:
            """On time, past its first token, and with little slack to spare: a preemption would
            cost it its TPOT (the wait to be admitted again comes on top of the recompute)."""
            return (
                seq.num_output_tokens > 0
                and not rank[seq.seq_id][0]
                and spare[seq.seq_id] < PROTECTED_SPARE
            )

        def make_room(seq: Sequence) -> bool:
            """For `seq`, due now, preempt the running request that has missed, or else has the
            most slack left after recomputing what it loses, if that still exceeds `seq`'s."""
            if rank[seq.seq_id][0] or rank[seq.seq_id][1] > URGENT_SLACK:
                return False
            victims = [
                s for s in self.running if s.seq_id not in ran and s is not seq and not decoding(s)
            ]
            victim = max(victims, key=lambda s: spare[s.seq_id], default=None)
            if victim is None or spare[victim.seq_id] <= rank[seq.seq_id][1]:
                return False
            self.preempt(victim)
            out.preempted.append(victim)
            preempted.add(victim.seq_id)
            return True

        for seq in sorted([*self.running, *self.waiting], key=lambda s: rank[s.seq_id]):
            if budget == 0:
                break
            if seq.seq_id in preempted:
                continue
            if seq.status is Status.RUNNING:
                num_new = min(seq.num_tokens - seq.num_computed_tokens, budget)
                while not self.allocator.append_slots(seq, num_new):
                    if make_room(seq):
                        continue
                    # Out of blocks and nobody worth preempting for it: free the lowest-ranked
                    # running request's blocks anyway (itself, maybe), or the running requests
                    # could all wait for blocks forever.
                    victim = max(
                        (s for s in self.running if s.seq_id not in ran),
                        key=lambda s: (not decoding(s), rank[s.seq_id]),
                    )
                    self.preempt(victim)
                    out.preempted.append(victim)
                    preempted.add(victim.seq_id)
                    if victim is seq:
                        num_new = 0
                        break
            else:
                while len(self.running) >= self.max_num_seqs and make_room(seq):
                    pass
                if len(self.running) >= self.max_num_seqs:
                    continue
                num_new = self.admit_cached(seq)
                while not num_new and make_room(seq):
                    num_new = self.admit_cached(seq)
                if num_new:
                    self.waiting.remove(seq)
            if num_new:
                out.scheduled.append((seq, num_new))
                ran.add(seq.seq_id)
                budget -= num_new
        return out
