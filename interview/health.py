"""The health report behind ``/healthz``: database, broker, live workers, and the worker that
``manage.py serve`` supervises."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.utils import timezone

import interview
from grader.conf import grader_settings
from grader.selectors import workers_alive
from interview.celery import app as celery_app

# Each probe must answer quickly: a load balancer polls /healthz and a hung probe is worse
# than a failed one. A probe still running after this is reported as not answering.
PROBE_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class Problem:
    """One thing wrong: ``summary`` is for anyone, ``detail`` (hosts, errors) for operators."""

    summary: str
    detail: str = ""

    def text(self, detailed: bool) -> str:
        return f"{self.summary}: {self.detail}" if detailed and self.detail else self.summary


@dataclass
class HealthReport:
    database: bool
    broker: bool
    workers: list[dict] = field(default_factory=list)
    version: str = ""
    problems: list[Problem] = field(default_factory=list)
    supervisor: dict | None = None

    @property
    def healthy(self) -> bool:
        return not self.problems

    def as_dict(self, detailed: bool) -> dict:
        """The report as JSON; hostnames, hardware, versions and error texts only ``detailed``."""
        public = {
            "status": "ok" if self.healthy else "unhealthy",
            "database": self.database,
            "broker": self.broker,
            "workers_alive": len(self.workers),
            "problems": [problem.text(detailed) for problem in self.problems],
        }
        if not detailed:
            return public
        return public | {
            "workers": self.workers,
            "version": self.version,
            "supervisor": self.supervisor,
        }


def _bounded(
    probe: Callable[[], object], name: str, timeout_s: float = PROBE_TIMEOUT_S
) -> tuple[object | None, Problem | None]:
    """Run a probe on its own thread for at most ``timeout_s``: its result, or the problem."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["result"] = probe()
        except Exception as error:
            outcome["error"] = error

    thread = threading.Thread(target=run, name=f"healthz-{name}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    silent = Problem(f"{name} unreachable", f"no answer within {timeout_s:g} s")
    if thread.is_alive():
        return None, silent
    if "error" in outcome:
        # The probe's own socket timeout, which may fire before the join returns on a busy
        # machine, is the same silence.
        if _timed_out(outcome["error"]):
            return None, silent
        return None, Problem(f"{name} unreachable", str(outcome["error"]))
    return outcome["result"], None


def _timed_out(error: object) -> bool:
    """A timeout anywhere in the error's chain (redis and kombu wrap the socket's own)."""
    seen = 0
    while isinstance(error, BaseException) and seen < 8:
        if isinstance(error, TimeoutError) or "Timeout" in type(error).__name__:
            return True
        error = error.__cause__ or error.__context__
        seen += 1
    return False


def _database_probe() -> list[dict]:
    """Ask the database for the live workers (its own connection, closed after)."""
    try:
        return [
            {
                "hostname": w.hostname,
                "queues": w.queues,
                "hardware": w.hardware,
                "last_seen_at": w.last_seen_at.isoformat(),
            }
            for w in workers_alive()
        ]
    finally:
        connection.close()


def _broker_probe() -> bool:
    # Bounds a Redis broker's socket too, so a probe thread left behind ends soon after.
    timeouts = {"socket_timeout": PROBE_TIMEOUT_S, "socket_connect_timeout": PROBE_TIMEOUT_S}
    with celery_app.connection_for_write(transport_options=timeouts) as conn:
        conn.ensure_connection(max_retries=0, timeout=PROBE_TIMEOUT_S)
        if conn.transport_cls == "filesystem":
            # Connecting to a folder always works; a write shows a missing, full or read-only
            # one. The name holds no queue's name, so no worker takes it for a message.
            folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_out"])
            probe = folder / f".healthz-{uuid.uuid4().hex}"
            probe.write_bytes(b"ok")
            probe.unlink()
    return True


def supervisor_state() -> dict | None:
    """What a running ``manage.py serve`` last wrote about its worker (None when not under
    serve, or when the serve that wrote it is gone)."""
    try:
        state = json.loads(settings.SERVE_WORKER_STATE_PATH.read_text())
        os.kill(int(state["serve_pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state


def _supervisor_problem(state: dict | None) -> Problem | None:
    if not state or state.get("state") == "running":
        return None
    restart_at = datetime.fromisoformat(state["restart_at"])
    wait_s = max(0.0, (restart_at - timezone.now()).total_seconds())
    return Problem(
        "the grading worker stopped and is being restarted",
        f"exit code {state['exit_code']}, restart {state['restarts']} in {wait_s:.0f} s",
    )


def services_problems(timeout_s: float = 5.0) -> list[str]:
    """Why this host cannot reach the database or the broker, with the error (none: both
    answer): a worker's dry run checks it, since on a new host the address, password or
    firewall is the likeliest mistake, and a worker started with one only retries."""
    checks = (
        _bounded(_database_probe, "database", timeout_s),
        _bounded(_broker_probe, "broker", timeout_s),
    )
    return [problem.text(detailed=True) for _, problem in checks if problem]


def health_report() -> HealthReport:
    """Probe every runtime piece, each for about PROBE_TIMEOUT_S at most; names each failure."""
    workers, database_problem = _bounded(_database_probe, "database")
    broker, broker_problem = _bounded(_broker_probe, "broker")
    problems = [p for p in (database_problem, broker_problem) if p]
    supervisor = supervisor_state()
    if restarting := _supervisor_problem(supervisor):
        problems.append(restarting)
    if database_problem is None and not workers:
        problems.append(
            Problem(
                f"no Celery worker has sent a heartbeat in the last {grader_settings.WORKER_ALIVE_S:g} s"
            )
        )
    return HealthReport(
        database=database_problem is None,
        broker=broker_problem is None,
        workers=workers or [],
        version=interview.__version__,
        problems=problems,
        supervisor=supervisor,
    )
