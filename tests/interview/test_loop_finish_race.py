"""An answer being graded while its loop is finished is refused, never stored after the
scorecard was computed (where it would be lost without a word)."""

from __future__ import annotations

import random

import pytest

from interview import services
from interview.design import practice
from interview.models import LoopItem, LoopRound, RoundKind
from tests.interview.conftest import right_answer

pytestmark = pytest.mark.django_db


def _finish_while_grading(monkeypatch, module, name: str, user, loop) -> None:
    grade = getattr(module, name)

    def grade_then_finish(*args, **kwargs):
        graded = grade(*args, **kwargs)
        services.loop_finish(user=user, loop_id=loop.pk)
        return graded

    monkeypatch.setattr(module, name, grade_then_finish)


def test_a_follow_up_graded_while_the_loop_finishes_is_refused_not_lost(monkeypatch, alice):
    loop = services.loop_start(user=alice, level="senior", length_min=30, rng=random.Random(2))
    design = loop.rounds.get(kind=RoundKind.DESIGN)
    services.round_submit(user=alice, round_id=design.pk, data={})  # releases every follow-up
    follow_up = services.selectors.design_round_prompt(design).follow_ups[0]
    _finish_while_grading(monkeypatch, practice, "follow_up_grade", alice, loop)

    with pytest.raises(services.LoopError):
        services.design_follow_up_answer(
            user=alice, round_id=design.pk, follow_up_id=follow_up.id, text="Shed load early."
        )

    assert LoopRound.objects.get(pk=design.pk).follow_ups == {}


def test_a_concept_answer_graded_while_the_loop_finishes_is_refused_not_lost(
    monkeypatch, bank, alice
):
    loop = services.loop_start(user=alice, level="mid", length_min=30, rng=random.Random(2))
    item = LoopItem.objects.filter(round__loop=loop).first()
    _finish_while_grading(monkeypatch, services, "response_grade", alice, loop)

    with pytest.raises(services.LoopError):
        services.answer_submit(
            user=alice, item_id=item.pk, data=right_answer(item.question, item.params)
        )

    assert not item.round.attempts.exists()
