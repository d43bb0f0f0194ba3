"""The grader's settings: its own defaults (from the environment), each overridden by a
setting of the same name in the project's settings when the project defines one.

Read them as ``grader_settings.NAME`` at the moment of use, so a test's ``settings``
override and a project's value both reach the grader without the grader's modules reading
the project's settings themselves.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # A worker is alive (on /healthz, for dispatch) while its heartbeat is younger than this.
    "WORKER_ALIVE_S": 30.0,
    # How often a worker writes its heartbeat; a third of WORKER_ALIVE_S so one missed beat is
    # fine. (The browser tests' shared worker beats every second.)
    "WORKER_HEARTBEAT_S": float(os.environ.get("WORKER_HEARTBEAT_S", "10")),
    # A running job whose heartbeat is older than this is lost (its worker died): re-queued.
    # Its heartbeat beats every 2 s and the reaper runs with each 10 s worker heartbeat, so a
    # lost job is noticed within GRADER_LOST_AFTER_S + 10 s = 30 s by default.
    "GRADER_LOST_AFTER_S": float(os.environ.get("GRADER_LOST_AFTER_S", "20")),
    # A dispatched job still unclaimed this long after its dispatch, seen from a worker of its
    # queue idle through two heartbeats, was lost by the broker (a restart without persistence)
    # and is sent again; longer than the longest retry back-off (8 s), which a worker holds.
    "GRADER_LOST_MESSAGE_GRACE_S": float(os.environ.get("GRADER_LOST_MESSAGE_GRACE_S", "30")),
    # The Celery application a grading worker runs (the project's, which routes the queues).
    "GRADER_CELERY_APP": "interview",
}


class GraderSettings:
    """``DEFAULTS`` with the project's settings of the same names on top."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"no grader setting {name!r}")
        return getattr(settings, name, DEFAULTS[name])


grader_settings = GraderSettings()
