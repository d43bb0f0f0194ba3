"""Design numbers with their assumptions up front: every numeric sub-question states what its
checker assumes before it is answered, and where efficiency enters the answer both the
efficiency-adjusted and the ideal-roofline answer count, and the result says which was given."""

from __future__ import annotations

import random

import pytest

from engine import capacity
from interview.design import (
    draw_parameters,
    load_design_prompts,
    numeric_answer,
    numeric_correct,
    numeric_reading,
)
from interview.design.premises import ADJUSTED, IDEAL, IDEAL_ALSO, accepts_ideal

PROMPTS = load_design_prompts()
PROMPT_ID = "llama-70b-on-4-a100"
PAGE = f"/design/{PROMPT_ID}/"
SESSION_KEY = f"design-attempt:{PROMPT_ID}"
EFFICIENCY = capacity.Efficiency()
L70B, A100 = capacity.MODELS["llama-3-70b"], capacity.GPUS["a100-80gb"]


@pytest.mark.parametrize("prompt", PROMPTS, ids=lambda p: p.id)
def test_every_sub_question_states_its_premises_and_accepts_both_answers(prompt):
    ideal_seen = 0
    # Enough seeds that every prompt draws a case where efficiency changes the answer.
    for seed in range(12):
        params = draw_parameters(prompt, random.Random(seed))
        for question in prompt.numeric:
            answer = numeric_answer(question, params)
            assert answer.premises, question.id
            assert (IDEAL_ALSO in answer.premises) == accepts_ideal(
                question.function, question.field
            )
            assert numeric_reading(answer, answer.value) == ADJUSTED
            if answer.ideal_value is not None:
                ideal_seen += 1
                assert IDEAL_ALSO in answer.premises
                assert numeric_reading(answer, answer.ideal_value) == IDEAL
                assert numeric_correct(answer, answer.ideal_value)
    efficiency_questions = [q for q in prompt.numeric if accepts_ideal(q.function, q.field)]
    assert ideal_seen or not efficiency_questions


def test_the_premises_are_the_numbers_the_checker_computes_with():
    prompt = next(p for p in PROMPTS if p.id == PROMPT_ID)
    params = {"dtype": "int4", "context": 8192, "batch": 32}
    answers = {q.id: numeric_answer(q, params) for q in prompt.numeric}
    weights = " ".join(answers["weights-per-gpu"].premises)
    per_weight = 0.5 + capacity.INT4_GROUP_OVERHEAD_BYTES / capacity.INT4_GROUP_SIZE
    assert (
        f"group of {capacity.INT4_GROUP_SIZE} weights, {per_weight:g} bytes per weight" in weights
    )
    assert "embeddings, output head and norms stay in bf16" in weights
    assert IDEAL_ALSO not in answers["weights-per-gpu"].premises
    step = " ".join(answers["decode-step"].premises)
    assert f"at {EFFICIENCY.decode_bandwidth:.0%} of HBM bandwidth" in step
    assert f"{EFFICIENCY.interconnect:.0%} of their one-way bandwidth" in step
    assert f"{EFFICIENCY.allreduce_latency_us:g} µs per ring step" in step
    users = " ".join(answers["max-users"].premises)
    assert f"{capacity.DEFAULT_MEMORY_UTILIZATION:.0%} of each GPU's memory" in users
    assert f"{capacity.DEFAULT_BLOCK_SIZE_TOKENS}-token blocks" in users


def test_the_ideal_answer_is_the_capacity_model_at_peak():
    prompt = next(p for p in PROMPTS if p.id == PROMPT_ID)
    question = next(q for q in prompt.numeric if q.id == "decode-step")
    answer = numeric_answer(question, {"dtype": "bf16", "context": 8192, "batch": 32})
    adjusted = capacity.throughput(L70B, A100, 32, 8192, tp=4)
    peak = capacity.throughput(L70B, A100, 32, 8192, tp=4, efficiency=capacity.PEAK)
    assert answer.value == adjusted.decode_step_ms
    assert answer.ideal_value == peak.decode_step_ms < adjusted.decode_step_ms
    halfway = (adjusted.decode_step_ms + peak.decode_step_ms) / 2
    assert numeric_reading(answer, halfway) is None


@pytest.fixture
def candidate(client, alice):
    client.force_login(alice)
    return client


def _fix_draw(client, params: dict) -> None:
    client.get(PAGE)
    session = client.session
    session[SESSION_KEY] = session[SESSION_KEY] | {"params": params}
    session.save()


def test_the_page_states_the_premises_before_the_answer_box(candidate):
    _fix_draw(candidate, {"dtype": "int4", "context": 8192, "batch": 32})
    html = candidate.get(PAGE).content.decode()
    box = html.index('name="numeric-decode-step"')
    premises = html.rindex("What the checker assumes", 0, box)
    assert html.index('for="n-decode-step"') < premises < box
    assert f"{EFFICIENCY.decode_bandwidth:.0%} of HBM bandwidth" in html[premises:box]
    assert "Or give the ideal roofline" in html[premises:box]
    assert f"group of {capacity.INT4_GROUP_SIZE} weights" in html


def test_both_answers_count_and_the_result_says_which_was_given(candidate):
    _fix_draw(candidate, {"dtype": "bf16", "context": 8192, "batch": 32})
    ideal_step = capacity.throughput(L70B, A100, 32, 8192, tp=4, efficiency=capacity.PEAK)
    adjusted_rate = capacity.throughput(L70B, A100, 32, 8192, tp=4)
    html = candidate.post(
        PAGE,
        {
            "numeric-decode-step": f"{ideal_step.decode_step_ms:.3f}",
            "numeric-group-throughput": f"{adjusted_rate.output_tokens_per_s:.0f}",
        },
    ).content.decode()
    numeric = {n["question_id"]: n for n in candidate.session[SESSION_KEY]["result"]["numeric"]}
    assert (numeric["decode-step"]["correct"], numeric["decode-step"]["reading"]) == (True, IDEAL)
    assert (numeric["group-throughput"]["correct"], numeric["group-throughput"]["reading"]) == (
        True,
        ADJUSTED,
    )
    assert (numeric["max-users"]["correct"], numeric["max-users"]["reading"]) == (False, None)
    decode = html[html.index('id="numeric-decode-step"') :]
    decode = decode[: decode.index("Worked derivation")]
    assert "ideal roofline</strong> answer" in decode
    assert f"{adjusted_rate.decode_step_ms:.3f} ms" in decode
    rate = html[html.index('id="numeric-group-throughput"') :]
    assert "efficiency-adjusted</strong> answer" in rate[: rate.index("Worked derivation")]
