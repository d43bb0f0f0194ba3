"""The one safe-arithmetic evaluator: what each caller gets back, and what it refuses."""

from __future__ import annotations

import math
import random
import re

import pytest

from interview.design import draw_parameters, load_design_prompts, numeric_answer, resolve_arg
from interview.formula import FormulaError, expression_evaluate, formula_evaluate

VARIABLES = {
    "batch": 64,
    "context": 4096,
    "model": "llama-3-8b",
    "m": {"layers": 32, "hidden": 4096},
}


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("model", "llama-3-8b"),
        ("batch", 64),
        ("batch * 2 + 1", 129),
        ("context // batch", 64),
        ("context / batch", 64.0),
        ("2 ** 10", 1024),
        ("m.layers * m.hidden", 131_072),
        ("batch > 10", 1),
        ("max(batch, 100) - min(3, 4)", 97),
        ("ceil(context / 1000)", 5),
        ("'fp8'", "fp8"),
    ],
    ids=lambda v: str(v),
)
def test_an_expression_keeps_the_type_it_computes(expression, value):
    result = expression_evaluate(expression, VARIABLES)
    assert result == value and type(result) is type(value)


def test_a_formula_is_always_a_float_and_never_a_string():
    assert formula_evaluate("batch * 2", VARIABLES) == 128.0
    assert type(formula_evaluate("batch * 2", VARIABLES)) is float
    assert formula_evaluate("sqrt(m.hidden)", VARIABLES) == 64.0
    with pytest.raises(FormulaError, match="not a number"):
        formula_evaluate("model", VARIABLES)


def test_a_design_argument_resolves_to_a_name_or_an_integer():
    params = {"model": "llama-3-8b", "system_tokens": 500, "turns": 3, "turn_tokens": 100}
    assert resolve_arg("tp", "$turns * 2", params) == 6
    assert type(resolve_arg("tp", "$turns * 2", params)) is int
    assert resolve_arg("prompt_tokens", "$system_tokens + turns * turn_tokens", params) == 800
    assert (
        resolve_arg("model", "$model", params).name == resolve_arg("model", "llama-3-8b", {}).name
    )
    assert resolve_arg("tp", 4, params) == 4  # a literal argument stays as written


def test_every_design_prompt_computes_its_numbers_through_the_evaluator():
    prompts = load_design_prompts()
    assert prompts
    for prompt in prompts:
        params = draw_parameters(prompt, random.Random(0))
        for question in prompt.numeric:
            answer = numeric_answer(question, params)
            assert math.isfinite(answer.value) and answer.value > 0, (prompt.id, question.id)


@pytest.mark.parametrize(
    ("expression", "refusal"),
    [
        ("model.__class__", "private"),
        ("batch.real", "unknown field batch.real"),
        ("(1).real", "attribute access"),
        ("'x'.join", "attribute access"),
        ("__import__('os')", "private"),
        ("__builtins__", "private"),
        ("open('x')", "call of 'open' is not allowed"),
        ("m.get('layers')", "call of 'm.get' is not allowed"),
        ("2 ** 10 ** 10", "exponent"),
        ("2 ** 100", "exponent 100 is above 64"),
        ("((10 ** 64) ** 64) ** 64", "bits"),
        ("exp(1000)", "overflows"),
        ("[x for x in [1, 2]]", "ListComp"),
        ("sum(x for x in [1])", "call of 'sum'"),
        ("(lambda: 1)()", "call of 'lambda: 1' is not allowed"),
        ("lambda: 1", "Lambda"),
        ("[1, 2]", "List"),
        ("m['layers']", "Subscript"),
        ("a if b else c", "IfExp"),
        ("model * 1000000000", "not a number"),
        ("model + 'x'", "not a number"),
        ("True + 1", "not a number"),
        ("(-8) ** 0.5", "not a real number"),
        ("unknown + 1", "unknown variable 'unknown'"),
        ("1 +", "does not parse"),
        ("1" + " + 1" * 1000, "longer than"),
    ],
    ids=lambda v: str(v)[:40],
)
def test_anything_but_arithmetic_is_refused_with_a_clear_error(expression, refusal):
    with pytest.raises(FormulaError, match=re.escape(refusal)):
        expression_evaluate(expression, VARIABLES)
    with pytest.raises(FormulaError):
        formula_evaluate(expression, VARIABLES)
