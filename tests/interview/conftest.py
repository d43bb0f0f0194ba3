"""Fixtures for the interview app: the real bank loaded once per test, users, answers."""

from __future__ import annotations

from datetime import timedelta
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


def right_answer(question: Question, params: dict[str, Any]) -> dict[str, Any]:
    """Form data that answers ``question`` correctly for the drawn ``params``."""
    spec = question.spec
    if spec["type"] == "single_choice":
        return {"choice": str(spec["answer"])}
    if spec["type"] == "multiple_choice":
        return {"choices": [str(i) for i in spec["answer"]]}
    if spec["type"] in ("numeric", "parametric"):
        return {"value": repr(expected_number(spec, params))}
    return {"text": spec["model_answer"]}


def wrong_answer(question: Question, params: dict[str, Any]) -> dict[str, Any]:
    """Form data that answers ``question`` wrongly (score 0)."""
    spec = question.spec
    if spec["type"] == "single_choice":
        return {"choice": str((spec["answer"] + 1) % len(spec["choices"]))}
    if spec["type"] == "multiple_choice":
        wrong = [i for i in range(len(spec["choices"])) if i not in spec["answer"]]
        return {"choices": [str(i) for i in wrong]}
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
