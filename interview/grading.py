"""Grade one response to one bank question: choices, numbers against formulas, rubrics."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from interview.question_bank import expected_number, number_format, template_render
from interview.rubric import grade_answer, rubric_from_dict, rubric_with_model_answer

# A short answer passes when its rubric score reaches this, unless the question sets pass_score.
DEFAULT_PASS_SCORE = 0.6
RULE_SYNTAX = ("*", "|", " + ")


class ResponseInvalid(ValueError):
    """A response of the wrong shape for its question (a refusal; nothing is stored)."""


@dataclass(frozen=True)
class GradeResult:
    score: float
    correct: bool
    expected: str
    missed_points: tuple[str, ...] = ()
    feedback: dict[str, Any] = field(default_factory=dict)


def response_parse(
    spec: Mapping[str, Any], data: Mapping[str, Any], option_order: Sequence[int] = ()
) -> dict[str, Any]:
    """A stored response from form data (``choice``, ``choices``, ``value`` or ``text``).

    A choice is posted as its shown position; ``option_order`` (the attempt's shuffle, file
    indices in shown order; empty for file order) maps it back, so the stored response names
    options by their index in the bank, whatever order they were shown in.
    """
    qtype = spec["type"]
    try:
        if qtype == "single_choice":
            return {"choice": _option_at(spec, option_order, _one(data, "choice"))}
        if qtype == "multiple_choice":
            raw = data.getlist("choices") if hasattr(data, "getlist") else data.get("choices", [])
            return {"choices": sorted({_option_at(spec, option_order, c) for c in raw})}
        if qtype in ("numeric", "parametric"):
            value = float(str(_one(data, "value")).replace(",", "").strip())
            if not math.isfinite(value):
                raise ResponseInvalid("give a finite number")
            return {"value": value}
        text = str(_one(data, "text")).strip()
        if not text:
            raise ResponseInvalid("write an answer")
        return {"text": text[:10_000]}
    except (TypeError, ValueError) as error:
        if isinstance(error, ResponseInvalid):
            raise
        raise ResponseInvalid(f"not a valid answer for a {qtype} question") from error


def _option_at(spec: Mapping[str, Any], option_order: Sequence[int], position: Any) -> int:
    """The bank index of the option shown at ``position``."""
    shown = int(position)
    if not 0 <= shown < len(spec["choices"]):
        raise ResponseInvalid("that choice does not exist")
    return option_order[shown] if option_order else shown


def _one(data: Mapping[str, Any], key: str) -> Any:
    value = data.get(key)
    if value is None or value == "":
        raise ResponseInvalid(f"{key} is missing")
    return value


def rubric_rule(keyword: str) -> str:
    """A bank keyword (a word-start prefix) as an interview.rubric rule."""
    return keyword if any(s in keyword for s in RULE_SYNTAX) else keyword.strip() + "*"


def _rubric_for(spec: Mapping[str, Any]):
    rubric = spec["rubric"]

    def convert(entry: Mapping[str, Any]) -> dict[str, Any]:
        converted = {
            "id": entry["id"],
            "text": entry["text"],
            "keywords": [rubric_rule(k) for k in entry["keywords"]],
        }
        for key in ("exemplars", "near_misses"):
            if entry.get(key):
                converted[key] = list(entry[key])
        weight = entry.get("weight", entry.get("penalty"))
        return converted | ({"weight": weight} if weight is not None else {})

    return rubric_from_dict(
        {
            "points": [convert(p) for p in rubric["points"]],
            "misconceptions": [convert(m) for m in rubric.get("misconceptions") or []],
        }
    )


def response_grade(
    spec: Mapping[str, Any],
    params: Mapping[str, Any],
    response: Mapping[str, Any],
    option_order: Sequence[int] = (),
) -> GradeResult:
    """Score in [0, 1], correctness, the expected answer as text, and missed rubric points.

    A choice question's feedback keeps ``choices``: every option in the order the attempt
    showed them (``option_order``), each marked picked and correct, so a later page shows
    what the person saw even after the bank is edited.
    """
    qtype = spec["type"]
    if qtype == "single_choice":
        correct = response["choice"] == spec["answer"]
        return GradeResult(
            float(correct),
            correct,
            spec["choices"][spec["answer"]],
            feedback={"choices": _choices_seen(spec, option_order, {response["choice"]})},
        )
    if qtype == "multiple_choice":
        expected, given = set(spec["answer"]), set(response["choices"])
        right, wrong = len(given & expected), len(given - expected)
        score = max(0.0, (right - wrong) / len(expected))
        return GradeResult(
            score,
            given == expected,
            "; ".join(spec["choices"][i] for i in _in_shown_order(option_order, expected)),
            feedback={"choices": _choices_seen(spec, option_order, given)},
        )
    if qtype in ("numeric", "parametric"):
        target = expected_number(spec, params)
        correct = abs(response["value"] - target) <= spec["tolerance"] * abs(target)
        unit = f" {spec['unit']}" if spec["unit"] else ""
        return GradeResult(
            float(correct),
            correct,
            f"{number_format(target)}{unit} (within {spec['tolerance']:.1%})",
            feedback={"expected_value": target},
        )
    pass_score = spec.get("pass_score", DEFAULT_PASS_SCORE)
    grade = text_grade(spec, response["text"], params)
    missed = tuple(e.point_id for e in grade.points if not e.covered)
    return GradeResult(
        round(grade.score, 4),
        grade.score >= pass_score,
        spec["model_answer"],
        missed_points=missed,
        feedback={
            "points": [
                {"id": e.point_id, "covered": e.covered, "text": _text(spec, e.point_id)}
                | {"evidence": e.sentence if e.covered else "", "decided": e.decided}
                for e in grade.points
            ],
            "misconceptions": [
                {"id": e.point_id, "text": _text(spec, e.point_id), "evidence": e.sentence}
                for e in grade.misconceptions
                if e.covered
            ],
            "coverage": round(grade.coverage, 4),
            "contradictions": list(grade.contradictions),
            "confident": grade.confident,
            "vacuous": grade.vacuous,
            "score_range": [round(x, 4) for x in grade.score_range],
        },
    )


def text_grade(spec: Mapping[str, Any], text: str, params: Mapping[str, Any] | None = None):
    """The rubric judge's grade of a written answer to a short-answer bank question."""
    return grade_answer(
        text,
        rubric_with_model_answer(_rubric_for(spec), spec["model_answer"]),
        question=template_render(spec["prompt"], params or {}),
        pass_score=spec.get("pass_score", DEFAULT_PASS_SCORE),
    )


def _in_shown_order(option_order: Sequence[int], indices: set[int]) -> list[int]:
    return [i for i in option_order if i in indices] if option_order else sorted(indices)


def _choices_seen(
    spec: Mapping[str, Any], option_order: Sequence[int], picked: set[int]
) -> list[dict[str, Any]]:
    answer = spec["answer"]
    correct = set(answer) if isinstance(answer, list) else {answer}
    order = option_order or range(len(spec["choices"]))
    return [
        {"text": spec["choices"][i], "picked": i in picked, "correct": i in correct} for i in order
    ]


def _text(spec: Mapping[str, Any], point_id: str) -> str:
    rubric = spec["rubric"]
    for entry in rubric["points"] + list(rubric.get("misconceptions") or []):
        if entry["id"] == point_id:
            return entry["text"]
    return point_id
