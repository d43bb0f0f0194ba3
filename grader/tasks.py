"""Celery tasks of the grader. Tasks stay thin: parse, call one service, return."""

from __future__ import annotations

import socket

from celery import shared_task

from engine.hardware import detect_hardware
from grader.services import submission_grade


@shared_task(name="grader.ping")
def ping(payload: str) -> dict:
    """Echo a payload with the worker's host and hardware label: proves a real round trip."""
    return {"echo": payload, "host": socket.gethostname(), "hardware": detect_hardware().label}


# A job's sandboxes have their own wall limits (60 s each by default); this only catches a
# grader that hangs on our side. The killed process stops beating and the job is re-queued.
GRADE_TIME_LIMIT_S = 600


@shared_task(
    bind=True,
    name="grader.grade_submission",
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=GRADE_TIME_LIMIT_S,
)
def grade_submission(self, submission_id: int, attempt: int) -> str | None:
    """Grade one submission attempt; a duplicate or stale delivery does nothing."""
    submission = submission_grade(submission_id, attempt, hostname=self.request.hostname or "")
    return submission.verdict if submission is not None else None
