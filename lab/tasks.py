"""Celery tasks of the engine lab: thin, one service call each."""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_process_init

from lab.services import LAB_QUEUE, labrun_execute

# An experiment is bounded to seconds (lab.runner's limits); this catches a stuck one.
LAB_RUN_TIME_LIMIT_S = 120


@shared_task(bind=True, name="lab.run_experiment", time_limit=LAB_RUN_TIME_LIMIT_S, queue=LAB_QUEUE)
def lab_run_execute(self, run_id: int) -> str | None:
    """Run one queued experiment on this worker (the tiny model on its CPU)."""
    run = labrun_execute(run_id, hostname=self.request.hostname or "")
    return run.state if run is not None else None


@worker_process_init.connect
def engine_model_code_import(**_) -> None:
    """Import the model code the engine builds on (transformers' Llama, about ten seconds of one
    core) as a worker process starts, not inside its first experiment, so the first lab run
    takes seconds like the rest. Not in a background thread: transformers' lazy module is not
    safe to import from two threads at once."""
    import transformers.models.llama.modeling_llama  # noqa: F401
