"""``manage.py serve`` keeps the site up when its worker dies, says so, and starts it again."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import timedelta

import psutil
import pytest
from django.utils import timezone

from grader.models import Worker
from interview.management.commands.serve import worker_state_write
from tests.conftest import REPO, child_environment

pytestmark = pytest.mark.slow
# Daphne and a worker need a few seconds each to import Django (and the worker torch).
START_TIMEOUT_S = 120


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _wait_for(condition, what: str, log) -> object:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if found := condition():
                return found
        except (urllib.error.URLError, ConnectionError, TimeoutError, psutil.Error):
            pass
        time.sleep(0.25)
    raise AssertionError(f"{what} within {START_TIMEOUT_S} s:\n{log.read_text()[-4000:]}")


def _serve(options: list[str], log) -> subprocess.Popen:
    """``manage.py serve`` with ``options``, its output in ``log``; no judge warm-up beside it
    (what these tests watch is the web server and the worker)."""
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "manage.py", "serve", *options],
            cwd=REPO,
            env=child_environment(JUDGE_WARM_UP="0"),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _celery_worker(serve: subprocess.Popen) -> psutil.Process | None:
    children = psutil.Process(serve.pid).children()
    return next((c for c in children if "celery" in c.cmdline()), None)


def test_a_worker_killed_under_serve_is_started_again_and_the_site_stays_up(
    transactional_db, tmp_path
):
    port, log = _free_port(), tmp_path / "serve.log"
    base = f"http://127.0.0.1:{port}"
    serve = _serve(["--port", str(port)], log)
    try:
        _wait_for(lambda: _get(f"{base}/healthz")[0] == 200, "the site was not healthy", log)
        first = _celery_worker(serve)
        [hostname] = Worker.objects.values_list("hostname", flat=True)
        os.killpg(first.pid, signal.SIGKILL)
        killed_at = timezone.now()

        assert _get(f"{base}/")[0] == 200  # the site is up without its worker
        second = _wait_for(
            lambda: (w := _celery_worker(serve)) and w.pid != first.pid and w,
            "no worker was started again",
            log,
        )
        _wait_for(
            lambda: Worker.objects.filter(hostname=hostname, started_at__gt=killed_at).exists(),
            "the new worker never sent a heartbeat",
            log,
        )
        assert second.is_running() and serve.poll() is None
        assert _get(f"{base}/healthz")[0] == 200
        assert "worker exited with code -9; starting it again in 1 s" in log.read_text()
    finally:
        os.killpg(serve.pid, signal.SIGTERM)
        serve.wait(timeout=60)


@pytest.mark.django_db(transaction=True)
def test_healthz_says_the_worker_is_being_restarted(client, settings, tmp_path):
    settings.SERVE_WORKER_STATE_PATH = tmp_path / "serve-worker.json"
    restart_at = timezone.now() + timedelta(seconds=5)
    worker_state_write("restarting", exit_code=-9, restarts=2, restart_at=restart_at.isoformat())
    reply = client.get("/healthz")
    assert reply.status_code == 503
    [problem] = [p for p in reply.json()["problems"] if "worker stopped" in p]
    assert problem.startswith(
        "the grading worker stopped and is being restarted: exit code -9, restart 2 in "
    )
    public = client.get("/healthz", REMOTE_ADDR="203.0.113.9").json()
    assert "the grading worker stopped and is being restarted" in public["problems"]
    worker_state_write("running", hostname="w@h", pid=1)
    assert not any("worker stopped" in p for p in client.get("/healthz").json()["problems"])


def test_serve_without_a_worker_serves_the_site_alone_behind_a_proxy(transactional_db, tmp_path):
    """deploy/'s web service: Daphne alone (the workers are on other hosts), taking the
    client's address from the proxy's X-Forwarded-For."""
    port, log = _free_port(), tmp_path / "serve.log"
    serve = _serve(["--no-worker", "--proxy-headers", "--port", str(port)], log)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for(lambda: _get(f"{base}/")[0] == 200, "the site did not answer", log)
        status, body = _get(f"{base}/healthz")
        assert status == 503 and "no Celery worker has sent a heartbeat" in body
        [web] = psutil.Process(serve.pid).children()
        assert "daphne" in web.cmdline() and "--proxy-headers" in web.cmdline()
        assert _celery_worker(serve) is None and not Worker.objects.exists()
        assert "(workers elsewhere)" in log.read_text()
    finally:
        os.killpg(serve.pid, signal.SIGTERM)
        serve.wait(timeout=60)
