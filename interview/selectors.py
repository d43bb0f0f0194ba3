"""Interview selectors: the functions that read."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from django.db.models import Count, QuerySet
from django.utils import timezone

from interview.models import Attempt, Loop, LoopRound, LoopStatus, Question, ReviewCard


def questions_published(topic: str | None = None, level: str | None = None) -> QuerySet[Question]:
    """Published questions, optionally of one topic and one level, in bank order."""
    questions = Question.objects.filter(published=True)
    if topic:
        questions = questions.filter(topic=topic)
    if level:
        questions = questions.filter(level=level)
    return questions.order_by("topic", "position", "bank_id")


def question_published_get(bank_id: str) -> Question:
    """One published question (raises Question.DoesNotExist)."""
    return Question.objects.get(bank_id=bank_id, published=True)


def topics_counts() -> list[dict[str, Any]]:
    """Each topic with its number of published questions."""
    return list(
        Question.objects.filter(published=True)
        .values("topic")
        .annotate(count=Count("id"))
        .order_by("topic")
    )


def loops_of(user) -> QuerySet[Loop]:
    """A user's loops, newest first."""
    return Loop.objects.filter(user=user).order_by("-started_at")


def loop_active_of(user) -> Loop | None:
    return Loop.objects.filter(user=user, status=LoopStatus.ACTIVE).first()


def loop_get(user, loop_id: int) -> Loop:
    """One of the user's loops (raises Loop.DoesNotExist for anyone else's)."""
    return Loop.objects.get(pk=loop_id, user=user)


def round_items_with_attempts(loop_round: LoopRound) -> list[dict[str, Any]]:
    """The round's questions in order, each with the candidate's attempt (or None)."""
    attempts = {a.question_id: a for a in Attempt.objects.filter(loop_round=loop_round)}
    return [
        {"item": item, "question": item.question, "attempt": attempts.get(item.question_id)}
        for item in loop_round.items.select_related("question").order_by("position")
    ]


def reviews_due(user, now: datetime | None = None) -> QuerySet[ReviewCard]:
    """The user's review cards due now, most overdue first."""
    return (
        ReviewCard.objects.filter(user=user, due__lte=now or timezone.now())
        .select_related("question")
        .order_by("due", "pk")
    )


def reviews_due_count(user, now: datetime | None = None) -> int:
    return reviews_due(user, now).count()


def topic_progress(user) -> list[dict[str, Any]]:
    """Per topic: attempts, share correct, and the share correct per ISO week, oldest first."""
    weekly: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    rows = Attempt.objects.filter(user=user).values_list("question__topic", "correct", "created_at")
    for topic, correct, created_at in rows:
        year, week, _ = created_at.isocalendar()
        cell = weekly[topic][f"{year}-W{week:02d}"]
        cell[0] += 1
        cell[1] += int(correct)
        totals[topic][0] += 1
        totals[topic][1] += int(correct)
    return [
        {
            "topic": topic,
            "attempts": totals[topic][0],
            "correct": totals[topic][1],
            "share": totals[topic][1] / totals[topic][0],
            "weeks": [
                {"week": week, "attempts": n, "share": ok / n}
                for week, (n, ok) in sorted(weekly[topic].items())
            ],
        }
        for topic in sorted(totals)
    ]


def coding_round_context(user, loop_round: LoopRound) -> dict[str, Any]:
    """The round's grader problem and the user's submissions to it since the round opened."""
    from grader.models import Problem
    from grader.selectors import submissions_of

    problem = Problem.objects.filter(slug=loop_round.problem_slug).first()
    submissions = [
        s
        for s in submissions_of(user, loop_round.problem_slug)
        if s.created_at >= loop_round.started_at
    ]
    return {"problem": problem, "submissions": submissions}


def design_round_context(loop_round: LoopRound) -> dict[str, Any]:
    """The design prompt with this loop's drawn numbers, its numeric questions and sections."""
    from interview.design import load_design_prompts, numeric_answer, render

    prompt = next((p for p in load_design_prompts() if p.id == loop_round.design_id), None)
    if prompt is None:
        return {"design_prompt": None}
    params = loop_round.design["params"]
    return {
        "design_prompt": prompt,
        "design_text": render(prompt.prompt, params),
        "design_numeric": [(q.id, numeric_answer(q, params)) for q in prompt.numeric],
        "design_sections": prompt.sections,
    }
