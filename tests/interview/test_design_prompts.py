"""Design-round prompts: every file loads, every draw computes and renders."""

import math
import random

import pytest

from interview.design import (
    SECTION_NAMES,
    design_prompt_from_dict,
    draw_parameters,
    grade_section,
    load_design_prompts,
    numeric_answer,
    numeric_correct,
    render,
    shared_points,
)

PROMPTS = load_design_prompts()
SEEDS = range(12)
REQUIRED_TOPICS = (
    "100k",
    "multi-tenant",
    "long context",
    "backpressure",
    "70b",
    "tp=2",
    "maximum throughput",
    "prefix caching",
)


def test_at_least_eight_prompts_covering_the_required_topics():
    assert len(PROMPTS) >= 8
    titles = " / ".join(p.title.lower() for p in PROMPTS)
    for topic in REQUIRED_TOPICS:
        assert topic in titles, topic


@pytest.mark.parametrize("prompt", PROMPTS, ids=lambda p: p.id)
def test_prompt_has_six_sections_follow_ups_and_model_answer(prompt):
    assert tuple(s.name for s in prompt.sections) == SECTION_NAMES
    assert all(s.rubric.points for s in prompt.sections)
    assert len(prompt.follow_ups) >= 2 and all(f.rubric.points for f in prompt.follow_ups)
    assert len(prompt.model_answer) > 400


@pytest.mark.parametrize("prompt", PROMPTS, ids=lambda p: p.id)
def test_every_draw_computes_every_answer_and_renders(prompt):
    for seed in SEEDS:
        params = draw_parameters(prompt, random.Random(seed))
        assert render(prompt.prompt, params)
        for follow_up in prompt.follow_ups:
            assert render(follow_up.prompt, params)
        for question in prompt.numeric:
            answer = numeric_answer(question, params)
            assert math.isfinite(answer.value) and answer.value > 0, (seed, question.id, params)
            assert "{" not in answer.question and "{" not in answer.derivation
            assert answer.assumptions
            assert numeric_correct(answer, answer.value * (1 + question.tolerance / 2))
            above_both = max(answer.value, answer.ideal_value or 0) * (1 + 2 * question.tolerance)
            assert not numeric_correct(answer, above_both)


def test_draws_are_fixed_by_the_seed_and_vary_between_seeds():
    prompt = PROMPTS[0]
    assert draw_parameters(prompt, random.Random(7)) == draw_parameters(prompt, random.Random(7))
    draws = {tuple(sorted(draw_parameters(prompt, random.Random(s)).items())) for s in SEEDS}
    assert len(draws) > 1


@pytest.mark.parametrize("prompt", PROMPTS, ids=lambda p: p.id)
def test_model_answer_covers_most_of_its_own_rubric(prompt):
    params = draw_parameters(prompt, random.Random(0))
    covered = total = 0
    for section in prompt.sections:
        grade = grade_section(section.rubric, prompt.model_answer, params)
        covered += sum(e.covered for e in grade.points)
        total += len(grade.points)
        assert not any(e.covered for e in grade.misconceptions)
        assert not grade.roofline_flags
    # The claim judge (issue 17) credits a point only for a sentence that states it, and the
    # model answers state some points in fragments ("Observability. TPOT p99 per replica").
    assert covered / total >= 0.65


def test_section_grading_flags_roofline_breaking_numbers():
    prompt = next(p for p in PROMPTS if p.id == "platform-100k-rps")
    params = {"model": "llama-3-8b", "gpu": "h100-sxm"}
    grade = grade_section(
        prompt.sections[1].rubric, "One H100 gives 20k tok/s at batch 1 for this model.", params
    )
    assert len(grade.roofline_flags) == 1


def test_validation_rejects_bad_prompts():
    good = {
        "id": "x",
        "title": "t",
        "level": "mid",
        "minutes": 30,
        "prompt": "p",
        "parameters": {"model": {"choices": ["llama-3-8b"]}},
        "numeric": [
            {
                "id": "q",
                "question": "?",
                "function": "kv_bytes_per_token",
                "args": {"model": "$model"},
                "field": "kv_bytes_per_token",
                "unit": "bytes",
                "tolerance": 0.05,
                "derivation": "{answer}",
            }
        ],
        "sections": {
            name: {"question": "?", "rubric": {"points": [{"use": "kv_cache_size"}]}}
            for name in SECTION_NAMES
        },
        "follow_ups": [
            {
                "id": "f",
                "prompt": "?",
                "after_minutes": 5,
                "rubric": {"points": [{"id": "a", "text": "t"}]},
            }
        ],
        "model_answer": "m",
    }
    shared = shared_points()
    assert design_prompt_from_dict(good, shared).id == "x"
    bad_function = good | {"numeric": [good["numeric"][0] | {"function": "os.system"}]}
    with pytest.raises(ValueError, match="unknown capacity function"):
        design_prompt_from_dict(bad_function, shared)
    with pytest.raises(ValueError, match="sections"):
        design_prompt_from_dict(good | {"sections": {}}, shared)
    unknown_point = good | {
        "follow_ups": [
            {"id": "f", "prompt": "?", "after_minutes": 5, "rubric": {"points": [{"use": "nope"}]}}
        ]
    }
    with pytest.raises(ValueError, match="nope"):
        design_prompt_from_dict(unknown_point, shared)
