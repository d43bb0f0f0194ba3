from engine.scheduler import Scheduler, SchedulerOutput
from engine.sequence import Sequence


class PriorityPreemptScheduler(Scheduler):
    """Wrong: a priority inversion. Waiting requests are admitted best priority first, but a
    new arrival never preempts running work: a priority-0 request that arrives while the pool
    is full of priority-2 requests waits until they finish on their own."""

    @staticmethod
    def rank(seq: Sequence) -> tuple[int, float, int]:
        return (seq.priority, seq.arrival_time, seq.seq_id)

    def schedule(self) -> SchedulerOutput:
        out = SchedulerOutput()
        budget = self.max_num_batched_tokens
        self.running.sort(key=self.rank)
        index = 0
        while index < len(self.running) and budget > 0:
            seq = self.running[index]
            num_new = min(seq.num_tokens - seq.num_computed_tokens, budget)
            while not self.allocator.append_slots(seq, num_new):
                victim = max(self.running, key=self.rank)
                self.preempt(victim)
                out.preempted.append(victim)
                if victim is seq:
                    break
            else:
                out.scheduled.append((seq, num_new))
                budget -= num_new
                index += 1
        while self.waiting and budget > 0 and len(self.running) < self.max_num_seqs:
            seq = min(self.waiting, key=self.rank)
            num_new = self.admit(seq, budget)
            if not num_new:
                break
            self.waiting.remove(seq)
            out.scheduled.append((seq, num_new))
            budget -= num_new
        return out
