"""Grader selectors: the functions that read."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from grader.models import Worker


def workers_alive() -> QuerySet[Worker]:
    """Workers whose heartbeat is younger than ``WORKER_ALIVE_S``."""
    since = timezone.now() - timedelta(seconds=settings.WORKER_ALIVE_S)
    return Worker.objects.filter(last_seen_at__gte=since).order_by("hostname")
