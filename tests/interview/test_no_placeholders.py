"""No page shows a question's raw template: every `{model.name}` is filled by a draw first."""

from __future__ import annotations

import random
import re
from html import unescape

import pytest
from django.utils import timezone

from interview import services
from interview.models import LoopItem, Question, RoundKind
from interview.question_bank import PLACEHOLDER, parameters_draw
from tests.interview.conftest import wrong_answer

pytestmark = pytest.mark.django_db

HIDDEN = re.compile(r"<(script|style)\b.*?</\1>", re.S)


def placeholders(html: str) -> list[str]:
    """Template placeholders left in what a person reads (scripts and styles aside)."""
    return [m.group(0) for m in PLACEHOLDER.finditer(HIDDEN.sub("", html))]


def _token(html: str) -> str:
    return re.search(r'name="token" value="([^"]+)"', html).group(1)


def test_the_check_finds_a_raw_placeholder():
    assert placeholders("<p>{tokens} tokens through {model.name}</p>") == [
        "{tokens}",
        "{model.name}",
    ]
    assert placeholders('<script>const x = {model};</script><p>{"a": 1}</p>') == []


def test_the_practice_lists_show_no_placeholders(client, bank, alice):
    client.force_login(alice)
    assert Question.objects.filter(type="parametric").exists()
    pages = ["/practice/"] + [
        f"/practice/?topic={topic}"
        for topic in Question.objects.values_list("topic", flat=True).distinct()
    ]
    for url in pages:
        assert placeholders(client.get(url).content.decode()) == [], url


def test_every_question_page_and_its_feedback_show_no_placeholders(client, bank, alice):
    client.force_login(alice)
    for question in Question.objects.filter(published=True).exclude(type="short_answer"):
        url = f"/practice/{question.bank_id}/"
        page = client.get(url).content.decode()
        assert placeholders(page) == [], url
        data = {"value": "1"} if question.type in ("numeric", "parametric") else {"choice": "0"}
        if question.type == "multiple_choice":
            data = {"choices": ["0"]}
        feedback = client.post(url, data | {"token": _token(page)}).content.decode()
        assert "score" in feedback and placeholders(feedback) == [], url


def test_review_loop_round_and_scorecard_show_no_placeholders(client, bank, alice):
    client.force_login(alice)
    parametric = Question.objects.filter(type="parametric").first()
    services.review_card_create(alice, parametric, "", timezone.now())
    assert placeholders(client.get("/review/").content.decode()) == []

    loop = services.loop_start(user=alice, level="senior", length_min=60, rng=random.Random(3))
    round_ = loop.rounds.get(kind=RoundKind.CONCEPTS)
    item = LoopItem.objects.get(round=round_, position=0)
    if item.question.type != "parametric":
        drawn = set(round_.items.values_list("question", flat=True))
        item.question = Question.objects.filter(type="parametric").exclude(pk__in=drawn).first()
        item.params = parameters_draw(item.question.spec, random.Random(1))
        item.option_order = []
        item.save()
    round_page = client.get(f"/loops/{loop.pk}/rounds/{round_.position}/").content.decode()
    assert item.question.spec["prompt"].split("{")[0][:20] in unescape(round_page)
    assert placeholders(round_page) == []
    client.post(
        f"/loops/{loop.pk}/items/{item.pk}/answer/",
        wrong_answer(item.question, item.params, item.option_order),
    )
    client.post(f"/loops/{loop.pk}/finish/")
    assert placeholders(client.get(f"/loops/{loop.pk}/scorecard/").content.decode()) == []


def test_the_api_draw_shows_no_placeholders(client, bank, alice):
    client.force_login(alice)
    for question in Question.objects.filter(type="parametric"):
        drawn = client.get(f"/api/questions/{question.bank_id}").json()
        assert placeholders(drawn["prompt"]) == [], question.bank_id
