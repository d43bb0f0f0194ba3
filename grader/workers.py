"""Grading worker processes: the one command line that starts one (`manage.py serve`,
`manage.py gpu_worker`, `manage.py grader_bench` and the tests' live workers all use it), and
the supervisor's pieces that `serve` and `gpu_worker` share (stop on signals, restart with a
back-off, stop children with a grace period)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

from grader.conf import grader_settings

# How long each child gets to finish its current request or job after Ctrl-C before it is
# killed; a grading job in flight is redelivered (acks_late), so nothing is lost by the kill.
STOP_GRACE_S = 10
# Waits before starting a worker that exited again, one per consecutive exit (the last one
# repeats): quick after a one-off crash, slow enough not to spin on one that cannot start.
WORKER_RESTART_BACKOFF_S = (1, 2, 5, 10, 30)
# A worker that ran this long before exiting was healthy: the back-off starts over.
WORKER_HEALTHY_RUN_S = 60
POLL_S = 0.5


def stop_on_signals() -> threading.Event:
    """An event that Ctrl-C or SIGTERM sets: the supervisor stops its children in order."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda signum, frame: stop.set())
    return stop


def restart_wait_s(exits: int) -> float:
    """How long to wait before starting a worker again after ``exits`` exits in a row."""
    return WORKER_RESTART_BACKOFF_S[min(exits, len(WORKER_RESTART_BACKOFF_S) - 1)]


def children_stop(children: dict[str, subprocess.Popen], say) -> None:
    """SIGTERM every child still running, then wait STOP_GRACE_S for all before killing."""
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for name, child in children.items():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{name} did not stop in {STOP_GRACE_S} s; killing it")
            child.kill()
            child.wait()


def celery_worker_command(queues: str, hostname: str, loglevel: str = "INFO") -> list[str]:
    """A Celery worker consuming ``queues`` (comma-separated): one job at a time, none
    reserved ahead (acks late), named ``hostname`` so its heartbeat row can be found."""
    return [
        sys.executable, "-m", "celery", "-A", grader_settings.GRADER_CELERY_APP, "worker",
        "--queues", queues, "--concurrency", "1", "--prefetch-multiplier", "1",
        "--loglevel", loglevel, "--hostname", hostname, "--without-gossip", "--without-mingle",
    ]  # fmt: skip
