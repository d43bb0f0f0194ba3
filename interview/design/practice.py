"""A design round practised on its own: draw, time, grade with evidence, scripted follow-ups.

An attempt is a JSON-ready mapping (the page keeps it in the server-side session; a loop's
design round builds the same mapping from its row): the drawn parameters, when it started, the
graded answer and the graded follow-ups. The server decides when each follow-up is due:
`after_minutes` into the round, scaled by the attempt's `follow_up_scale` when the round is
shorter than the prompt's own length, or at once when the main answer is in. Plain Python: no
Django.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from interview.design import (
    DesignPrompt,
    FollowUp,
    answer_as_dict,
    draw_parameters,
    grade_section,
    numeric_answer,
    numeric_reading,
    render,
)

# Grading embeds every sentence with MiniLM; a longer answer costs seconds of CPU per request.
MAX_ANSWER_CHARS = 6000


class AnswerInvalid(ValueError):
    """The submitted form cannot be graded; `errors` maps field names to messages."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class FollowUpNotDue(ValueError):
    """A follow-up answered before the server released it, or one the prompt does not have."""


@dataclass(frozen=True)
class FollowUpView:
    follow_up: FollowUp
    prompt: str
    due_at: datetime
    result: Mapping[str, Any] | None


def attempt_start(prompt: DesignPrompt, rng: random.Random, now: datetime) -> dict[str, Any]:
    """A fresh attempt: new parameters, the clock started, nothing answered."""
    return {
        "prompt_id": prompt.id,
        "params": draw_parameters(prompt, rng),
        "started_at": now.isoformat(),
        "deadline": (now + timedelta(minutes=prompt.minutes)).isoformat(),
        "result": None,
        "follow_ups": {},
    }


def _parse_number(raw: str) -> float | None:
    text = raw.replace(",", "").replace("_", "").strip()
    if not text:
        return None
    value = float(text)  # ValueError for text that is no number
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("not a finite number")
    return value


def _text(data: Mapping[str, Any], key: str, errors: dict[str, str]) -> str:
    text = str(data.get(key, "")).strip()
    if len(text) > MAX_ANSWER_CHARS:
        errors[key] = f"at most {MAX_ANSWER_CHARS:,} characters, got {len(text):,}"
    return text


def grade_dict(rubric, text: str, params: Mapping[str, Any], question: str = "") -> dict[str, Any]:
    """A graded free-text answer as JSON-ready data: score, evidence per point, roofline flags,
    and whether the judge is confident of it."""
    if not text:
        return {
            "score": 0.0, "answered": False, "misconceptions": [], "roofline_flags": [],
            "vacuous": True, "confident": True, "score_range": [0.0, 0.0],
            "points": [{"point_id": p.id, "point_text": p.text, "covered": False, "rule": "none",
                        "sentence": "", "similarity": 0.0, "threshold": None, "weight": p.weight,
                        "decided": True, "near_miss": ""}
                       for p in rubric.points],
        }  # fmt: skip
    grade = grade_section(rubric, text, params, render(question, params) if question else "")
    self_check = [
        {"id": e.point_id, "text": e.point_text, "covered": e.covered, "decided": e.decided,
         "evidence": e.sentence if e.covered else ""}
        for e in grade.points
    ]  # fmt: skip
    check_id = hashlib.sha1(f"{question}\n{text}".encode()).hexdigest()[:10]
    return asdict(grade) | {"answered": True, "self_check": self_check, "self_check_id": check_id}


def attempt_grade(
    prompt: DesignPrompt, attempt: Mapping[str, Any], data: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    """Grade the numbers against the capacity model and the sections by rubric coverage.

    Raises AnswerInvalid (nothing graded) when a number does not parse or a text is too long.
    """
    params = attempt["params"]
    errors: dict[str, str] = {}
    given: dict[str, float | None] = {}
    for question in prompt.numeric:
        key = f"numeric-{question.id}"
        try:
            given[question.id] = _parse_number(str(data.get(key, "")))
        except ValueError:
            errors[key] = "enter a number, like 131072 or 1.3e5 (commas are fine)"
    texts = {s.name: _text(data, f"section-{s.name}", errors) for s in prompt.sections}
    if errors:
        raise AnswerInvalid(errors)
    numeric = []
    for question in prompt.numeric:
        answer = numeric_answer(question, params)
        value = given[question.id]
        reading = numeric_reading(answer, value) if value is not None else None
        numeric.append(
            answer_as_dict(answer)
            | {"given": value, "correct": reading is not None}
            | {"reading": reading}
        )
    sections = [
        {"name": s.name, "title": s.name.replace("_", " "), "question": s.question}
        | {"answer": texts[s.name]}
        | grade_dict(s.rubric, texts[s.name], params, s.question)
        for s in prompt.sections
    ]
    late = now > datetime.fromisoformat(attempt["deadline"])
    return {
        "numeric": numeric,
        "sections": sections,
        "numeric_correct": sum(n["correct"] for n in numeric),
        "section_score": sum(s["score"] for s in sections) / len(sections),
        "submitted_at": now.isoformat(),
        "late": late,
    }


def follow_up_due_at(attempt: Mapping[str, Any], follow_up: FollowUp) -> datetime:
    """When the server releases a follow-up: `after_minutes` (times the attempt's
    `follow_up_scale`, 1 by default) in, or once the answer is in."""
    scheduled = datetime.fromisoformat(attempt["started_at"]) + timedelta(
        minutes=follow_up.after_minutes * attempt.get("follow_up_scale", 1.0)
    )
    if attempt.get("result"):
        return min(scheduled, datetime.fromisoformat(attempt["result"]["submitted_at"]))
    return scheduled


def follow_ups_due(
    prompt: DesignPrompt, attempt: Mapping[str, Any], now: datetime
) -> list[FollowUpView]:
    """The follow-ups released by `now`, in order, each with its graded answer if any."""
    views = []
    for follow_up in prompt.follow_ups:
        due = follow_up_due_at(attempt, follow_up)
        if due <= now:
            views.append(
                FollowUpView(
                    follow_up,
                    render(follow_up.prompt, attempt["params"]),
                    due,
                    attempt["follow_ups"].get(follow_up.id),
                )  # fmt: skip
            )
    return views


def next_follow_up_at(
    prompt: DesignPrompt, attempt: Mapping[str, Any], now: datetime
) -> datetime | None:
    """When the next follow-up comes, or None when all are out."""
    pending = [follow_up_due_at(attempt, f) for f in prompt.follow_ups]
    return min((d for d in pending if d > now), default=None)


def after_count(raw: str | None) -> int:
    """A page's `after=N`: how many follow-ups it shows already (0 when absent or no number)."""
    try:
        return max(int(raw or 0), 0)
    except ValueError:
        return 0


def follow_ups_state(
    prompt: DesignPrompt, attempt: Mapping[str, Any], now: datetime, after: int = 0
) -> dict[str, Any]:
    """What a page shows of the follow-ups: those released from index `after` on, how many
    are out and still to come, and when the next one is due."""
    released = follow_ups_due(prompt, attempt, now)
    return {
        "prompt": prompt,
        "follow_ups": released[after:],
        "released": len(released),
        "pending": len(prompt.follow_ups) - len(released),
        "next_follow_up_at": next_follow_up_at(prompt, attempt, now),
    }


def answer_fields(
    prompt: DesignPrompt,
    params: Mapping[str, Any],
    data: Mapping[str, Any],
    errors: Mapping[str, str],
) -> dict[str, list[dict[str, Any]]]:
    """The answer form's numeric and section fields, with the values and errors of `data`."""
    answers = [(q, numeric_answer(q, params)) for q in prompt.numeric]
    numeric = [
        {"id": q.id, "question": a.question, "premises": a.premises, "unit": q.unit,
         "tolerance": q.tolerance, "error": errors.get(f"numeric-{q.id}"),
         "value": data.get(f"numeric-{q.id}", "")}
        for q, a in answers
    ]  # fmt: skip
    sections = [
        {"name": s.name, "title": s.name.replace("_", " "), "question": s.question,
         "error": errors.get(f"section-{s.name}"), "value": data.get(f"section-{s.name}", "")}
        for s in prompt.sections
    ]  # fmt: skip
    return {"numeric": numeric, "sections": sections}


def follow_up_grade(
    prompt: DesignPrompt, attempt: Mapping[str, Any], follow_up_id: str, text: str, now: datetime
) -> dict[str, Any]:
    """Grade one follow-up answer against its own rubric; FollowUpNotDue before its time."""
    follow_up = next((f for f in prompt.follow_ups if f.id == follow_up_id), None)
    if follow_up is None or follow_up_due_at(attempt, follow_up) > now:
        raise FollowUpNotDue(f"follow-up {follow_up_id!r} is not open yet")
    errors: dict[str, str] = {}
    text = _text({"text": text}, "text", errors)
    if errors:
        raise AnswerInvalid(errors)
    return {"answer": text, "answered_at": now.isoformat()} | grade_dict(
        follow_up.rubric, text, attempt["params"], follow_up.prompt
    )
