"""Grader selectors: the functions that read."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from grader.models import Problem, Submission, SubmissionEvent, Worker


def workers_alive() -> QuerySet[Worker]:
    """Workers whose heartbeat is younger than ``WORKER_ALIVE_S``."""
    since = timezone.now() - timedelta(seconds=settings.WORKER_ALIVE_S)
    return Worker.objects.filter(last_seen_at__gte=since).order_by("hostname")


def workers_serving(queue: str) -> list[Worker]:
    """Live workers (see ``workers_alive``) that consume ``queue``."""
    return [worker for worker in workers_alive() if queue in worker.queues]


NO_WORKER_NOTE = "No worker is running: it will be graded when one starts."


def queue_unserved_note(queue: str) -> str:
    """What a page says of a submission waiting on ``queue``: NO_WORKER_NOTE while no live
    worker consumes it (instead of a progress bar that never moves), else nothing."""
    return "" if workers_serving(queue) else NO_WORKER_NOTE


def submission_get(submission_id: int) -> Submission:
    """One submission with its problem and tests (raises Submission.DoesNotExist)."""
    return (
        Submission.objects.select_related("problem", "user")
        .prefetch_related("tests")
        .get(pk=submission_id)
    )


def submission_events_after(submission_id: int, after_seq: int = 0) -> list[SubmissionEvent]:
    """The submission's events with ``seq > after_seq``, in order: what a client missed."""
    return list(SubmissionEvent.objects.filter(submission_id=submission_id, seq__gt=after_seq))


def submission_visible_to(submission_id: int, user) -> bool:
    """Whether ``user`` may watch this submission: its author or staff."""
    if user is None or not user.is_authenticated:
        return False
    if user.is_staff:
        return True
    return Submission.objects.filter(pk=submission_id, user_id=user.pk).exists()


def problems_published() -> QuerySet[Problem]:
    """Published problems, by slug."""
    return Problem.objects.filter(published=True).order_by("slug")


def problem_published_get(slug: str) -> Problem:
    """One published problem (raises Problem.DoesNotExist)."""
    return Problem.objects.get(slug=slug, published=True)


def submissions_of(user, problem_slug: str | None = None, limit: int = 50) -> list[Submission]:
    """A user's latest submissions, newest first, optionally of one problem."""
    submissions = Submission.objects.filter(user_id=user.pk).select_related("problem")
    if problem_slug:
        submissions = submissions.filter(problem__slug=problem_slug)
    return list(submissions.order_by("-created_at", "-pk")[:limit])
