"""The scorecard's charts: score per round and per topic, time used against time allotted."""

from __future__ import annotations

from datetime import timedelta

import pytest

from interview.models import Attempt, Loop, RoundKind
from interview.scorecard_selectors import scorecard_charts
from tests.interview.conftest import right_answer

pytestmark = pytest.mark.django_db


def test_the_charts_show_each_rounds_score_and_the_time_to_its_last_answer(client, bank, alice):
    client.force_login(alice)
    client.post("/loops/start/", {"level": "junior", "length_min": "30"})
    loop = Loop.objects.get(user=alice)
    concepts = loop.rounds.get(kind=RoundKind.CONCEPTS)
    items = list(concepts.items.select_related("question").order_by("position"))
    item = next(i for i in items if i.question.spec["type"] != "short_answer")
    client.post(
        f"/loops/{loop.pk}/items/{item.pk}/answer/",
        right_answer(item.question, item.params, item.option_order),
    )
    # The one answer came 90 s after the round opened; the design round was never opened.
    Attempt.objects.filter(loop_round=concepts).update(
        created_at=concepts.started_at + timedelta(seconds=90)
    )
    assert client.post(f"/loops/{loop.pk}/finish/").status_code == 302
    loop.refresh_from_db()

    charts = scorecard_charts(loop)
    assert charts["rounds"] == [
        {"label": "1. Concepts", "score_pct": 20.0, "allotted_min": 10.0, "used_min": 1.5},
        {"label": "2. System design", "score_pct": 0.0, "allotted_min": 10.0, "used_min": 0.0},
    ]
    same_topic = sum(i.question.topic == item.question.topic for i in items)
    topics = {t["topic"]: t["score_pct"] for t in charts["topics"]}
    assert topics == {
        i.question.topic: round(100 / same_topic, 1) if i.question.topic == item.question.topic
        else 0.0
        for i in items
    }  # fmt: skip
    assert charts["time_summary"] == (
        "1. Concepts: 1.5 of 10 minutes; 2. System design: 0 of 10 minutes"
    )

    page = client.get(f"/loops/{loop.pk}/scorecard/").content.decode()
    assert 'id="round-score-chart"' in page and 'id="topic-score-chart"' in page
    assert f'aria-label="Time used against time allotted per round: {charts["time_summary"]}"' in (
        page
    )
    assert '<script id="scorecard-data" type="application/json">' in page
