"""Worker life-cycle hooks: a heartbeat thread in each Celery worker's main process.

Each beat also re-queues jobs whose own heartbeat stopped (their worker died mid-job).
"""

from __future__ import annotations

import logging
import threading

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

logger = logging.getLogger(__name__)
_stop = threading.Event()


def _beat_forever(hostname: str, queues: list[str]) -> None:
    from grader.services import (
        submissions_dispatch_stalled,
        submissions_reap_lost,
        worker_heartbeat,
    )

    started_at = timezone.now()
    while not _stop.is_set():
        try:
            close_old_connections()
            worker_heartbeat(hostname, queues, started_at)
            submissions_reap_lost()
            submissions_dispatch_stalled()
        except Exception:  # the database may be restarting; the next beat retries
            logger.exception("worker heartbeat failed")
        finally:
            connection.close()
        _stop.wait(settings.WORKER_HEARTBEAT_S)


@worker_ready.connect
def start_heartbeat(sender, **kwargs) -> None:
    consumer = sender
    queues = [queue.name for queue in consumer.task_consumer.queues]
    hostname = consumer.hostname
    threading.Thread(
        target=_beat_forever, args=(hostname, queues), name="heartbeat", daemon=True
    ).start()


@worker_shutdown.connect
def stop_heartbeat(sender, **kwargs) -> None:
    from grader.services import worker_gone

    _stop.set()
    try:
        worker_gone(sender.hostname)
    except Exception:
        logger.exception("could not remove worker %s", sender.hostname)
