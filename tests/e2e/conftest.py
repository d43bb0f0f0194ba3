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


@pytest.fixture
def live_stack(transactional_db, tmp_path) -> Iterator[LiveStack]:
    """Daphne serving the app and a worker grading for it, both on the test database."""
    port = _free_port()
    log = (tmp_path / "daphne.log").open("ab")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "interview.asgi:application",
        ],
        cwd=REPO,
        env=child_environment(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    worker = WorkerProcess(f"e2e-{uuid.uuid4().hex[:8]}@localhost", tmp_path / "worker.log")
    worker.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        worker.wait_until_alive()
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"{base_url}/healthz", timeout=5) as response:
                    if response.status == 200:
                        break
            # A busy machine may answer later than the request's timeout: ask again.
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(
                    f"daphne did not come up:\n{(tmp_path / 'daphne.log').read_text()[-4000:]}"
                )
            time.sleep(0.25)
        yield LiveStack(base_url=base_url, worker=worker)
    finally:
        worker.stop()
        server.terminate()
        server.wait(timeout=20)


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
