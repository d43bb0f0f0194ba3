from engine.scheduler import SchedulerOutput
from engine.slo import SLOScheduler


class GoodputScheduler(SLOScheduler):
    """Chunked prefill under the token budget; serve so that the most requests meet both
    their class's TTFT and TPOT targets (`self.slos[seq.priority]`, steps; `self.now`)."""

    def schedule(self) -> SchedulerOutput:
        raise NotImplementedError
