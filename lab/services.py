"""Engine-lab services: create an experiment, run it once on a worker."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from lab.models import LabRun
from lab.runner import LabSettings, experiment_run

logger = logging.getLogger(__name__)
# Experiments one user may have waiting or running at once: each holds a worker for seconds.
MAX_PENDING_PER_USER = 2


class LabRunRefused(ValueError):
    """Too many experiments in flight for this user."""


def labrun_create(*, user, settings: LabSettings) -> LabRun:
    """Store an experiment and queue its task once the row is committed."""
    from lab.tasks import lab_run_execute

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
