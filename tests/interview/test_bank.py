"""The question bank: schema, arithmetic recomputed from formulas, idempotent load, export."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import yaml
from django.core.management import call_command

from interview.formula import formula_evaluate
from interview.models import Attempt, Question
from interview.question_bank import (
    BankError,
    bank_read,
    expected_number,
    parameter_draws_all,
    parameters_pick,
    question_validate,
    questions_load,
    template_render,
)

BANK = bank_read()
BY_TYPE = Counter(q.spec["type"] for q in BANK)
NUMERIC = [q.spec for q in BANK if q.spec["type"] == "numeric"]
PARAMETRIC = [q.spec for q in BANK if q.spec["type"] == "parametric"]
SEED_PROMPTS = [
    "Walk me through how a transformer forward pass actually executes on a GPU.",
    "Why is decode memory-bound and prefill compute-bound?",
    "How would you serve a 70B model on 4 A100 80GB?",
    "Explain paged attention and why it works.",
    "How would you estimate the maximum throughput of an inference server given X GPUs?",
    "How do you choose between TP=2 and TP=4 for a given model?",
    "Walk me through speculative decoding and its limits.",
]


def test_bank_is_large_and_covers_every_type_and_level():
    assert len(BANK) >= 150
    assert set(BY_TYPE) == {
        "single_choice",
        "multiple_choice",
        "numeric",
        "parametric",
        "short_answer",
    }
    assert {q.spec["level"] for q in BANK} == {"junior", "mid", "senior", "staff"}


def test_the_seed_questions_are_short_answers_with_rubrics_and_model_answers():
    by_prompt = {q.spec["prompt"].strip(): q.spec for q in BANK}
    for prompt in SEED_PROMPTS:
        spec = by_prompt[prompt]
        assert spec["type"] == "short_answer"
        assert "seed" in spec["topics"]
        assert len(spec["rubric"]["points"]) >= 4
        assert len(spec["model_answer"]) > 300


@pytest.mark.parametrize("spec", NUMERIC, ids=[s["id"] for s in NUMERIC])
def test_numeric_answer_is_recomputed_from_its_formula(spec):
    computed = formula_evaluate(spec["formula"], spec["variables"])
    assert math.isclose(computed, spec["answer"], rel_tol=0.005)


@pytest.mark.parametrize("spec", PARAMETRIC, ids=[s["id"] for s in PARAMETRIC])
def test_parametric_examples_and_every_draw_recompute(spec):
    for example in spec["examples"]:
        draw = parameters_pick(spec, example["params"])
        assert math.isclose(expected_number(spec, draw), example["answer"], rel_tol=0.005)
    for draw in parameter_draws_all(spec):
        value = expected_number(spec, draw)
        assert math.isfinite(value) and value > 0
        assert "{" not in template_render(spec["prompt"], draw, value)


def test_kv_cache_example_from_the_issue():
    spec = next(q.spec for q in BANK if q.spec["id"] == "kv-bytes-per-token-param")
    draw = parameters_pick(spec, {"model": "Llama-3-8B", "dtype": "BF16"})
    assert expected_number(spec, draw) == 2 * 32 * 8 * 128 * 2 == 131_072


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": "essay"}, "type"),
        ({"level": "principal"}, "level"),
        ({"source": {"title": "x", "url": "http://insecure"}}, "source"),
        ({"answer": 5}, "answer indexes"),
        ({"surprise": 1}, "unknown keys"),
    ],
)
def test_schema_refuses_broken_questions(change, message):
    spec = dict(next(q.spec for q in BANK if q.spec["type"] == "single_choice")) | change
    with pytest.raises(BankError, match=message):
        question_validate(spec)


def test_schema_refuses_a_numeric_answer_that_disagrees_with_its_formula():
    spec = dict(NUMERIC[0]) | {"answer": NUMERIC[0]["answer"] * 1.1}
    with pytest.raises(BankError, match="disagrees"):
        question_validate(spec)


@pytest.mark.django_db
def test_load_bank_is_idempotent_and_keeps_history(django_user_model):
    call_command("load_bank")
    count = Question.objects.count()
    assert count == len(BANK)
    question = Question.objects.get(bank_id="kv-what-is-cached")
    user = django_user_model.objects.create_user("alice", password="pw-alice-123")
    Attempt.objects.create(user=user, question=question, response={}, score=1, correct=True)
    assert questions_load() == count
    assert Question.objects.count() == count
    assert Attempt.objects.filter(question=question).count() == 1
    # An author's edit is the author's: a reload keeps it (tests/interview/test_authoring.py).
    question.spec = question.spec | {"prompt": "Edited by an author: what is cached?"}
    question.save()
    assert questions_load() == count
    question.refresh_from_db()
    assert question.spec["prompt"] == "Edited by an author: what is cached?"


@pytest.mark.django_db
def test_export_bank_round_trips(tmp_path):
    questions_load()
    Question.objects.filter(bank_id="kv-mqa").update(published=False)
    call_command("export_bank", str(tmp_path))
    exported = bank_read(tmp_path)
    original = {q.spec["id"]: q.spec for q in BANK}
    assert [q.spec["id"] for q in exported] == [q.spec["id"] for q in BANK]
    for item in exported:
        expected = original[item.spec["id"]]
        if item.spec["id"] == "kv-mqa":
            expected = expected | {"published": False}
        assert item.spec == expected
    assert yaml.safe_load((tmp_path / "kv-cache.yaml").read_text())["topic"] == "kv-cache"
