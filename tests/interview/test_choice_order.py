"""Choice options shuffled per attempt: the order is drawn once, kept with the attempt, shown
the same on every page of that attempt, and graded by the position the person clicked."""

from __future__ import annotations

import importlib
import json
import random
import re
from collections import Counter

import pytest
from django.apps import apps
from django.core import signing

from grader import access
from interview import services
from interview.grading import ResponseInvalid
from interview.models import Attempt, LoopItem, Question, ReviewCard, RoundKind
from tests.interview.conftest import bank_choice, options_on_page, right_answer

pytestmark = pytest.mark.django_db

SINGLE = "kv-what-is-cached"
MULTIPLE = "kv-why-it-matters"


def _token(html: str) -> str:
    return re.search(r'name="token" value="([^"]+)"', html).group(1)


def test_the_shuffle_varies_between_attempts_and_every_option_leads_sometimes(bank):
    question = Question.objects.get(bank_id=SINGLE)
    rng = random.Random(17)
    orders = [tuple(services.practice_draw(question, rng).option_order) for _ in range(48)]
    assert all(sorted(order) == [0, 1, 2, 3] for order in orders)
    assert len(set(orders)) >= 12
    assert set(Counter(order[0] for order in orders)) == {0, 1, 2, 3}


def _page_with_answers_moved(client, question: Question) -> str:
    """A practice page whose shuffle moved the right options off their bank positions, so
    grading by bank index instead of by shown position would be caught."""
    answer = question.spec["answer"]
    right = {answer} if isinstance(answer, int) else set(answer)
    texts = {question.spec["choices"][i] for i in right}
    for _ in range(50):
        page = client.get(f"/practice/{question.bank_id}/").content.decode()
        shown = options_on_page(page)
        if {i for i, text in enumerate(shown) if text in texts} != right:
            return page
    raise AssertionError("50 shuffles all kept the answers in place")


def test_a_practice_attempt_keeps_its_order_from_page_to_grade(client, bank, alice):
    client.force_login(alice)
    question = Question.objects.get(bank_id=SINGLE)
    page = _page_with_answers_moved(client, question)
    shown = options_on_page(page)
    payload = signing.loads(_token(page), salt=services.PRACTICE_SALT)
    assert shown == [question.spec["choices"][i] for i in payload["o"]]

    html = client.post(
        f"/practice/{SINGLE}/", bank_choice(question, page, right=True) | {"token": _token(page)}
    ).content.decode()
    attempt = Attempt.objects.get(user=alice)
    assert "Correct" in html and attempt.correct
    assert attempt.response == {"choice": question.spec["answer"]}
    assert attempt.option_order == payload["o"]
    assert [c["text"] for c in attempt.feedback["choices"]] == shown
    assert [c["picked"] for c in attempt.feedback["choices"]] == [
        text == question.spec["choices"][question.spec["answer"]] for text in shown
    ]
    feedback_order = re.findall(r"<li class=\"[^\"]*\">([^<]+)", html)
    assert [text.strip() for text in feedback_order] == shown


def test_every_page_load_is_a_new_attempt_with_its_own_order(client, bank, alice):
    client.force_login(alice)
    orders = {tuple(options_on_page(client.get(f"/practice/{SINGLE}/").content.decode()))}
    for _ in range(11):
        orders.add(tuple(options_on_page(client.get(f"/practice/{SINGLE}/").content.decode())))
    assert len(orders) > 1


def test_multiple_choice_is_graded_by_the_shown_positions(client, bank, alice):
    client.force_login(alice)
    question = Question.objects.get(bank_id=MULTIPLE)
    page = _page_with_answers_moved(client, question)
    shown = options_on_page(page)
    right_texts = [question.spec["choices"][i] for i in question.spec["answer"]]
    positions = [str(shown.index(text)) for text in right_texts]
    html = client.post(
        f"/practice/{MULTIPLE}/", {"choices": positions, "token": _token(page)}
    ).content.decode()
    attempt = Attempt.objects.get(user=alice)
    assert "Correct" in html and attempt.correct and attempt.score == 1.0
    assert attempt.response == {"choices": sorted(question.spec["answer"])}


@pytest.mark.parametrize(
    "position", ["4", "-1", "two", ""], ids=["past-end", "negative", "word", "empty"]
)
def test_a_position_that_was_not_shown_is_refused_and_changes_nothing(
    client, bank, alice, position
):
    client.force_login(alice)
    page = client.get(f"/practice/{SINGLE}/").content.decode()
    response = client.post(f"/practice/{SINGLE}/", {"choice": position, "token": _token(page)})
    assert response.status_code == 400
    assert not Attempt.objects.exists() and not ReviewCard.objects.exists()
    page = client.get(f"/practice/{MULTIPLE}/").content.decode()
    response = client.post(f"/practice/{MULTIPLE}/", {"choices": ["0", "9"], "token": _token(page)})
    assert response.status_code == 400
    assert not Attempt.objects.exists() and not ReviewCard.objects.exists()


def test_a_token_signed_before_shuffling_grades_in_bank_order(client, bank, alice):
    client.force_login(alice)
    question = Question.objects.get(bank_id=SINGLE)
    old_token = signing.dumps({"q": SINGLE, "p": {}}, salt=services.PRACTICE_SALT)
    client.post(f"/practice/{SINGLE}/", {"choice": question.spec["answer"], "token": old_token})
    attempt = Attempt.objects.get(user=alice)
    assert attempt.correct and attempt.option_order == [0, 1, 2, 3]


def test_a_token_whose_order_no_longer_fits_the_question_is_refused(client, bank, alice):
    client.force_login(alice)
    stale = signing.dumps({"q": SINGLE, "p": {}, "o": [2, 0, 1]}, salt=services.PRACTICE_SALT)
    response = client.post(f"/practice/{SINGLE}/", {"choice": "0", "token": stale})
    assert response.status_code == 400 and "changed" in response.content.decode()
    assert not Attempt.objects.exists()


def _concept_items(alice):
    loop = services.loop_start(user=alice, level="senior", length_min=60, rng=random.Random(5))
    round_ = loop.rounds.get(kind=RoundKind.CONCEPTS)
    items = list(LoopItem.objects.filter(round=round_).select_related("question"))
    return loop, round_, [i for i in items if i.question.type.endswith("_choice")]


def test_a_loop_round_shows_one_order_per_item_and_grades_by_it(client, bank, alice):
    client.force_login(alice)
    loop, round_, items = _concept_items(alice)
    assert items, "the drawn round has choice questions"
    assert any(item.option_order != sorted(item.option_order) for item in items)
    url = f"/loops/{loop.pk}/rounds/{round_.position}/"
    first, again = client.get(url).content.decode(), client.get(url).content.decode()

    def by_item(html: str) -> dict[int, list[str]]:
        parts = html.split('<li id="item-')[1:]
        return {int(part.split('"', 1)[0]): options_on_page(part) for part in parts}

    shown = by_item(first)
    for item in items:
        assert shown[item.pk] == [item.question.spec["choices"][i] for i in item.option_order]
    assert by_item(again) == shown

    item = items[0]
    data = right_answer(item.question, item.params, item.option_order)
    client.post(f"/loops/{loop.pk}/items/{item.pk}/answer/", data)
    attempt = Attempt.objects.get(loop_round=round_, question=item.question)
    assert attempt.correct and attempt.option_order == item.option_order
    assert [c["text"] for c in attempt.feedback["choices"]] == [
        item.question.spec["choices"][i] for i in item.option_order
    ]


def test_a_loop_answer_at_a_position_that_was_not_shown_is_refused(bank, alice):
    _, round_, items = _concept_items(alice)
    with pytest.raises(ResponseInvalid):
        services.answer_submit(user=alice, item_id=items[0].pk, data={"choice": "4"})
    assert not Attempt.objects.filter(loop_round=round_).exists()
    assert not ReviewCard.objects.exists()


def test_the_api_draws_shuffled_choices_and_grades_the_drawn_position(bank, alice):
    from django.test import Client

    client = Client(headers={"Authorization": f"Bearer {access.api_token_create(alice, 't')[1]}"})
    question = Question.objects.get(bank_id=SINGLE)
    right_text = question.spec["choices"][question.spec["answer"]]
    for _ in range(50):  # a draw that moved the answer, so grading by bank index would show
        drawn = client.get(f"/api/questions/{SINGLE}").json()
        texts = [c["text"] for c in drawn["choices"]]
        if texts.index(right_text) != question.spec["answer"]:
            break
    assert [c["index"] for c in drawn["choices"]] == [0, 1, 2, 3]
    assert sorted(texts) == sorted(question.spec["choices"])
    position = texts.index(right_text)
    answer = client.post(
        f"/api/questions/{SINGLE}/answer",
        data=json.dumps({"token": drawn["token"], "choice": position}),
        content_type="application/json",
    ).json()
    assert answer["correct"] is True
    assert Attempt.objects.get(user=alice).option_order == [
        question.spec["choices"].index(t) for t in texts
    ]


def test_the_migration_records_bank_order_for_attempts_made_before_shuffling(bank, alice):
    question = Question.objects.get(bank_id=SINGLE)
    wrong = (question.spec["answer"] + 1) % 4
    attempt = Attempt.objects.create(
        user=alice, question=question, response={"choice": wrong}, score=0, correct=False
    )
    migration = importlib.import_module("interview.migrations.0003_option_order")
    migration.record_file_order(apps, None)
    attempt.refresh_from_db()
    assert attempt.option_order == [0, 1, 2, 3]
    assert attempt.feedback["choices"] == [
        {"text": text, "picked": i == wrong, "correct": i == question.spec["answer"]}
        for i, text in enumerate(question.spec["choices"])
    ]
