"""Grader fixtures: the cpu-softmax problem with short limits, and one worker per module."""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
from collections.abc import Iterator

import pytest

from grader.bank import PROBLEMS_DIR, problem_read
from grader.harnesses.contract import ProblemSpec
from tests.conftest import WorkerProcess

# The worker re-queues a job whose heartbeat is this old; short so the kill -9 test is quick.
os.environ["GRADER_LOST_AFTER_S"] = "4"
# A dispatched job is sent again this long after the worker was seen idle; short for the tests.
os.environ["GRADER_LOST_MESSAGE_GRACE_S"] = "1"
# A graded submission must reach its verdict through the real queue within this.
VERDICT_TIMEOUT_S = 90
SOFTMAX = PROBLEMS_DIR / "cpu-softmax"
# Shorter limits and timing budget than the shipped problem: same checks, less CPU in CI.
FAST_LIMITS = {"test_time_s": 3.0, "wall_time_s": 30.0, "cpu_time_s": 20}
FAST_BENCHMARK = {"min_repetitions": 5, "max_repetitions": 30, "budget_s": 0.3, "warmup": 1}


@pytest.fixture(scope="session")
def softmax_spec() -> ProblemSpec:
    spec = problem_read(SOFTMAX).as_spec()
    return dataclasses.replace(
        spec,
        limits=dataclasses.replace(spec.limits, **FAST_LIMITS),
        benchmark=spec.benchmark | FAST_BENCHMARK,
    )


def solution(name: str) -> str:
    """A solution shipped with the problem: reference, solutions/*.py or wrong/*.py."""
    return (SOFTMAX / name).read_text()


@pytest.fixture
def softmax_problem(transactional_db):
    """The cpu-softmax Problem row, loaded from the bank, with the short test limits."""
    from grader.bank import problems_load
    from grader.models import Problem

    problems_load()
    problem = Problem.objects.get(slug="cpu-softmax")
    problem.spec = problem.spec | {
        "limits": problem.spec["limits"] | FAST_LIMITS,
        "benchmark": problem.spec["benchmark"] | FAST_BENCHMARK,
    }
    problem.save()
    return problem


@pytest.fixture
def user(transactional_db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user("candidate", password="pw-candidate-1")


@pytest.fixture(scope="module")
def module_worker(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[WorkerProcess]:
    """One real worker shared by a module's tests (starting one costs seconds of CPU)."""
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    worker = WorkerProcess(f"grader-{uuid.uuid4().hex[:8]}@localhost", log)
    with django_db_blocker.unblock():
        worker.start()
        try:
            worker.wait_until_alive()
            yield worker
        finally:
            worker.stop()


def wait_graded(submission_id: int, timeout_s: float = VERDICT_TIMEOUT_S):
    """Poll until the submission is graded; returns it (fails with its state otherwise)."""
    from grader.models import Submission

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        submission = Submission.objects.get(pk=submission_id)
        if submission.state == Submission.State.GRADED:
            return submission
        time.sleep(0.2)
    raise AssertionError(f"submission {submission_id} still {submission.state} after {timeout_s} s")
