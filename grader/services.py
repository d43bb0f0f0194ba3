"""Grader services: the functions that write."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from engine.hardware import detect_hardware
from grader.models import Worker


def worker_heartbeat(hostname: str, queues: list[str], started_at: datetime) -> Worker:
    """Record that a worker is alive now, with its queues and hardware."""
    worker, _ = Worker.objects.update_or_create(
        hostname=hostname,
        defaults={
            "queues": sorted(queues),
            "hardware": detect_hardware().as_dict(),
            "started_at": started_at,
            "last_seen_at": timezone.now(),
        },
    )
    return worker


def worker_gone(hostname: str) -> None:
    """Forget a worker that shut down cleanly, so it stops counting as alive at once."""
    Worker.objects.filter(hostname=hostname).delete()
