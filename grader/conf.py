"""Grader settings, read from the environment with defaults (the project settings stay the others')."""

from __future__ import annotations

import os

# A running job whose heartbeat is older than this is lost (its worker died): re-queued.
# Its heartbeat beats every 2 s and the reaper runs with each 10 s worker heartbeat, so a
# lost job is noticed within GRADER_LOST_AFTER_S + 10 s = 30 s by default.
GRADER_LOST_AFTER_S = float(os.environ.get("GRADER_LOST_AFTER_S", "20"))
# A dispatched job still unclaimed this long after its dispatch, seen from a worker of its
# queue idle through two heartbeats, was lost by the broker (a restart without persistence)
# and is sent again; longer than the longest retry back-off (8 s), which a worker holds.
GRADER_LOST_MESSAGE_GRACE_S = float(os.environ.get("GRADER_LOST_MESSAGE_GRACE_S", "30"))
