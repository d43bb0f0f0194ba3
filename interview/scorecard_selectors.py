"""What a finished loop's scorecard draws: score per round and per topic, and each round's
time used against its time allotted. Selectors (they only read); the charts only lay it out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Max

from grader.selectors import submission_last_at
from interview.models import Attempt, Loop, LoopRound, RoundKind


def scorecard_charts(loop: Loop) -> dict[str, Any]:
    """Chart data of a finished loop, from its stored scorecard and its rounds' clocks.

    A round's time used runs from opening it to the last answer, submission or design given
    in it before the loop finished (0 when nothing was given, or it was never opened).
    """
    card = loop.scorecard or {}
    scores = {entry["position"]: entry["score"] for entry in card.get("rounds", [])}
    rounds = []
    for loop_round in loop.rounds.order_by("position"):
        label = f"{loop_round.position + 1}. {loop_round.get_kind_display()}"
        used_s = _time_used_s(loop, loop_round)
        rounds.append(
            {
                "label": label,
                "score_pct": round(100 * scores.get(loop_round.position, 0.0), 1),
                "allotted_min": round(loop_round.duration_s / 60, 2),
                "used_min": round(used_s / 60, 2),
            }
        )
    topics = [
        {"topic": topic["topic"], "score_pct": round(100 * topic["share"], 1)}
        for topic in card.get("topics", [])
    ]
    summary = "; ".join(
        f"{r['label']}: {r['used_min']:g} of {r['allotted_min']:g} minutes" for r in rounds
    )
    return {"rounds": rounds, "topics": topics, "time_summary": summary}


def _time_used_s(loop: Loop, loop_round: LoopRound) -> float:
    if loop_round.started_at is None:
        return 0.0
    last = _last_answer_at(loop, loop_round)
    if last is None:
        return 0.0
    return max((last - loop_round.started_at).total_seconds(), 0.0)


def _last_answer_at(loop: Loop, loop_round: LoopRound) -> datetime | None:
    """When the round last got an answer: a concept answer, a submission, the design."""
    if loop_round.kind == RoundKind.CONCEPTS:
        return Attempt.objects.filter(loop_round=loop_round).aggregate(last=Max("created_at"))[
            "last"
        ]
    if loop_round.kind == RoundKind.CODING:
        return submission_last_at(
            loop.user_id, loop_round.problem_slug, loop_round.started_at, loop.finished_at
        )
    return loop_round.submitted_at
