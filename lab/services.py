"""Engine-lab services: create an experiment, run it once on a worker."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from grader.conf import grader_settings
from grader.selectors import workers_serving
from lab.experiment import LabSettings
from lab.models import LabRun

logger = logging.getLogger(__name__)
# Experiments one user may have waiting or running at once: each holds a worker for seconds.
MAX_PENDING_PER_USER = 2
# The Celery queue experiments run on (the tiny model on a CPU).
LAB_QUEUE = "cpu"
# A queued experiment is marked failed once it has waited this long while no live worker
# serves LAB_QUEUE: time for a worker that is starting to send its first heartbeat, and no
# more, so nobody watches a page that will never change. With a worker alive (busy with
# other jobs) it keeps waiting.
UNSERVED_WAIT_S = 60


class LabRunRefused(ValueError):
    """Too many experiments in flight for this user, or no worker to run one."""


class LabQueueUnserved(LabRunRefused):
    """No live worker serves the lab's queue: an experiment queued now would never run."""


def no_worker_message() -> str:
    return (
        f"No worker is serving the {LAB_QUEUE} queue right now (none has sent a heartbeat in "
        f"the last {grader_settings.WORKER_ALIVE_S:g} s), so an experiment cannot run; start a "
        "worker (make run starts one) and try again."
    )


def labrun_create(*, user, settings: LabSettings) -> LabRun:
    """Store an experiment and queue its task once the row is committed; refused at once
    when no live worker serves the lab's queue (it would wait forever)."""
    from lab.tasks import lab_run_execute

    if not workers_serving(LAB_QUEUE):
        raise LabQueueUnserved(no_worker_message())
    with transaction.atomic():
        pending = LabRun.objects.filter(
            user=user, state__in=[LabRun.State.QUEUED, LabRun.State.RUNNING]
        ).count()
        if pending >= MAX_PENDING_PER_USER:
            raise LabRunRefused(
                f"you have {pending} experiments waiting or running; wait for one to finish"
            )
        run = LabRun.objects.create(user=user, settings=settings.as_dict())
        transaction.on_commit(lambda: lab_run_execute.delay(run.pk))
    return run


def labrun_execute(run_id: int, hostname: str) -> LabRun | None:
    """Run a queued experiment exactly once; a redelivered message finds it claimed and stops."""
    claimed = LabRun.objects.filter(pk=run_id, state=LabRun.State.QUEUED).update(
        state=LabRun.State.RUNNING, started_at=timezone.now(), worker_hostname=hostname
    )
    if not claimed:
        return None
    run = LabRun.objects.get(pk=run_id)
    try:
        from lab.runner import experiment_run  # the engine (torch): on the worker only

        results = experiment_run(LabSettings.from_dict(run.settings))
    except Exception as error:
        logger.exception("lab run %s failed", run_id)
        LabRun.objects.filter(pk=run_id).update(
            state=LabRun.State.FAILED, error=str(error)[:2000], finished_at=timezone.now()
        )
    else:
        LabRun.objects.filter(pk=run_id).update(
            state=LabRun.State.DONE, results=results, finished_at=timezone.now()
        )
    return LabRun.objects.get(pk=run_id)


def labrun_fail_if_unserved(run: LabRun, now: datetime | None = None) -> LabRun:
    """Mark a queued experiment failed once it has waited ``UNSERVED_WAIT_S`` while no live
    worker serves its queue (the worker died after it was queued); returns it as it is now.
    A worker that claims it at the same moment wins or loses atomically: both update only a
    queued row."""
    now = now or timezone.now()
    if run.state != LabRun.State.QUEUED or now - run.created_at < timedelta(
        seconds=UNSERVED_WAIT_S
    ):
        return run
    if workers_serving(LAB_QUEUE):
        return run
    LabRun.objects.filter(pk=run.pk, state=LabRun.State.QUEUED).update(
        state=LabRun.State.FAILED,
        error=f"no worker started it within {UNSERVED_WAIT_S} s: none is serving the "
        f"{LAB_QUEUE} queue",
        finished_at=now,
    )
    run.refresh_from_db()
    return run
