"""The held-out labelled answers of issue 17 (answer_cases/heldout2.yaml) are well formed and
cover what they claim: every target is a real written-answer question, design section or
follow-up, every kind comes in numbers, and the paraphrases do not borrow the model answer's
wording (or they would not test a judge on words other than the rubric's)."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from typing import Any

import pytest
import yaml

from benchmarks.heldout_agreement import CASES_FILE, agreement_by_kind, batch_line
from interview.design import DesignPrompt, load_design_prompts
from interview.question_bank import bank_read

KINDS = ("vacuous", "wrong", "paraphrase", "honest")
# The label each kind must carry; an honest answer is labelled by hand, either way.
EXPECTED_BY_KIND = {"vacuous": "fail", "wrong": "fail", "paraphrase": "pass"}
TARGET_SHAPES = ({"question"}, {"design", "section"}, {"design", "follow_up"})
MIN_CASES = 150  # issue 17: at least 150 cases over at least 30 targets
MIN_CASES_PER_KIND = 25
MIN_TARGETS = 30
# Honest answers are only a measure if both labels occur often enough to be wrong about.
MIN_HONEST_PER_LABEL = 15
# The longest run of words a paraphrase may share with its model answer or rubric points:
# "on an H100 with" is fine, a copied clause is not. Numbers and formulas do not count.
MAX_SHARED_RUN_WORDS = 5


@pytest.fixture(scope="module")
def cases() -> list[dict[str, Any]]:
    return yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def written_questions() -> dict[str, dict[str, Any]]:
    """The bank questions answered in writing and graded by rubric, by id."""
    return {q.spec["id"]: q.spec for q in bank_read() if q.spec["type"] == "short_answer"}


@pytest.fixture(scope="module")
def prompts() -> dict[str, DesignPrompt]:
    return {prompt.id: prompt for prompt in load_design_prompts()}


def _target_key(target: dict[str, str]) -> tuple[str, ...]:
    if "question" in target:
        return ("question", target["question"])
    part = "section" if "section" in target else "follow_up"
    return (target["design"], part, target[part])


def _words(text: str) -> list[str]:
    """Ordinary words only: numbers, symbols and one-letter variables are left out."""
    return re.findall(r"[a-z]{2,}", text.lower())


def _longest_shared_run(text: str, reference: str) -> tuple[int, str]:
    words, reference_words = _words(text), _words(reference)
    longest, example = 0, ""
    for size in range(1, len(words) + 1):
        runs = {tuple(reference_words[i : i + size]) for i in range(len(reference_words))}
        shared = [tuple(words[i : i + size]) for i in range(len(words) - size + 1)]
        found = next((run for run in shared if run in runs), None)
        if found is None:
            break
        longest, example = size, " ".join(found)
    return longest, example


def test_every_case_has_a_target_a_kind_a_label_and_a_text(cases):
    assert isinstance(cases, list) and cases
    for number, case in enumerate(cases):
        where = f"case {number}: {case.get('text', '')[:60]!r}"
        assert set(case) == {"target", "kind", "expected", "text"}, where
        assert set(case["target"]) in TARGET_SHAPES, where
        assert case["kind"] in KINDS, where
        assert case["expected"] in ("pass", "fail"), where
        assert case["expected"] == EXPECTED_BY_KIND.get(case["kind"], case["expected"]), where
        assert isinstance(case["text"], str) and case["text"].strip(), where


def test_every_target_is_a_written_question_a_design_section_or_a_follow_up(
    cases, written_questions, prompts
):
    for case in cases:
        target = case["target"]
        if "question" in target:
            assert target["question"] in written_questions, (
                f"{target['question']} is not a written-answer bank question"
            )
            continue
        prompt = prompts.get(target["design"])
        assert prompt is not None, f"no design prompt {target['design']}"
        if "section" in target:
            assert target["section"] in {s.name for s in prompt.sections}, target
        else:
            assert target["follow_up"] in {f.id for f in prompt.follow_ups}, target


def test_the_set_is_big_enough_in_every_kind(cases):
    kinds = Counter(case["kind"] for case in cases)
    assert len(cases) >= MIN_CASES
    assert {kind: kinds[kind] >= MIN_CASES_PER_KIND for kind in KINDS} == dict.fromkeys(
        KINDS, True
    ), kinds
    honest = Counter(case["expected"] for case in cases if case["kind"] == "honest")
    assert honest["pass"] >= MIN_HONEST_PER_LABEL and honest["fail"] >= MIN_HONEST_PER_LABEL


def test_every_written_question_and_every_design_prompt_is_covered(
    cases, written_questions, prompts
):
    kinds_by_question: dict[str, set[str]] = defaultdict(set)
    sections_by_prompt: dict[str, set[str]] = defaultdict(set)
    follow_ups_by_prompt: dict[str, set[str]] = defaultdict(set)
    for case in cases:
        target = case["target"]
        if "question" in target:
            kinds_by_question[target["question"]].add(case["kind"])
        elif "section" in target:
            sections_by_prompt[target["design"]].add(target["section"])
        else:
            follow_ups_by_prompt[target["design"]].add(target["follow_up"])

    assert set(kinds_by_question) == set(written_questions), "a written question has no cases"
    for question, kinds in kinds_by_question.items():
        assert {"vacuous", "wrong", "paraphrase"} <= kinds, question
    for prompt in prompts.values():
        assert len(sections_by_prompt[prompt.id]) >= 2, prompt.id
        assert follow_ups_by_prompt[prompt.id] == {f.id for f in prompt.follow_ups}, prompt.id
    assert len({_target_key(case["target"]) for case in cases}) >= MIN_TARGETS


def test_no_answer_text_appears_twice(cases):
    texts = Counter(" ".join(case["text"].lower().split()) for case in cases)
    assert [text[:60] for text, count in texts.items() if count > 1] == []


def test_paraphrases_do_not_copy_the_model_answer_or_the_rubric(cases, written_questions, prompts):
    paraphrases = [case for case in cases if case["kind"] == "paraphrase"]
    assert paraphrases
    for case in paraphrases:
        target = case["target"]
        if "question" in target:
            spec = written_questions[target["question"]]
            points = " | ".join(point["text"] for point in spec["rubric"]["points"])
            reference = f"{spec['model_answer']} | {points}"
        else:
            reference = prompts[target["design"]].model_answer
        longest, run = _longest_shared_run(case["text"], reference)
        assert longest <= MAX_SHARED_RUN_WORDS, (target, run)


def test_every_case_becomes_one_line_of_the_judges_batch_input(cases):
    for case in cases:
        request = json.loads(batch_line(case))
        assert request.pop("text") == case["text"]
        target = case["target"]
        if "question" in target:
            assert request == {"question": target["question"]}
        elif "section" in target:
            assert request == {"design": target["design"], "section": target["section"]}
        else:
            assert request == {"design": target["design"], "follow_up": target["follow_up"]}


def test_agreement_is_counted_by_kind_against_the_labels(cases):
    # A judge that passes everything: right on paraphrases and on honest passes only.
    everything_passes = [{"score": 0.3, "passed": True} for _ in cases]
    table = agreement_by_kind(cases, everything_passes)
    kinds = Counter(case["kind"] for case in cases)
    honest_passes = sum(c["kind"] == "honest" and c["expected"] == "pass" for c in cases)
    assert table["paraphrase"] == {
        "cases": kinds["paraphrase"],
        "agree": kinds["paraphrase"],
        "share": 1.0,
    }
    assert table["vacuous"]["agree"] == 0 and table["vacuous"]["at_most_0.25"] == 0
    assert table["wrong"]["agree"] == 0
    assert table["honest"]["agree"] == honest_passes
    assert table["all"]["agree"] == kinds["paraphrase"] + honest_passes
    with pytest.raises(ValueError):
        agreement_by_kind(cases, everything_passes[1:])
