"""``kill -9`` of the worker mid-job: the submission is re-queued and graded exactly once."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import pytest

from grader.harnesses.contract import Verdict
from grader.models import Submission, SubmissionEvent
from grader.models import TestResult as ResultRow
from grader.sandbox import process_tree
from grader.services import submission_create
from tests.conftest import WorkerProcess
from tests.grader.conftest import solution, wait_graded

pytestmark = pytest.mark.slow
# The job must be running (claimed, sandbox loading) within this after submission.
CLAIM_TIMEOUT_S = 60
MARKER = "slow-import-for-kill-test"


def _worker(tmp_path, name: str) -> WorkerProcess:
    worker = WorkerProcess(f"{name}-{uuid.uuid4().hex[:6]}@localhost", tmp_path / f"{name}.log")
    worker.start()
    worker.wait_until_alive()
    return worker


def _sandbox_under(root_pid: int) -> bool:
    """Whether a bubblewrap sandbox runs among ``root_pid``'s descendants."""
    for pid in process_tree(root_pid):
        try:
            if b"bwrap" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return True
        except OSError:  # the process ended while we looked
            continue
    return False


def test_kill_9_of_the_worker_mid_job_regrades_exactly_once(softmax_problem, user, tmp_path):
    first = _worker(tmp_path, "doomed")
    code = f"import time\ntime.sleep(3)  # {MARKER}\n" + solution("solutions/fast.py")
    submission = submission_create(user=user, problem=softmax_problem, code=code)
    deadline = time.monotonic() + CLAIM_TIMEOUT_S
    while Submission.objects.get(pk=submission.pk).state != Submission.State.RUNNING:
        assert time.monotonic() < deadline, "the job was never claimed"
        time.sleep(0.1)
    # Killed once its sandbox runs (the solution's import sleeps 3 s in there), not after a
    # guessed pause: a readiness check holds however slowly a loaded machine starts bwrap.
    while not _sandbox_under(first.process.pid):
        assert time.monotonic() < deadline, "the job's sandbox never started"
        time.sleep(0.05)
    os.killpg(first.process.pid, signal.SIGKILL)
    first.process.wait()
    second = _worker(tmp_path, "rescuer")
    try:
        graded = wait_graded(submission.pk)
    finally:
        second.stop()
    assert graded.verdict == Verdict.ACCEPTED, graded.message
    assert graded.attempt == 1
    assert graded.worker_hostname == second.hostname
    kinds = list(SubmissionEvent.objects.filter(submission=graded).values_list("kind", flat=True))
    assert kinds.count("requeued") == 1
    assert kinds.count("done") == 1
    assert ResultRow.objects.filter(submission=graded).count() == 10
    requeued = SubmissionEvent.objects.get(submission=graded, kind="requeued")
    assert first.hostname in requeued.data["reason"]
