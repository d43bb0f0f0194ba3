"""Loops fit the level: every coding problem can be solved in its round by a candidate at the
loop's level, and the rounds still add up to the loop's length."""

from __future__ import annotations

import random

import pytest

from grader.bank import problems_load
from grader.models import Problem
from interview import selectors, services
from interview.models import LEVEL_ORDER, Loop, LoopLength, RoundKind

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("length_min", LoopLength.values, ids=lambda m: f"{m}min")
@pytest.mark.parametrize("level", [str(level) for level in LEVEL_ORDER])
def test_every_loop_hands_out_a_problem_its_level_can_finish_in_its_round(
    bank, alice, level, length_min
):
    problems_load()
    seen = set()
    for seed in range(12):
        loop = services.loop_start(
            user=alice, level=level, length_min=length_min, rng=random.Random(seed)
        )
        rounds = list(loop.rounds.order_by("position"))
        assert sum(r.duration_s for r in rounds) == length_min * 60
        [coding] = [r for r in rounds if r.kind == RoundKind.CODING]
        problem = Problem.objects.get(slug=coding.problem_slug)
        problem_level, expected_min = selectors.problem_fit(problem)
        assert expected_min * 60 <= coding.duration_s
        assert LEVEL_ORDER.index(problem_level) <= LEVEL_ORDER.index(level)
        [concepts] = [r for r in rounds if r.kind == RoundKind.CONCEPTS]
        assert concepts.duration_s >= services.MIN_CONCEPT_MINUTES * 60
        assert concepts.items.count() * services.MINUTES_PER_QUESTION * 60 <= concepts.duration_s
        seen.add(problem.slug)
        Loop.objects.filter(pk=loop.pk).delete()
    if level == "junior" and length_min == 30:
        assert seen == {"cpu-softmax"}  # never the 35-minute allocator in a 10-minute round
    if level == "senior" and length_min == 60:
        assert "triton-attention" not in seen and len(seen) > 1


def test_a_long_problem_takes_its_time_from_the_concept_round(bank, alice):
    problems_load()
    loop = services.loop_start(user=alice, level="senior", length_min=60, rng=random.Random(0))
    coding = loop.rounds.get(kind=RoundKind.CODING)
    expected_min = selectors.problem_fit(Problem.objects.get(slug=coding.problem_slug))[1]
    assert expected_min > 20  # longer than the 60-minute plan's 20-minute coding round
    assert coding.duration_s == expected_min * 60
    concepts = loop.rounds.get(kind=RoundKind.CONCEPTS)
    assert concepts.duration_s == (20 - (expected_min - 20)) * 60
