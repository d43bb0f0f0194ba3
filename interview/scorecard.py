"""Scorecards: a finished loop's scores by topic and by round, a 1–4 rating, a study plan."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from interview.models import Attempt, Loop, RoundKind
from interview.question_bank import template_render

# Overall score → rating, in the style of interview feedback (4 strong hire … 1 no hire).
RATING_THRESHOLDS = ((0.85, 4), (0.65, 3), (0.40, 2), (0.0, 1))
RATING_LABELS = {4: "Strong hire", 3: "Hire", 2: "Lean no hire", 1: "No hire"}
# A topic or round at or above this share went well; below it, it enters the study plan.
WENT_WELL = 0.75
STUDY_PLAN_TOPICS = 3
STUDY_PLAN_QUESTIONS = 3
# Design rounds: numeric sub-questions and written sections weigh the same.
DESIGN_NUMERIC_WEIGHT = 0.5


def rating_for(score: float) -> int:
    return next(rating for floor, rating in RATING_THRESHOLDS if score >= floor)


def design_grade(
    design: Mapping[str, Any], data: Mapping[str, Any]
) -> tuple[dict[str, str], float, dict[str, Any]]:
    """Grade a design round: numbers against the capacity model, sections by rubric coverage."""
    from interview.design import (
        grade_section,
        load_design_prompts,
        numeric_answer,
        numeric_correct,
    )

    prompt = next(p for p in load_design_prompts() if p.id == design["id"])
    params = design["params"]
    numeric = []
    for question in prompt.numeric:
        answer = numeric_answer(question, params)
        raw = str(data.get(f"numeric-{question.id}", "")).replace(",", "").strip()
        try:
            given = float(raw)
        except ValueError:
            given = None
        numeric.append(
            {
                "id": question.id,
                "question": answer.question,
                "given": given,
                "expected": answer.value,
                "unit": answer.unit,
                "correct": given is not None and numeric_correct(answer, given),
                "derivation": answer.derivation,
            }
        )
    sections = []
    for section in prompt.sections:
        text = str(data.get(f"section-{section.name}", "")).strip()
        grade = grade_section(section.rubric, text, params) if text else None
        sections.append(
            {
                "name": section.name,
                "score": round(grade.score, 4) if grade else 0.0,
                "covered": [e.point_id for e in grade.points if e.covered] if grade else [],
                "missed": [e.point_id for e in grade.points if not e.covered]
                if grade
                else [p.id for p in section.rubric.points],
            }
        )
    numeric_share = sum(n["correct"] for n in numeric) / len(numeric) if numeric else None
    section_share = sum(s["score"] for s in sections) / len(sections) if sections else 0.0
    score = (
        section_share
        if numeric_share is None
        else DESIGN_NUMERIC_WEIGHT * numeric_share + (1 - DESIGN_NUMERIC_WEIGHT) * section_share
    )
    response = {k: str(v) for k, v in data.items() if k.startswith(("numeric-", "section-"))}
    return response, round(score, 4), {"numeric": numeric, "sections": sections}


def _coding_result(loop: Loop, loop_round, now: datetime) -> dict[str, Any]:
    """The best graded submission of the round's problem made while the round was open."""
    from grader.models import Submission

    submissions = Submission.objects.filter(
        user_id=loop.user_id,
        problem__slug=loop_round.problem_slug,
        created_at__gte=loop_round.started_at or now,
        created_at__lte=now,
    ).order_by("created_at")
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
                "speed_score": submission.score,
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
            attempts = {a.question_id: a for a in Attempt.objects.filter(loop_round=loop_round)}
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
                        "prompt": template_render(question.prompt, item.params)
                        .strip()
                        .splitlines()[0][:160],
                        "answered": attempt is not None,
                        "late": bool(attempt and attempt.late),
                        "score": round(counted, 4),
                        "correct": bool(attempt and attempt.correct and not attempt.late),
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
            submitted = loop_round.submitted_at is not None and not loop_round.late
            entry |= {
                "score": loop_round.score if submitted and loop_round.score is not None else 0.0,
                "design": loop_round.design_id,
                "submitted": loop_round.submitted_at is not None,
                "late": loop_round.late,
                "numeric": loop_round.feedback.get("numeric", []),
                "sections": loop_round.feedback.get("sections", []),
            }
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
