"""The practice list scales to the whole bank: pages grouped by topic, filters by topic, level
and state, marks for where the person stands, search, and titles with no raw placeholders."""

from __future__ import annotations

import re

import pytest

from interview import services
from interview.models import Question, ReviewCard
from interview.views import PRACTICE_PAGE_SIZE
from tests.interview.conftest import right_answer, wrong_answer

pytestmark = pytest.mark.django_db


def _answer(user, bank_id: str, answer) -> None:
    question = Question.objects.get(bank_id=bank_id)
    draw = services.practice_draw(question)
    services.practice_answer(
        user=user,
        question=question,
        data=answer(question, draw.params, draw.option_order),
        token=draw.token,
    )


def _listed(page: str) -> list[str]:
    return re.findall(r'href="/practice/([a-z0-9-]+)/"', page)


def test_states_filter_and_mark_each_question(client, bank, alice):
    _answer(alice, "kv-what-is-cached", right_answer)
    _answer(alice, "kv-why-it-matters", wrong_answer)  # a miss: its card is due today
    _answer(alice, "pa-block-table", wrong_answer)
    card = ReviewCard.objects.get(user=alice, question__bank_id="pa-block-table", point_id="")
    services.review_rate(user=alice, card_id=card.pk, rating=4)  # not due today, still missed
    client.force_login(alice)

    def listed(state: str) -> list[str]:
        query = {"state": state, "topic": "kv-cache"} if state == "new" else {"state": state}
        return _listed(client.get("/practice/", query).content.decode())

    assert listed("mastered") == ["kv-what-is-cached"]
    assert listed("due") == ["kv-why-it-matters"]
    assert listed("missed") == ["pa-block-table"]
    new = listed("new")
    assert "kv-what-is-cached" not in new and "kv-mqa" in new
    page = client.get("/practice/", {"topic": "kv-cache"}).content.decode()
    assert re.search(r'class="state-mastered"><span class="mark mark-mastered"[^>]*>✓', page)


def test_pages_group_by_topic_and_titles_never_show_placeholders(client, bank, alice):
    client.force_login(alice)
    total = Question.objects.filter(published=True).count()
    assert total > PRACTICE_PAGE_SIZE  # the guard: more than one page to walk
    seen: list[str] = []
    page_number = 1
    while True:
        page = client.get("/practice/", {"page": page_number}).content.decode()
        ids = _listed(page)
        assert len(ids) <= PRACTICE_PAGE_SIZE
        seen += ids
        text = re.sub(r"<[^>]+>", "", page)
        assert not re.search(r"\{[a-z_.]+\}", text), "a raw placeholder reached the page"
        assert '<h2 id="topic-' in page
        if 'rel="next"' not in page:
            break
        page_number += 1
    assert sorted(seen) == sorted(
        Question.objects.filter(published=True).values_list("bank_id", flat=True)
    )


def test_search_finds_questions_by_their_words(client, bank, alice):
    client.force_login(alice)
    page = client.get("/practice/", {"q": "autoregressive decoding"}).content.decode()
    assert "kv-what-is-cached" in _listed(page)
    assert all(
        "autoregressive decoding" in Question.objects.get(bank_id=b).prompt.lower()
        for b in _listed(page)
    )
    nothing = client.get("/practice/", {"q": "no question says zyzzyva"}).content.decode()
    assert _listed(nothing) == [] and "No question matches" in nothing


def test_explanations_are_paragraphs_not_hard_line_breaks(client, bank, alice):
    client.force_login(alice)
    page = client.get("/practice/kv-what-is-cached/").content.decode()
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    answered = client.post("/practice/kv-what-is-cached/", {"choice": "1", "token": token})
    explanation = answered.content.decode().split('<div class="explanation">')[1].split("</div>")[0]
    assert "<br>" not in explanation  # a wrapped line is one paragraph, as Markdown reads it
    assert "earlier tokens. Those keys" in explanation and explanation.strip().startswith("<p>")
