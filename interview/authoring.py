"""Checks a bank question must pass before it is published, beyond its schema.

The admin shows them on the question's page and refuses the Published box while any fails:
a choice question must not give its answer away by length, and a short answer's own model
answer must pass its rubric under the judge the pages use while a vacuous answer (the
rubric's topic words, no claims) must fail it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from interview.grading import DEFAULT_PASS_SCORE, text_grade
from interview.question_bank import CHOICE_TYPES

# The right option may be at most this many times as long as the longest wrong one: a
# candidate who picks the longest option must not score (issue 17: the bank once had its right
# option longest in over 40% of questions). The shipped bank stays under 1.2.
RIGHT_LONGEST_MARGIN = 1.25


@dataclass(frozen=True)
class Check:
    """One check's outcome: its name, whether it passed, and what it found."""

    name: str
    passed: bool
    detail: str


def vacuous_answer(spec: Mapping[str, Any]) -> str:
    """An answer made of the question's topic words and its rubric's keywords, claiming
    nothing: any rubric that passes it grades words, not understanding."""
    words = [topic.replace("-", " ") for topic in spec["topics"]]
    for point in spec["rubric"]["points"]:
        words.extend(point["keywords"][:2])
    return ", ".join(dict.fromkeys(words)) + "."


def _choice_length(spec: Mapping[str, Any]) -> Check:
    answer = spec["answer"]
    right = set(answer) if isinstance(answer, list) else {answer}
    lengths = [len(choice.strip()) for choice in spec["choices"]]
    shortest_right = min(lengths[i] for i in right)
    longest_wrong = max((n for i, n in enumerate(lengths) if i not in right), default=0)
    ratio = shortest_right / max(longest_wrong, 1)
    return Check(
        "right option not the longest by a wide margin",
        ratio <= RIGHT_LONGEST_MARGIN,
        f"the shortest right option is {ratio:.2f}x the longest wrong one "
        f"(at most {RIGHT_LONGEST_MARGIN}x: a length-guesser must not score)",
    )


def _short_answer(spec: Mapping[str, Any]) -> list[Check]:
    pass_score = spec.get("pass_score", DEFAULT_PASS_SCORE)
    model = text_grade(spec, spec["model_answer"])
    vacuous_text = vacuous_answer(spec)
    vacuous = text_grade(spec, vacuous_text)
    return [
        Check(
            "model answer passes its rubric",
            model.score >= pass_score,
            f"the judge scores it {model.score:.2f} (pass at {pass_score})",
        ),
        Check(
            "a vacuous answer fails",
            vacuous.score < pass_score,
            f"{vacuous_text!r} scores {vacuous.score:.2f} (pass at {pass_score})",
        ),
    ]


def question_checks(spec: Mapping[str, Any]) -> list[Check]:
    """The publish checks of a schema-valid question spec (none for numeric types, whose
    schema already recomputes every answer from its formula)."""
    if spec["type"] in CHOICE_TYPES:
        return [_choice_length(spec)]
    if spec["type"] == "short_answer":
        return _short_answer(spec)
    return []
