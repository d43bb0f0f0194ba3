"""A submission waiting while no worker runs says so on every page that shows it."""

from __future__ import annotations

import random

import pytest
from django.test import Client
from django.utils import timezone

from grader import services
from grader.bank import problems_load
from grader.models import Submission, Worker
from grader.ratelimit import buckets_reset
from grader.selectors import NO_WORKER_NOTE
from interview import services as interview_services
from interview.models import RoundKind
from tests.grader.conftest import solution


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    """Nothing consumes the jobs in these tests: keep them out of the broker."""
    buckets_reset()
    monkeypatch.setattr(services, "_enqueue", lambda s, countdown_s=0: None)


@pytest.fixture
def signed_in(alice) -> Client:
    problems_load()
    client = Client()
    client.force_login(alice)
    return client


def _live_worker() -> None:
    now = timezone.now()
    Worker.objects.create(hostname="w@test", queues=["cpu"], started_at=now, last_seen_at=now)


def _submit(client: Client) -> dict:
    reply = client.post(
        "/problems/cpu-softmax/submit/",
        {"code": solution("reference.py")},
        HTTP_ACCEPT="application/json",
    )
    assert reply.status_code == 201
    return reply.json()


def _note_shown(html: str, element_id: str = "no-worker") -> bool:
    return f'<p id="{element_id}" class="msg-warning" role="status">{NO_WORKER_NOTE}</p>' in html


@pytest.mark.django_db(transaction=True)
def test_a_submit_with_no_live_worker_says_it_waits_for_one(signed_in):
    reply = _submit(signed_in)
    assert reply["no_worker"] == NO_WORKER_NOTE
    assert _note_shown(signed_in.get(reply["url"]).content.decode())
    assert _note_shown(signed_in.get("/problems/cpu-softmax/").content.decode())


@pytest.mark.django_db(transaction=True)
def test_with_a_live_worker_the_pages_show_only_the_progress(signed_in):
    _live_worker()
    reply = _submit(signed_in)
    assert reply["no_worker"] == ""
    assert NO_WORKER_NOTE not in signed_in.get(reply["url"]).content.decode()
    graded = Submission.objects.get(pk=reply["id"])
    Submission.objects.filter(pk=graded.pk).update(
        state="graded", verdict="accepted", score=1.0, graded_at=timezone.now()
    )
    Worker.objects.all().delete()
    assert NO_WORKER_NOTE not in signed_in.get(reply["url"]).content.decode()  # graded already


@pytest.mark.django_db(transaction=True)
def test_a_coding_round_with_a_waiting_submission_and_no_worker_says_so(bank, alice, signed_in):
    loop = interview_services.loop_start(
        user=alice, level="mid", length_min=30, rng=random.Random(4)
    )
    coding = loop.rounds.get(kind=RoundKind.CODING)
    url = f"/loops/{loop.pk}/rounds/{coding.position}/"
    page = signed_in.post(url + "submit/", {"code": solution("reference.py")}, follow=True)
    assert page.status_code == 200
    # The round's own note; the Run's live view below the editor has its own (hidden) one.
    assert _note_shown(page.content.decode(), "round-no-worker")
    _live_worker()
    assert NO_WORKER_NOTE not in signed_in.get(url).content.decode()
