"""The health report behind ``/healthz``: database, broker and live workers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.db import connection

import interview
from grader.selectors import workers_alive
from interview.celery import app as celery_app

# Each probe must answer quickly: a load balancer polls /healthz and a hung probe is worse
# than a failed one.
BROKER_TIMEOUT_S = 3


@dataclass
class HealthReport:
    database: bool
    broker: bool
    workers: list[dict] = field(default_factory=list)
    version: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return asdict(self) | {"status": "ok" if self.healthy else "unhealthy"}


def _database_ok() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:
        return False, f"database unreachable: {error}"
    return True, ""


def _broker_ok() -> tuple[bool, str]:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_S)
    except Exception as error:
        return False, f"broker unreachable: {error}"
    return True, ""


def health_report() -> HealthReport:
    """Probe every runtime piece; the report names each failure."""
    database, database_problem = _database_ok()
    broker, broker_problem = _broker_ok()
    problems = [p for p in (database_problem, broker_problem) if p]
    workers = []
    if database:
        workers = [
            {
                "hostname": w.hostname,
                "queues": w.queues,
                "hardware": w.hardware,
                "last_seen_at": w.last_seen_at.isoformat(),
            }
            for w in workers_alive()
        ]
        if not workers:
            problems.append(
                f"no Celery worker has sent a heartbeat in the last {settings.WORKER_ALIVE_S} s"
            )
    return HealthReport(
        database=database,
        broker=broker,
        workers=workers,
        version=interview.__version__,
        problems=problems,
    )
