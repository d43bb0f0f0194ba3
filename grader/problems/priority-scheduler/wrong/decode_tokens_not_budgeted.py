from engine.scheduler import Scheduler, SchedulerOutput
from engine.sequence import Sequence, Status


class PriorityPreemptScheduler(Scheduler):
    """Wrong: priority and preemption are right, but only prefill tokens are charged to the
    token budget ("a decode step is one token, it is free"), so a step with many decoding
    requests plus a prefill chunk computes more than max_num_batched_tokens."""

    @staticmethod
    def rank(seq: Sequence) -> tuple[int, float, int]:
        return (seq.priority, seq.arrival_time, seq.seq_id)

    def schedule(self) -> SchedulerOutput:
        out = SchedulerOutput()
        budget = self.max_num_batched_tokens
        ran: set[int] = set()
        preempted: set[int] = set()
        floor: tuple | None = None  # the best rank left out this step

        def leave_out(seq: Sequence) -> None:
            nonlocal floor
            floor = self.rank(seq) if floor is None else min(floor, self.rank(seq))

        def make_room(seq: Sequence) -> bool:
            victims = [s for s in self.running if s.seq_id not in ran and s is not seq]
            victim = max(victims, key=self.rank, default=None)
            if victim is None or self.rank(victim) < self.rank(seq):
                return False
            self.preempt(victim)
            out.preempted.append(victim)
            preempted.add(victim.seq_id)
            leave_out(victim)
            return True

        for seq in sorted([*self.running, *self.waiting], key=self.rank):
            if seq.seq_id in preempted:
                continue
            if seq.status is Status.RUNNING:
                remaining = seq.num_tokens - seq.num_computed_tokens
                num_new = remaining if remaining == 1 else min(remaining, budget)
                if num_new == 0:
                    continue
                while not self.allocator.append_slots(seq, num_new):
                    if not make_room(seq):
                        self.preempt(seq)
                        out.preempted.append(seq)
                        preempted.add(seq.seq_id)
                        leave_out(seq)
                        num_new = 0
                        break
            elif budget == 0 or (floor is not None and self.rank(seq) > floor):
                continue
            else:
                while len(self.running) >= self.max_num_seqs and make_room(seq):
                    pass
                if len(self.running) >= self.max_num_seqs:
                    leave_out(seq)
                    continue
                num_new = self.admit(seq, budget)
                while not num_new and make_room(seq):
                    num_new = self.admit(seq, budget)
                if num_new:
                    self.waiting.remove(seq)
                else:
                    leave_out(seq)
            if num_new:
                out.scheduled.append((seq, num_new))
                ran.add(seq.seq_id)
                if num_new > 1:
                    budget -= num_new
        return out
