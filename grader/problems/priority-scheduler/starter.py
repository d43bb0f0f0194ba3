from engine.scheduler import Scheduler, SchedulerOutput


class PriorityPreemptScheduler(Scheduler):
    """Lower `seq.priority` first (ties by arrival); preempt lower-priority work by recompute."""

    def schedule(self) -> SchedulerOutput:
        raise NotImplementedError
