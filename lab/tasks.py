"""Celery tasks of the engine lab: thin, one service call each."""

from __future__ import annotations

from celery import shared_task

from lab.services import LAB_QUEUE, labrun_execute

# An experiment is bounded to seconds (lab.runner's limits); this catches a stuck one.
LAB_RUN_TIME_LIMIT_S = 120


@shared_task(bind=True, name="lab.run_experiment", time_limit=LAB_RUN_TIME_LIMIT_S, queue=LAB_QUEUE)
def lab_run_execute(self, run_id: int) -> str | None:
    """Run one queued experiment on this worker (the tiny model on its CPU)."""
    run = labrun_execute(run_id, hostname=self.request.hostname or "")
    return run.state if run is not None else None
