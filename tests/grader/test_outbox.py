"""The submissions table as an outbox, through a real worker: a job the broker did not take,
or took and lost, is sent again and graded once; one user's jobs never pass another's."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model
from kombu.exceptions import OperationalError
from kombu.messaging import Producer

from grader import services
from grader.harnesses.contract import Verdict
from grader.models import Submission, SubmissionEvent
from grader.services import submission_create
from tests.grader.conftest import solution, wait_graded

pytestmark = pytest.mark.slow
# The first job must be running within this after submission.
CLAIM_TIMEOUT_S = 60


def _fail_publish_once(monkeypatch) -> list[str]:
    """The broker refuses the next publish (down, or its disk full), then takes them again."""
    failures: list[str] = []
    publish = Producer.publish

    def refuse_once(self, *args, **kwargs):
        if not failures:
            failures.append("refused")
            raise OperationalError("Error 111 connecting to the broker: Connection refused")
        return publish(self, *args, **kwargs)

    monkeypatch.setattr(Producer, "publish", refuse_once)
    return failures


def _graded_once(submission_id: int) -> Submission:
    graded = wait_graded(submission_id)
    assert graded.verdict == Verdict.ACCEPTED, graded.message
    finals = SubmissionEvent.objects.filter(
        submission_id=submission_id, kind__in=["done", "aborted"]
    )
    assert finals.count() == 1
    assert SubmissionEvent.objects.filter(submission_id=submission_id, kind="started").count() == 1
    return graded


def test_a_job_the_broker_refused_is_sent_again_and_graded_once(
    module_worker, softmax_problem, user, monkeypatch
):
    failures = _fail_publish_once(monkeypatch)
    submission = submission_create(
        user=user, problem=softmax_problem, code=solution("reference.py")
    )
    assert failures == ["refused"]
    assert not Submission.objects.get(pk=submission.pk).dispatched  # still in the outbox
    _graded_once(submission.pk)  # the worker's sweep sent it


def test_submissions_after_a_refused_publish_are_not_stuck_behind_it(
    module_worker, softmax_problem, user, monkeypatch
):
    failures = _fail_publish_once(monkeypatch)
    refused = submission_create(user=user, problem=softmax_problem, code=solution("reference.py"))
    later = submission_create(
        user=user, problem=softmax_problem, code="# later\n" + solution("reference.py")
    )
    assert failures == ["refused"]
    _graded_once(refused.pk)
    _graded_once(later.pk)


def test_a_job_the_broker_lost_is_sent_again_once_the_worker_sits_idle(
    module_worker, softmax_problem, user, monkeypatch
):
    # The broker took the job and then lost it (a Redis restarted without persistence).
    sent = []
    monkeypatch.setattr(services, "_enqueue", lambda s, countdown_s=0: sent.append(s.pk))
    submission = submission_create(
        user=user, problem=softmax_problem, code=solution("reference.py")
    )
    assert sent == [submission.pk]
    assert Submission.objects.get(pk=submission.pk).dispatched
    monkeypatch.undo()
    _graded_once(submission.pk)


def test_interview_jobs_of_one_user_do_not_pass_another_users_waiting_practice_job(
    module_worker, softmax_problem, user
):
    slow = "import time\ntime.sleep(3)\n" + solution("reference.py")
    flood = [
        submission_create(
            user=user,
            problem=softmax_problem,
            code=f"# {index}\n" + (slow if index == 0 else solution("reference.py")),
            purpose=Submission.Purpose.INTERVIEW,
        )
        for index in range(3)
    ]
    deadline = time.monotonic() + CLAIM_TIMEOUT_S
    while Submission.objects.get(pk=flood[0].pk).state != Submission.State.RUNNING:
        assert time.monotonic() < deadline, "the first job was never claimed"
        time.sleep(0.1)
    victim_user = get_user_model().objects.create_user("victim", password="pw-victim-1")
    victim = submission_create(
        user=victim_user, problem=softmax_problem, code=solution("reference.py")
    )
    graded = {s.pk: _graded_once(s.pk) for s in [*flood, victim]}
    started = sorted(graded, key=lambda pk: graded[pk].started_at)
    # One job of the flooding user was running when the victim submitted; the next is theirs.
    assert started == [flood[0].pk, victim.pk, flood[1].pk, flood[2].pk]
