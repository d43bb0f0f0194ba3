"""Fixtures shared by the whole suite: real services, started for real."""

from __future__ import annotations

import copy
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection

REPO = Path(__file__).resolve().parent.parent
# A worker needs a few seconds to import Django and torch and send its first heartbeat.
WORKER_START_TIMEOUT_S = 60


def test_database_url() -> str:
    """A DATABASE_URL that points a child process at the test database pytest-django made."""
    settings_dict = connection.settings_dict
    if settings_dict["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{settings_dict['NAME']}"
    configured = dj_database_url.parse(os.environ["DATABASE_URL"])
    user = configured.get("USER") or ""
    password = f":{configured['PASSWORD']}" if configured.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host = configured.get("HOST") or "127.0.0.1"
    port = f":{configured['PORT']}" if configured.get("PORT") else ""
    return f"postgresql://{auth}{host}{port}/{settings_dict['NAME']}"


def child_environment(**extra: str) -> dict[str, str]:
    env = os.environ.copy()
    env["DATABASE_URL"] = test_database_url()
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


TASK_RECEIVED = re.compile(r"Task [\w.]+\[([0-9a-f-]+)\] received")
TASK_ENDED = re.compile(r"Task [\w.]+\[([0-9a-f-]+)\] (?:succeeded|raised|retry|failed|rejected)")


class WorkerProcess:
    """A real `celery worker` process (``manage.py serve``'s command) consuming ``queues``
    (the cpu and gpu queues unless told) of the test database."""

    def __init__(self, hostname: str, log_path: Path, queues: str = "cpu,gpu") -> None:
        self.hostname = hostname
        self.log_path = log_path
        self.queues = queues
        self.process: subprocess.Popen | None = None

    def start(self, **environment: str) -> None:
        from grader.workers import celery_worker_command

        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            celery_worker_command(self.queues, self.hostname),
            cwd=REPO,
            env=child_environment(**environment),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_until_alive(self) -> None:
        from grader.models import Worker

        deadline = time.monotonic() + WORKER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if Worker.objects.filter(hostname=self.hostname).exists():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.25)
        raise RuntimeError(
            f"worker {self.hostname} did not start:\n{self.log_path.read_text()[-4000:]}"
        )

    def wait_idle(self, timeout_s: float = 15.0) -> None:
        """Wait until every task the worker received has logged its end (best effort: a task
        whose pool child was killed never logs one).

        A shared worker finishes a job after the test saw its verdict (it dispatches the
        user's next submission); truncating the tables under that transaction deadlocks."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            log = self.log_path.read_text(errors="replace")
            received = set(TASK_RECEIVED.findall(log))
            ended = set(TASK_ENDED.findall(log))
            if received <= ended:
                return
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture
def celery_worker_process(transactional_db, tmp_path) -> Iterator[WorkerProcess]:
    """A running worker whose heartbeat has reached the test database."""
    worker = WorkerProcess(f"test-{uuid.uuid4().hex[:8]}@localhost", tmp_path / "worker.log")
    worker.start()
    try:
        worker.wait_until_alive()
        yield worker
    finally:
        worker.stop()


# Redis keeps databases 0-15 unless configured otherwise.
REDIS_DATABASES = 16


def xdist_worker_environment(index: int, workers: int, environ: dict[str, str]) -> dict[str, str]:
    """What xdist worker ``index`` of ``workers`` changes in its environment so that its live
    workers, channel layer and cache never see the other test processes' (each already has a
    test database of its own, and every server a free port), and how many threads its torch
    may use.

    With Redis: worker 0 keeps REDIS_URL's database, the others are spread over the rest (0
    and 8 for two workers on /0), and each gets a cache prefix of its own. Without it the
    filesystem broker lives under INFERPREP_VAR_DIR: each worker gets a folder of its own,
    the models staying where they are."""
    redis_url = environ.get("REDIS_URL", "")
    name = f"gw{index}"
    prefix = environ.get("CACHE_KEY_PREFIX", "")
    changes = {"CACHE_KEY_PREFIX": f"{prefix}-{name}" if prefix else name}
    # torch's OpenMP threads, one per core in each process by default, spin against the other
    # process's: the processes share the cores instead.
    threads = max(1, (os.cpu_count() or 1) // max(workers, 1))
    changes["OMP_NUM_THREADS"] = environ.get("OMP_NUM_THREADS", str(threads))
    if redis_url:
        parts = urlsplit(redis_url)
        base = int(parts.path.strip("/") or 0)
        database = (base + index * (REDIS_DATABASES // max(workers, 1))) % REDIS_DATABASES
        changes["REDIS_URL"] = urlunsplit(parts._replace(path=f"/{database}"))
    else:
        var_dir = Path(environ.get("INFERPREP_VAR_DIR") or REPO / "var")
        changes["INFERPREP_VAR_DIR"] = str(var_dir / "xdist" / name)
        changes["INFERPREP_MODELS_DIR"] = environ.get(
            "INFERPREP_MODELS_DIR", str(var_dir / "models")
        )
    return changes


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_setupnodes(config: pytest.Config, specs: list) -> None:
    """Set each xdist worker's services before it starts: its Django settings read them once,
    as the process starts, before any conftest runs."""
    for index, spec in enumerate(specs):
        spec.env.update(xdist_worker_environment(index, len(specs), dict(os.environ)))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the browser tests last: Playwright's sync API keeps an event loop in the main thread
    while a browser is open, which the async tests could not share."""
    items.sort(key=lambda item: "tests/e2e/" in item.nodeid)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item):
    """Before a test's fixtures (and its database) are torn down, let a shared worker finish."""
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, WorkerProcess) and value.process and value.process.poll() is None:
            value.wait_idle()


class FakeClock:
    """A clock that moves only when told: limits tested without sleeping."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def fresh_cache(settings) -> None:
    """A cache namespace of the test's own: log-in counters (in Redis when REDIS_URL is set)
    left by another test or an earlier run do not count against this one."""
    settings.CACHES = {
        name: config | {"KEY_PREFIX": f"test-{uuid.uuid4().hex}"}
        for name, config in settings.CACHES.items()
    }


@pytest.fixture(autouse=True)
def design_prompts(request) -> None:
    """The shipped design prompts in the test's database, as `make run`'s loader puts them
    there: the design pages and the loop read them from the database. Tests without one skip."""
    marker = request.node.get_closest_marker("django_db")
    transactional = "transactional_db" in request.fixturenames or bool(
        marker and marker.kwargs.get("transaction")
    )
    if not (marker or transactional or "db" in request.fixturenames):
        return
    request.getfixturevalue("transactional_db" if transactional else "db")
    from interview.design_bank import design_files_checked, design_prompts_sync

    # The files are read and validated once a run (~90 ms), not before every database test.
    if not _DESIGN_FILES:
        _DESIGN_FILES.extend(design_files_checked())
    design_prompts_sync(copy.deepcopy(_DESIGN_FILES))


_DESIGN_FILES: list = []


@pytest.fixture(autouse=True)
def quick_password_hashes(settings) -> None:
    """Passwords hashed with the site's algorithm (PBKDF2-SHA256) at far fewer rounds: each
    user a test makes and each log-in cost ~0.5 s of CPU at the production count. The rounds
    are stored in the hash, so the live servers' default hashers verify these too."""
    settings.PASSWORD_HASHERS = ["tests.conftest.QuickPBKDF2PasswordHasher"]


class QuickPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    iterations = 1_000


@pytest.fixture
def login_limits(monkeypatch) -> FakeClock:
    """The log-in limits on a clock the test moves."""
    from grader import login_guard

    clock = FakeClock()
    monkeypatch.setattr(login_guard, "clock", clock)
    return clock


@pytest.fixture
def fresh_buckets() -> Iterator[None]:
    """Every rate-limit bucket empty before and after the test (tests that submit use it)."""
    from grader.ratelimit import buckets_reset

    buckets_reset()
    yield
    buckets_reset()
