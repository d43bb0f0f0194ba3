"""Submissions through the real queue and a real worker: verdicts, events, exactly-once, survival."""

from __future__ import annotations

import pytest

from grader.harnesses.contract import Verdict
from grader.models import Submission, SubmissionEvent
from grader.models import TestResult as ResultRow
from grader.services import submission_create
from interview.celery import app as celery_app
from tests.grader.conftest import solution, wait_graded

pytestmark = pytest.mark.slow


def test_reference_is_graded_through_the_queue_with_persisted_events(
    module_worker, softmax_problem, user
):
    submission = submission_create(
        user=user, problem=softmax_problem, code=softmax_problem.reference_code
    )
    graded = wait_graded(submission.pk)
    assert graded.verdict == Verdict.ACCEPTED, graded.message
    assert graded.score > 0
    assert graded.sandbox == "bubblewrap"
    assert graded.worker_hostname == module_worker.hostname
    assert graded.hardware["cpu_model"]
    assert graded.harness_version == "function/1"
    assert len(graded.timing["candidate"]["samples_ns"]) >= 5
    assert graded.attempt == 0
    tests = list(ResultRow.objects.filter(submission=graded))
    assert [t.verdict for t in tests] == [Verdict.ACCEPTED] * 10
    kinds = list(SubmissionEvent.objects.filter(submission=graded).values_list("kind", flat=True))
    assert kinds[:3] == ["queued", "started", "sandbox_started"]
    assert kinds.count("test") == 10
    done = SubmissionEvent.objects.filter(submission=graded, kind="test_done")
    assert [(e.data["name"], e.data["verdict"]) for e in done] == [
        (t.name, t.verdict) for t in tests
    ]
    assert kinds[-1] == "done"
    seqs = list(SubmissionEvent.objects.filter(submission=graded).values_list("seq", flat=True))
    assert seqs == list(range(1, len(kinds) + 1))


def test_a_duplicate_delivery_changes_nothing(module_worker, softmax_problem, user):
    submission = submission_create(
        user=user, problem=softmax_problem, code=solution("wrong/wrong_axis.py")
    )
    graded = wait_graded(submission.pk)
    events_before = graded.events_count
    result = celery_app.send_task(
        "grader.grade_submission", args=[submission.pk, graded.attempt], queue="cpu"
    )
    assert result.get(timeout=60) is None
    again = Submission.objects.get(pk=submission.pk)
    assert (again.verdict, again.graded_at, again.events_count) == (
        Verdict.WRONG_ANSWER,
        graded.graded_at,
        events_before,
    )
    assert ResultRow.objects.filter(submission=again).count() == 10


@pytest.mark.parametrize(
    ("code", "verdict"),
    [
        ("def softmax(x):\n    while True:\n        pass\n", Verdict.TIME_LIMIT),
        (
            "import os, signal\ndef softmax(x):\n    os.kill(os.getppid(), signal.SIGKILL)\n"
            "    os.killpg(0, signal.SIGKILL)\n",
            Verdict.RUNTIME_ERROR,
        ),
        ("import os\nwhile True:\n    os.fork()\n", Verdict.RUNTIME_ERROR),
    ],
    ids=["infinite-loop", "signals-parent-and-group", "fork-bomb-at-import"],
)
def test_worker_survives_hostile_code_and_grades_the_next_honest_one(
    module_worker, softmax_problem, user, code, verdict
):
    hostile = submission_create(user=user, problem=softmax_problem, code=code)
    honest = submission_create(
        user=user, problem=softmax_problem, code=solution("solutions/fast.py")
    )
    assert wait_graded(hostile.pk).verdict == verdict
    assert wait_graded(honest.pk).verdict == Verdict.ACCEPTED
    assert module_worker.process.poll() is None
