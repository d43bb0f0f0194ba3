"""Scorecards: a finished loop's scores by topic and by round, a 1–4 rating, a study plan."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from grader.models import Submission
from grader.selectors import submissions_between
from interview import selectors
from interview.design import DesignPrompt, render
from interview.design.practice import grade_dict
from interview.models import Attempt, Loop, RoundKind

# Overall score → rating, in the style of interview feedback (4 strong hire … 1 no hire).
RATING_THRESHOLDS = ((0.85, 4), (0.65, 3), (0.40, 2), (0.0, 1))
RATING_LABELS = {4: "Strong hire", 3: "Hire", 2: "Lean no hire", 1: "No hire"}
# A topic or round at or above this share went well; below it, it enters the study plan.
WENT_WELL = 0.75
STUDY_PLAN_TOPICS = 3
STUDY_PLAN_QUESTIONS = 3
# Design rounds: the numeric sub-questions weigh as much as all written answers together.
DESIGN_NUMERIC_WEIGHT = 0.5


def rating_for(score: float) -> int:
    return next(rating for floor, rating in RATING_THRESHOLDS if score >= floor)


def design_round_score(
    prompt: DesignPrompt, result: Mapping[str, Any] | None, follow_ups: Mapping[str, Any]
) -> float:
    """What a loop's design round earns: DESIGN_NUMERIC_WEIGHT × the share of numbers within
    tolerance, the rest × the mean rubric score over its sections and follow-ups alike. A
    missing or late answer, the main one or a follow-up, earns nothing."""
    main = result if result and not result["late"] else None
    numeric_share = main["numeric_correct"] / len(prompt.numeric) if main else 0.0
    written = sum(s["score"] for s in main["sections"]) if main else 0.0
    written += sum(f["score"] for f in follow_ups.values() if not f["late"])
    written_share = written / (len(prompt.sections) + len(prompt.follow_ups))
    weight = DESIGN_NUMERIC_WEIGHT
    return round(weight * numeric_share + (1 - weight) * written_share, 4)


def _design_entry(loop_round) -> dict[str, Any]:
    """A design round's scorecard row: its score and the evidence for every graded answer."""
    entry = {
        "score": loop_round.score or 0.0,
        "design": loop_round.design_id,
        "submitted": loop_round.submitted_at is not None,
        "late": loop_round.late,
        # The prompt's version the round was drawn from and answered against.
        "version": loop_round.design_version.number if loop_round.design_version_id else None,
    }
    prompt = selectors.design_round_prompt(loop_round)
    if prompt is None:
        return entry
    params = loop_round.design["params"]
    result = loop_round.feedback if loop_round.submitted_at else {}
    follow_ups = [
        {"id": f.id, "prompt": render(f.prompt, params)}
        | loop_round.follow_ups.get(f.id, grade_dict(f.rubric, "", params))
        for f in prompt.follow_ups
    ]
    return entry | {
        "numeric": result.get("numeric", []),
        "numeric_correct": result.get("numeric_correct", 0),
        "sections": result.get("sections", []),
        "follow_ups": follow_ups,
    }


def _coding_result(loop: Loop, loop_round, now: datetime) -> dict[str, Any]:
    """The best graded submission of the round's problem made while the round was open."""
    submissions = submissions_between(
        loop.user_id, loop_round.problem_slug, loop_round.started_at or now, now
    )
    best, pending, late = None, 0, 0
    for submission in submissions:
        if loop_round.deadline and submission.created_at > loop_round.deadline:
            late += 1
            continue
        if submission.state != Submission.State.GRADED:
            pending += submission.state in (Submission.State.QUEUED, Submission.State.RUNNING)
            continue
        # Correctness scores the round; the grader's speed score (relative to the reference
        # solution) breaks ties between accepted submissions and is shown, not averaged in.
        rank = (submission.verdict == "accepted", submission.score or 0.0)
        if best is None or rank > best["rank"]:
            best = {
                "submission_id": submission.pk,
                "verdict": submission.verdict,
                # No number that was not measured: a kernel checked on a CPU worker is
                # correct with no speed score at all, never a speed of 0.
                "speed_score": submission.score if submission.speed_measured else None,
                "speed_measured": submission.speed_measured,
                # The problem's version it was graded against (its statement, tests, limits).
                "problem_version": submission.problem_version.number
                if submission.problem_version_id
                else None,
                "rank": rank,
            }
    if best:
        best.pop("rank")
    return {
        "score": 1.0 if best and best["verdict"] == "accepted" else 0.0,
        "best": best,
        "submissions": submissions.count(),
        "pending_at_finish": pending,
        "late": late,
    }


def scorecard_compute(loop: Loop, now: datetime) -> dict[str, Any]:
    """The scorecard of ``loop`` as of ``now``: late or missing answers score zero."""
    rounds, questions = [], []
    topics: dict[str, dict[str, Any]] = {}
    problems_to_study = []
    for loop_round in loop.rounds.order_by("position"):
        entry: dict[str, Any] = {
            "position": loop_round.position,
            "kind": loop_round.kind,
            "title": loop_round.title,
        }
        if loop_round.kind == RoundKind.CONCEPTS:
            attempts = {
                a.question_id: a
                for a in Attempt.objects.filter(loop_round=loop_round).select_related(
                    "question_version"
                )
            }
            total = 0.0
            items = loop_round.items.select_related("question").order_by("position")
            for item in items:
                attempt = attempts.get(item.question_id)
                counted = attempt.score if attempt and not attempt.late else 0.0
                total += counted
                question = item.question
                questions.append(
                    {
                        "bank_id": question.bank_id,
                        "topic": question.topic,
                        "level": question.level,
                        "prompt": selectors.question_title(question, item.params),
                        "answered": attempt is not None,
                        "late": bool(attempt and attempt.late),
                        "score": round(counted, 4),
                        "correct": bool(attempt and attempt.correct and not attempt.late),
                        "version": attempt.question_version.number
                        if attempt and attempt.question_version_id
                        else None,
                    }
                )
                topic = topics.setdefault(
                    question.topic, {"topic": question.topic, "questions": 0, "score": 0.0}
                )
                topic["questions"] += 1
                topic["score"] += counted
            count = len(items)
            entry |= {
                "score": round(total / count, 4) if count else 0.0,
                "questions": count,
                "answered": len(attempts),
                "late": sum(a.late for a in attempts.values()),
            }
        elif loop_round.kind == RoundKind.CODING:
            result = _coding_result(loop, loop_round, now)
            entry |= {"score": round(result["score"], 4), "problem": loop_round.problem_slug}
            entry |= {k: result[k] for k in ("best", "submissions", "pending_at_finish", "late")}
            if result["score"] < WENT_WELL:
                problems_to_study.append(loop_round.problem_slug)
        else:
            entry |= _design_entry(loop_round)
        rounds.append(entry)
    for topic in topics.values():
        topic["score"] = round(topic["score"], 4)
        topic["share"] = round(topic["score"] / topic["questions"], 4)
    topic_rows = sorted(topics.values(), key=lambda t: t["topic"])
    overall = round(sum(r["score"] for r in rounds) / len(rounds), 4) if rounds else 0.0
    rating = rating_for(overall)
    went_well = [f"{t['topic']}: {t['share']:.0%}" for t in topic_rows if t["share"] >= WENT_WELL]
    went_well += [
        f"{r['kind']} round: {r['score']:.0%}"
        for r in rounds
        if r["kind"] != RoundKind.CONCEPTS and r["score"] >= WENT_WELL
    ]
    weakest = sorted(
        (t for t in topic_rows if t["share"] < WENT_WELL), key=lambda t: (t["share"], t["topic"])
    )[:STUDY_PLAN_TOPICS]
    study_plan = [
        {
            "topic": t["topic"],
            "share": t["share"],
            "questions": [
                q["bank_id"] for q in questions if q["topic"] == t["topic"] and not q["correct"]
            ][:STUDY_PLAN_QUESTIONS],
        }
        for t in weakest
    ]
    return {
        "overall": overall,
        "rating": rating,
        "rating_label": RATING_LABELS[rating],
        "rounds": rounds,
        "topics": topic_rows,
        "questions": questions,
        "went_well": went_well,
        "study_plan": study_plan,
        "study_problems": problems_to_study,
    }
