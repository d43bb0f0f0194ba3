"""A mock interview's coding round submits through the grader's limits, and only while open."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.test import Client

from grader import access, services
from grader.bank import problems_load
from grader.models import Submission
from interview import services as interview_services
from interview.models import RoundKind

CODE = "def softmax(x):\n    return x\n"


pytestmark = pytest.mark.usefixtures("fresh_buckets")


@pytest.fixture
def sent(monkeypatch) -> list[tuple[int, int]]:
    """The jobs handed to the broker: these tests run no worker."""
    jobs: list[tuple[int, int]] = []
    monkeypatch.setattr(
        services, "_enqueue", lambda s, countdown_s=0: jobs.append((s.pk, s.attempt))
    )
    return jobs


@pytest.fixture
def coding_round(bank, alice):
    problems_load()
    loop = interview_services.loop_start(
        user=alice, level="mid", length_min=30, rng=random.Random(4)
    )
    coding = loop.rounds.get(kind=RoundKind.CODING)
    return interview_services.round_open(user=alice, round_id=coding.pk)


@pytest.mark.django_db(transaction=True)
def test_a_coding_round_submits_within_the_same_limits_as_the_api(alice, coding_round, sent):
    for attempt in range(access.MAX_PENDING_PER_USER):
        interview_services.round_submit(
            user=alice, round_id=coding_round.pk, data={"code": f"# {attempt}\n{CODE}"}
        )
    with pytest.raises(access.LimitExceeded, match="waiting or running") as refused:
        interview_services.round_submit(user=alice, round_id=coding_round.pk, data={"code": CODE})
    assert (refused.value.status, refused.value.rule) == (429, "max_pending")
    rows = Submission.objects.filter(user=alice)
    assert rows.count() == access.MAX_PENDING_PER_USER
    assert set(rows.values_list("purpose", flat=True)) == {Submission.Purpose.INTERVIEW}
    assert len(sent) == 1  # one job in the broker per user, interview or not


@pytest.mark.django_db(transaction=True)
def test_a_coding_round_accepts_no_code_after_its_deadline(alice, coding_round, sent):
    after = coding_round.deadline + timedelta(seconds=1)
    with pytest.raises(interview_services.RoundClosed):
        interview_services.round_submit(
            user=alice, round_id=coding_round.pk, data={"code": CODE}, now=after
        )
    assert not Submission.objects.exists()
    assert sent == []


@pytest.mark.django_db(transaction=True)
def test_the_round_page_says_why_a_submit_was_refused_and_stores_nothing(
    alice, coding_round, sent, monkeypatch
):
    client = Client()
    client.force_login(alice)
    url = f"/loops/{coding_round.loop_id}/rounds/{coding_round.position}/submit/"
    monkeypatch.setattr(access, "MAX_PENDING_PER_USER", 0)
    page = client.post(url, {"code": CODE}, follow=True)
    assert page.status_code == 200
    assert "waiting or running (at most 0)" in page.content.decode()
    assert not Submission.objects.exists()
