"""The real stack for browser tests: Daphne and a Celery worker on the test database, and
headless Chromium (Debian's) driven by Playwright."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, WorkerProcess, child_environment

# Playwright's sync API runs an event loop in the test's thread; the ORM calls the tests make
# between page actions are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS_DIR = REPO / "var" / "screenshots"
# Daphne imports Django and the engine before it listens.
SERVER_START_TIMEOUT_S = 60
# Flags that keep Chromium off the network this machine does not have.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LiveStack:
    base_url: str
    worker: WorkerProcess


class _Processes:
    """Daphne and a worker started once for every browser test: starting them (Django, torch,
    the engine) costs more than most tests. Each test still gets an empty database."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.port = _free_port()
        # Counters of their own (log-in limits): none left in Redis by an earlier run.
        self.environment = {"CACHE_KEY_PREFIX": f"e2e-{uuid.uuid4().hex[:12]}"}
        self.server: subprocess.Popen | None = None
        self.worker: WorkerProcess | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_server(self) -> None:
        log = (self.log_dir / "daphne.log").open("ab")
        self.server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "tests.e2e.live_asgi:application",
            ],
            cwd=REPO,
            env=child_environment(**self.environment),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def live_worker(self) -> WorkerProcess:
        """The shared worker, started again if a test stopped it."""
        if self.worker is None or self.worker.process.poll() is not None:
            hostname = f"e2e-{uuid.uuid4().hex[:8]}@localhost"
            # A beat a second: the row a test's flush removed is back within one beat.
            self.worker = WorkerProcess(hostname, self.log_dir / f"{hostname}.log")
            self.worker.start(WORKER_HEARTBEAT_S=str(SHARED_WORKER_HEARTBEAT_S), **self.environment)
        return self.worker

    def wait_for_server(self) -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=5) as response:
                    if response.status == 200:
                        return
            # A busy machine may answer later than the request's timeout: ask again.
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline or self.server.poll() is not None:
                log = (self.log_dir / "daphne.log").read_text()[-4000:]
                raise RuntimeError(f"daphne did not come up:\n{log}")
            time.sleep(0.25)

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            self.server.wait(timeout=20)


SHARED_WORKER_HEARTBEAT_S = 1


@pytest.fixture(scope="session")
def _live_processes(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[_Processes]:
    processes = _Processes(tmp_path_factory.mktemp("live-stack"))
    processes.start_server()
    processes.live_worker()
    try:
        yield processes
    finally:
        processes.stop()


def _stack_for_the_test(processes: _Processes) -> Iterator[LiveStack]:
    worker = processes.live_worker()
    worker.wait_until_alive()
    processes.wait_for_server()
    yield LiveStack(base_url=processes.base_url, worker=worker)
    # The worker may still finish a job (and dispatch the user's next) after the test saw its
    # verdict: emptying the tables under that transaction would deadlock.
    if worker.process.poll() is None:
        worker.wait_idle()


@pytest.fixture
def live_stack(transactional_db, _live_processes) -> Iterator[LiveStack]:
    """Daphne serving the app and a worker grading for it, both on the test database."""
    yield from _stack_for_the_test(_live_processes)


@pytest.fixture
def private_stack(transactional_db, tmp_path) -> Iterator[LiveStack]:
    """A stack of the test's own, for a test whose traffic would change what the shared one
    does next (a fuzzer's failed log-ins hold back every later log-in from this address)."""
    processes = _Processes(tmp_path)
    processes.start_server()
    try:
        yield from _stack_for_the_test(processes)
    finally:
        processes.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request):
    """A fresh browser context per test; a screenshot of the last state is kept on failure.
    Whatever the test does, no page may break the site's Content-Security-Policy."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(15_000)
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            "Content Security Policy" in message.text
            and violations.append(f"{page.url}: {message.text}")
        ),
    )
    yield page
    if getattr(request.node, "rep_call", None) and request.node.rep_call.failed:
        page.screenshot(path=str(screenshot_path(f"FAILED-{request.node.name}")), full_page=True)
    context.close()
    assert violations == []


def screenshot_path(name: str) -> Path:
    SCREENSHOTS_DIR.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS_DIR / f"{name}.png"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
