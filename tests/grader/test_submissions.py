"""Submission services without a worker: validation, events, abort, re-grade, lost jobs, live progress."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async as db_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import Client
from django.utils import timezone

from grader import services
from grader.bank import bank_problems, problem_snapshot, problems_load
from grader.harnesses.contract import Verdict
from grader.models import Problem, Submission, SubmissionEvent
from grader.services import (
    SubmissionRejected,
    problem_regrade,
    submission_abort,
    submission_create,
    submission_event_add,
    submissions_reap_lost,
)
from grader.versions import content_hash
from interview.asgi import application
from tests.conftest import REPO
from tests.grader.conftest import SOFTMAX


@pytest.fixture
def queued(monkeypatch):
    """Record enqueued jobs instead of sending them: these tests run no worker."""
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(
        services, "_enqueue", lambda s, countdown_s=0: sent.append((s.pk, s.attempt))
    )
    return sent


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("x = 1\n" * (2 * 1024 * 1024), "the limit for this problem is 262144 bytes"),
        ("def softmax(x):\x00\n    return x\n", "NUL bytes"),
    ],
    ids=["10-MB-source", "nul-bytes"],
)
def test_bad_source_is_rejected_at_submission_and_nothing_is_stored(
    softmax_problem, user, queued, code, words
):
    with pytest.raises(SubmissionRejected, match=words):
        submission_create(user=user, problem=softmax_problem, code=code)
    assert Submission.objects.count() == 0
    assert SubmissionEvent.objects.count() == 0
    assert queued == []


def test_unpublished_problem_is_refused(softmax_problem, user, queued):
    Problem.objects.filter(pk=softmax_problem.pk).update(published=False)
    softmax_problem.refresh_from_db()
    with pytest.raises(SubmissionRejected, match="not published"):
        submission_create(user=user, problem=softmax_problem, code="x = 1\n")
    assert Submission.objects.count() == 0


def test_load_bank_is_idempotent_by_slug(transactional_db):
    shipped = len(bank_problems())
    assert problems_load() == shipped
    Problem.objects.filter(slug="int8-matmul").update(title="edited by an author")
    # cpu-softmax as an older bank shipped it, unedited since.
    older = Problem.objects.get(slug="cpu-softmax")
    older.title = "An older shipped title"
    older.shipped_hash = content_hash(problem_snapshot(older))
    older.save()
    assert problems_load() == shipped
    assert Problem.objects.count() == shipped
    # An author's edit is kept; an unedited shipped row is brought up to the bank's content.
    assert Problem.objects.get(slug="int8-matmul").title == "edited by an author"
    problem = Problem.objects.get(slug="cpu-softmax")
    assert problem.title == "Fast, stable softmax on the CPU"
    assert problem.harness == "function"
    assert len(problem.as_spec().tests) == 10


def test_create_queues_once_with_a_secret_seed_and_a_first_event(softmax_problem, user, queued):
    submission = submission_create(user=user, problem=softmax_problem, code="x = 1\n")
    assert queued == [(submission.pk, 0)]
    assert submission.state == Submission.State.QUEUED
    assert submission.seed > 0
    [event] = SubmissionEvent.objects.filter(submission=submission)
    assert (event.seq, event.kind) == (1, "queued")


def test_abort_stops_a_queued_submission_and_its_late_job_does_nothing(
    softmax_problem, user, queued
):
    submission = submission_create(user=user, problem=softmax_problem, code="x = 1\n")
    assert submission_abort(submission.pk) is True
    assert submission_abort(submission.pk) is False
    assert services.submission_grade(submission.pk, 0, "late-worker") is None
    submission.refresh_from_db()
    assert (submission.state, submission.verdict) == (Submission.State.ABORTED, "")


def _make_running(submission: Submission, attempt: int, seconds_ago: float) -> None:
    Submission.objects.filter(pk=submission.pk).update(
        state=Submission.State.RUNNING,
        attempt=attempt,
        worker_hostname="dead@host",
        heartbeat_at=timezone.now() - timedelta(seconds=seconds_ago),
    )


def test_a_lost_job_is_requeued_then_an_internal_error_never_stuck(softmax_problem, user, queued):
    submission = submission_create(user=user, problem=softmax_problem, code="x = 1\n")
    _make_running(submission, attempt=0, seconds_ago=1)
    assert submissions_reap_lost() == 0  # still beating
    _make_running(submission, attempt=0, seconds_ago=60)
    assert submissions_reap_lost() == 1
    submission.refresh_from_db()
    assert (submission.state, submission.attempt) == (Submission.State.QUEUED, 1)
    assert queued[-1] == (submission.pk, 1)
    _make_running(submission, attempt=services.MAX_ATTEMPTS - 1, seconds_ago=60)
    assert submissions_reap_lost() == 1
    submission.refresh_from_db()
    assert submission.state == Submission.State.GRADED
    assert submission.verdict == Verdict.INTERNAL_ERROR
    assert "not your fault" in submission.message


def test_regrade_requeues_graded_submissions_at_regrade_priority(softmax_problem, user, queued):
    submission = submission_create(user=user, problem=softmax_problem, code="x = 1\n")
    Submission.objects.filter(pk=submission.pk).update(
        state=Submission.State.GRADED, verdict="accepted", score=1.0, graded_at=timezone.now()
    )
    assert problem_regrade(softmax_problem) == 1
    submission.refresh_from_db()
    assert (submission.state, submission.verdict, submission.attempt) == ("queued", "", 1)
    assert submission.purpose == Submission.Purpose.REGRADE
    assert queued[-1] == (submission.pk, 1)


async def _socket_for(user, path: str) -> WebsocketCommunicator:
    client = Client()
    await db_async(client.force_login)(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    return WebsocketCommunicator(
        application, path, headers=[(b"cookie", cookie.encode()), (b"origin", b"http://127.0.0.1")]
    )


@pytest.mark.django_db(transaction=True)
async def test_progress_socket_replays_after_the_last_seen_event_then_streams(monkeypatch):
    monkeypatch.setattr(services, "_enqueue", lambda s, countdown_s=0: None)
    await db_async(problems_load)()
    owner = await db_async(get_user_model().objects.create_user)("owner", password="pw-1-x")
    other = await db_async(get_user_model().objects.create_user)("other", password="pw-2-x")
    problem = await db_async(Problem.objects.get)(slug="cpu-softmax")
    submission = await db_async(submission_create)(user=owner, problem=problem, code="x=1\n")
    for index in (1, 2):
        await db_async(submission_event_add)(submission.pk, "test", {"index": index})

    page = await _socket_for(owner, f"/ws/submissions/{submission.pk}/?after=1")
    assert (await page.connect())[0]
    replayed = [await page.receive_json_from(timeout=5) for _ in range(2)]
    assert [(e["seq"], e["kind"], e["data"]) for e in replayed] == [
        (2, "test", {"index": 1}),
        (3, "test", {"index": 2}),
    ]
    await db_async(submission_event_add)(submission.pk, "done", {"verdict": "accepted"})
    live = await page.receive_json_from(timeout=5)
    assert (live["seq"], live["kind"]) == (4, "done")
    assert await page.receive_nothing(timeout=0.6)
    await page.disconnect()

    stranger = await _socket_for(other, f"/ws/submissions/{submission.pk}/")
    connected, code = await stranger.connect()
    assert (connected, code) == (False, 4403)
    # The consumer's queries ran on asgiref's shared thread; leave no session open in it.
    await db_async(connections.close_all)()


def _grade_command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "grade", "--problem", "cpu-softmax", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_grade_command_json_for_the_reference_exits_zero():
    result = _grade_command("--reference", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["verdict"] == "accepted"
    assert report["sandbox"] == "bubblewrap"
    assert report["score"] > 0
    assert report["hardware"]["cpu_model"]
    assert [t["name"] for t in report["tests"]][:2] == ["small-float64", "random-float32"]
    assert set(report["tests"][0]) >= {"name", "verdict", "time_ms", "message"}


def test_grade_command_table_for_a_wrong_solution_exits_one():
    result = _grade_command(str(SOFTMAX / "wrong" / "wrong_axis.py"))
    assert result.returncode == 1
    assert "small-float64             wrong_answer" in result.stdout
    assert "verdict: wrong_answer" in result.stdout


def test_grade_command_refuses_a_file_with_nul_bytes(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_bytes(b"def softmax(x):\x00\n")
    result = _grade_command(str(bad))
    assert result.returncode != 0
    assert "NUL bytes" in result.stderr
