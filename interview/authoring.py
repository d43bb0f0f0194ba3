"""Checks a bank question must pass before it is published, beyond its schema.

The admin shows them on the question's page and refuses the Published box while any fails:
a choice question must not give its answer away by length, and a short answer's own model
answer must pass its rubric under the judge the pages use while a vacuous answer (the
rubric's topic words, no claims) must fail it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from grader.versions import content_hash
from interview import claims
from interview.design import (
    SECTION_PASS_SCORE,
    design_prompt_validate,
    example_params,
    grade_section,
    numeric_answer,
    numeric_correct,
    render,
)
from interview.grading import DEFAULT_PASS_SCORE, text_grade
from interview.question_bank import CHOICE_TYPES
from interview.rubric import Rubric

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


def vacuous_words(topics: Sequence[str], keywords: Iterable[Sequence[str]]) -> str:
    """An answer made of topic words and each rubric point's first two keywords, claiming
    nothing: any rubric that passes it grades words, not understanding."""
    words = [topic.replace("-", " ").replace("_", " ") for topic in topics]
    for point_keywords in keywords:
        words.extend(_plain(rule) for rule in point_keywords[:2])
    items = (_claimless(item) for item in dict.fromkeys(words))
    return ", ".join(dict.fromkeys(item for item in items if item)) + "."


def _claimless(phrase: str) -> str:
    """A keyword phrase without the words that make it assert, as the judge reads them.

    A phrase with a verb ("read all the weights", "one gpu fail whole") is a claim to the
    judge (interview.claims), and one such item makes the whole list claims: the answer
    would then be graded as an answer, keyword bonuses and all, and not as the vacuous list
    of topic words it is meant to be (pd-why-memory-bound's scored 0.80). Its verbs are
    dropped ("all the weights"); a phrase that still asserts is left out.
    """
    if not claims.is_claim(phrase):
        return phrase
    kept = " ".join(w for w in phrase.split() if not set(claims.words(w)) & claims.VERB_FORMS)
    return "" if claims.is_claim(kept) else kept


def _plain(rule: str) -> str:
    """A keyword rule's words: each term's first alternative (``kv|cache + per token`` reads
    ``kv per token``), so the answer names what the rule matches without writing its syntax."""
    return " ".join(term.split("|")[0].strip().rstrip("*") for term in rule.split("+"))


def vacuous_answer(spec: Mapping[str, Any]) -> str:
    """A question's vacuous answer: its topics and its rubric's keywords (vacuous_words)."""
    return vacuous_words(spec["topics"], (p["keywords"] for p in spec["rubric"]["points"]))


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


def _rubric_checks(
    name: str, rubric: Rubric, model_answer: str, question: str, params: Mapping[str, Any]
) -> list[Check]:
    model = grade_section(rubric, model_answer, params, question=question)
    vacuous_text = vacuous_words([name], (p.keywords for p in rubric.points))
    vacuous = grade_section(rubric, vacuous_text, params, question=question)
    return [
        Check(
            f"{name}: the model answer passes its rubric",
            model.score >= SECTION_PASS_SCORE,
            f"the judge scores it {model.score:.2f} (pass at {SECTION_PASS_SCORE})",
        ),
        Check(
            f"{name}: a vacuous answer fails",
            vacuous.score < SECTION_PASS_SCORE,
            f"{vacuous_text!r} scores {vacuous.score:.2f} (pass at {SECTION_PASS_SCORE})",
        ),
    ]


def _numeric_check(question, params: Mapping[str, Any], stored: float | None) -> Check:
    name = f"{question.id}: the stored answer agrees with the capacity model"
    if stored is None:
        return Check(name, False, "no stored answer: give one under example.answers")
    answer = numeric_answer(question, params)
    ideal = f" (ideal roofline {answer.ideal_value:.4g})" if answer.ideal_value else ""
    return Check(
        name,
        numeric_correct(answer, stored),
        f"stored {stored:.4g} {answer.unit}; the capacity model gives {answer.value:.4g}{ideal} "
        f"for the example's parameters (within {answer.tolerance:.0%})",
    )


def design_checks(spec: Mapping[str, Any]) -> list[Check]:
    """The publish checks of a schema-valid design prompt, on its worked example's parameters.

    Per section and follow-up, with the judge the round grades them with: its model answer
    (the part's own ``model_answer``, else the prompt's) passes its rubric and a vacuous
    answer fails it. Per numeric sub-question: the answer stored in ``example.answers``
    agrees, within the sub-question's tolerance, with the capacity model's recomputation.
    Results are kept per content hash: the admin asks on every view and save.
    """
    digest = content_hash(spec)
    if digest not in _DESIGN_CHECKED:
        _DESIGN_CHECKED[digest] = _design_checks(spec)
    return _DESIGN_CHECKED[digest]


# Checks by content hash; grading a prompt's sixteen answers takes seconds.
_DESIGN_CHECKED: dict[str, list[Check]] = {}


def _design_checks(spec: Mapping[str, Any]) -> list[Check]:
    prompt = design_prompt_validate(spec)
    params = example_params(prompt, spec)
    checks = []
    for section in prompt.sections:
        model_answer = spec["sections"][section.name].get("model_answer", prompt.model_answer)
        question = render(section.question, params)
        checks += _rubric_checks(section.name, section.rubric, model_answer, question, params)
    for position, follow_up in enumerate(prompt.follow_ups):
        model_answer = spec["follow_ups"][position].get("model_answer", prompt.model_answer)
        question = render(follow_up.prompt, params)
        checks += _rubric_checks(follow_up.id, follow_up.rubric, model_answer, question, params)
    answers = (spec.get("example") or {}).get("answers") or {}
    checks += [_numeric_check(q, params, answers.get(q.id)) for q in prompt.numeric]
    return checks
