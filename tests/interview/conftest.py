"""Fixtures for the interview app: the real bank loaded once per test, users, answers."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from typing import Any

import pytest

from interview.models import LoopRound, Question
from interview.question_bank import expected_number, questions_load


@pytest.fixture
def bank(db) -> int:
    return questions_load()


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user(
        "alice", email="alice@example.com", password="correct-horse-42"
    )


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user(
        "bob", email="bob@example.com", password="battery-staple-42"
    )


OPTION = re.compile(
    r'<input type="(?:radio|checkbox)" name="choices?" value="(\d+)" id="([^"]+)"[^>]*>'
    r'<label for="\2">([^<]*)</label>'
)


def options_on_page(html: str) -> list[str]:
    """A choice question's option texts in the order the page shows them (its positions)."""
    found = OPTION.findall(html)
    assert [int(value) for value, _, _ in found] == list(range(len(found)))
    return [unescape(text) for _, _, text in found]


def bank_choice(question: Question, html: str, right: bool) -> dict[str, str]:
    """Form data picking the page's shown position of the question's right (or a wrong) option."""
    spec = question.spec
    index = spec["answer"] if right else (spec["answer"] + 1) % len(spec["choices"])
    return {"choice": str(options_on_page(html).index(spec["choices"][index]))}


def _shown(option_order: list[int], indices: list[int]) -> list[str]:
    """The shown positions of bank options ``indices`` under an attempt's ``option_order``."""
    return [str(option_order.index(i) if option_order else i) for i in indices]


def right_answer(
    question: Question, params: dict[str, Any], option_order: list[int] = ()
) -> dict[str, Any]:
    """Form data that answers ``question`` correctly for the drawn ``params``, its options
    shown in ``option_order`` (bank indices in shown order; empty for bank order)."""
    spec = question.spec
    if spec["type"] == "single_choice":
        return {"choice": _shown(list(option_order), [spec["answer"]])[0]}
    if spec["type"] == "multiple_choice":
        return {"choices": _shown(list(option_order), spec["answer"])}
    if spec["type"] in ("numeric", "parametric"):
        return {"value": repr(expected_number(spec, params))}
    return {"text": spec["model_answer"]}


def wrong_answer(
    question: Question, params: dict[str, Any], option_order: list[int] = ()
) -> dict[str, Any]:
    """Form data that answers ``question`` wrongly (score 0)."""
    spec = question.spec
    if spec["type"] == "single_choice":
        wrong = (spec["answer"] + 1) % len(spec["choices"])
        return {"choice": _shown(list(option_order), [wrong])[0]}
    if spec["type"] == "multiple_choice":
        wrong = [i for i in range(len(spec["choices"])) if i not in spec["answer"]]
        return {"choices": _shown(list(option_order), wrong)}
    if spec["type"] in ("numeric", "parametric"):
        return {"value": repr(expected_number(spec, params) * 3 + 1)}
    return {"text": "I am not sure."}


def clock_back(loop_round: LoopRound, minutes: float) -> LoopRound:
    """Move an opened round's start and deadline back by `minutes`, as if they had passed."""
    shift = timedelta(minutes=minutes)
    LoopRound.objects.filter(pk=loop_round.pk).update(
        started_at=loop_round.started_at - shift, deadline=loop_round.deadline - shift
    )
    loop_round.refresh_from_db()
    return loop_round
