"""Worker life-cycle hooks: a heartbeat thread in each Celery worker's main process.

Each beat also re-queues jobs whose own heartbeat stopped (their worker died mid-job), sends
the jobs the broker never took (it was down), and, when this worker sat idle since its last
beat, sends again the jobs the broker lost (it would have handed them to this idle worker).
"""

from __future__ import annotations

import logging
import threading

from celery.signals import worker_ready, worker_shutdown
from celery.worker import state as worker_state
from django.db import close_old_connections, connection
from django.utils import timezone

from grader.conf import grader_settings

logger = logging.getLogger(__name__)
_stop = threading.Event()


def _beat_forever(hostname: str, queues: list[str]) -> None:
    from grader.services import (
        submissions_dispatch_stalled,
        submissions_reap_lost,
        submissions_redispatch_lost,
        worker_heartbeat,
    )

    started_at = timezone.now()
    idle_at = None  # the previous beat, when this worker held no job then
    while not _stop.is_set():
        now = timezone.now()
        # Reserved, waiting for a countdown, or running: any job this process holds.
        idle = not worker_state.requests
        try:
            close_old_connections()
            worker_heartbeat(hostname, queues, started_at)
            submissions_reap_lost()
            submissions_dispatch_stalled()
            if idle and idle_at is not None:
                submissions_redispatch_lost(queues, idle_at)
        except Exception:  # the database may be restarting; the next beat retries
            logger.exception("worker heartbeat failed")
        finally:
            connection.close()
        idle_at = now if idle else None
        _stop.wait(grader_settings.WORKER_HEARTBEAT_S)


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
