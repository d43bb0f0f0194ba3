from engine.scheduler import Scheduler, SchedulerOutput


class PriorityPreemptScheduler(Scheduler):
    """Wrong: first come, first served. Running requests first, then waiting ones in arrival
    order; when blocks run out the newest running request is preempted. Priority is ignored,
    so a priority-0 request that arrives into a full pool waits behind priority-2 work."""

    def schedule(self) -> SchedulerOutput:
        out = SchedulerOutput()
        budget = self.max_num_batched_tokens
        index = 0
        while index < len(self.running) and budget > 0:
            seq = self.running[index]
            num_new = min(seq.num_tokens - seq.num_computed_tokens, budget)
            while not self.allocator.append_slots(seq, num_new):
                victim = self.running[-1]
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
            seq = self.waiting[0]
            num_new = self.admit(seq, budget)
            if not num_new:
                break
            self.waiting.popleft()
            out.scheduled.append((seq, num_new))
            budget -= num_new
        return out
