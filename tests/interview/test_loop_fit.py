"""Loops fit the level: every coding problem's difficulty is one the loop's level allows and
its expected time fits the round, every level still has a problem to draw, and the rounds
still add up to the loop's length."""

from __future__ import annotations

import random

import pytest

from grader.bank import DIFFICULTIES, problems_load
from grader.models import Problem
from grader.selectors import problem_fit
from interview import services
from interview.models import LEVEL_ORDER, Level, Loop, LoopLength, RoundKind

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
        difficulty, expected_min = problem_fit(problem)
        assert expected_min * 60 <= coding.duration_s
        ceiling = services.LEVEL_MAX_DIFFICULTY[Level(level)]
        assert DIFFICULTIES.index(difficulty) <= DIFFICULTIES.index(ceiling)
        [concepts] = [r for r in rounds if r.kind == RoundKind.CONCEPTS]
        assert concepts.duration_s >= services.MIN_CONCEPT_MINUTES * 60
        assert concepts.items.count() * services.MINUTES_PER_QUESTION * 60 <= concepts.duration_s
        seen.add(problem.slug)
        Loop.objects.filter(pk=loop.pk).delete()
    if level == "senior" and length_min == 60:
        assert "triton-attention" not in seen and len(seen) > 1  # 45 minutes: never fits


def _coding_minutes(length_min: int) -> int:
    """The most a loop of this length gives its coding round (the concept round's spare)."""
    plans = {plan.kind: plan for plan in services.LOOP_PLANS[length_min]}
    spare = plans[RoundKind.CONCEPTS].minutes - services.MIN_CONCEPT_MINUTES
    return plans[RoundKind.CODING].minutes + spare


@pytest.mark.parametrize("length_min", LoopLength.values, ids=lambda m: f"{m}min")
@pytest.mark.parametrize("level", [str(level) for level in LEVEL_ORDER])
def test_every_level_and_length_has_a_problem_of_an_allowed_difficulty_to_draw(
    bank, level, length_min
):
    problems_load()
    pool = services.coding_problems_fitting(level, _coding_minutes(length_min))
    assert pool, f"a {level} loop of {length_min} minutes has no coding problem to draw"
    ceiling = DIFFICULTIES.index(services.LEVEL_MAX_DIFFICULTY[Level(level)])
    for problem in pool:
        difficulty, expected_min = problem_fit(problem)
        assert DIFFICULTIES.index(difficulty) <= ceiling
        assert expected_min <= _coding_minutes(length_min)
    # The same call, the same pool, in the same order: a seeded loop is reproducible.
    assert services.coding_problems_fitting(level, _coding_minutes(length_min)) == pool


def test_a_junior_short_round_never_draws_a_hard_or_long_problem(bank):
    problems_load()
    minutes = _coding_minutes(30)
    pool = services.coding_problems_fitting("junior", minutes)
    assert {problem_fit(p) for p in pool} <= {("easy", m) for m in range(1, minutes + 1)}
    assert "kv-allocator" not in {p.slug for p in pool}
    assert problem_fit(Problem.objects.get(slug="kv-allocator")) == ("hard", 35)
    # Whatever the draw: 50 seeds of a junior 30-minute loop never see a hard problem.
    drawn = {services.coding_problem_pick("junior", minutes, random.Random(s)) for s in range(50)}
    assert drawn and all(problem_fit(p)[0] == "easy" for p in drawn)


def _toy(slug: str, difficulty: str, minutes: int) -> Problem:
    return Problem.objects.create(
        slug=slug,
        title=slug,
        statement_md="",
        harness="function",
        entry_point="f",
        starter_code="",
        reference_code="",
        oracle_code="",
        spec={"difficulty": difficulty, "expected_min": minutes},
        published=True,
    )


def test_the_rule_prefers_the_levels_difficulty_and_falls_back_only_to_easier_ones():
    easy, medium, hard = _toy("e", "easy", 10), _toy("m", "medium", 20), _toy("h", "hard", 30)
    assert services.coding_problems_fitting("junior", 60) == [easy]
    assert services.coding_problems_fitting("mid", 60) == [easy, medium]
    assert services.coding_problems_fitting("senior", 60) == [hard, medium]  # by slug
    assert services.coding_problems_fitting("staff", 60) == [hard, medium]
    # Too little time for the preferred ones: the hardest that fits, never a harder one.
    assert services.coding_problems_fitting("senior", 15) == [easy]
    assert services.coding_problems_fitting("junior", 9) == []
    Problem.objects.filter(pk=easy.pk).update(published=False)
    assert services.coding_problems_fitting("junior", 60) == []  # never a medium for a junior


def test_a_long_problem_takes_its_time_from_the_concept_round(bank, alice):
    problems_load()
    loop = services.loop_start(user=alice, level="senior", length_min=60, rng=random.Random(0))
    coding = loop.rounds.get(kind=RoundKind.CODING)
    expected_min = problem_fit(Problem.objects.get(slug=coding.problem_slug))[1]
    assert expected_min > 20  # longer than the 60-minute plan's 20-minute coding round
    assert coding.duration_s == expected_min * 60
    concepts = loop.rounds.get(kind=RoundKind.CONCEPTS)
    assert concepts.duration_s == (20 - (expected_min - 20)) * 60
