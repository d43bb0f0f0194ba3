"""The synchronous grading path (the one ``manage.py grade`` and the worker share), sandbox included."""

from __future__ import annotations

import pytest

from grader.grading import grade
from grader.harnesses.contract import SandboxKind, Verdict
from grader.sandbox import sandbox_kind
from tests.grader.conftest import solution


def _grade(spec, code: str):
    return grade(spec, code, seed=20261127, hardware={"label": "test"})


def test_bubblewrap_really_works_here():
    assert sandbox_kind() is SandboxKind.BUBBLEWRAP


def test_reference_is_accepted_on_every_test_with_a_score_near_one(softmax_spec):
    report = _grade(softmax_spec, softmax_spec.reference_code)
    assert report.verdict is Verdict.ACCEPTED, report.message
    assert [t.name for t in report.tests] == [t["name"] for t in softmax_spec.tests]
    assert all(t.verdict is Verdict.ACCEPTED for t in report.tests)
    assert 0.5 < report.score < 2.0
    assert report.sandbox is SandboxKind.BUBBLEWRAP
    assert report.harness_version == "function/1"
    assert len(report.candidate.samples_ns) >= 5
    assert report.candidate.p10_ns <= report.candidate.median_ns <= report.candidate.p90_ns
    assert report.reference.median_ns > 0


def test_faster_solution_is_accepted(softmax_spec):
    report = _grade(softmax_spec, solution("solutions/fast.py"))
    assert report.verdict is Verdict.ACCEPTED, report.message
    assert report.score > 0


@pytest.mark.parametrize(
    ("wrong", "first_failing", "words"),
    [
        ("wrong/unstable_exponent.py", "large-magnitudes-float32", "NaN or inf"),
        ("wrong/wrong_axis.py", "small-float64", "values out of tolerance"),
    ],
    ids=["unstable-exponent", "wrong-axis"],
)
def test_wrong_solutions_get_wrong_answer_with_the_first_mismatch(
    softmax_spec, wrong, first_failing, words
):
    report = _grade(softmax_spec, solution(wrong))
    assert report.verdict is Verdict.WRONG_ANSWER
    assert report.score == 0.0
    failing = [t for t in report.tests if t.verdict is not Verdict.ACCEPTED]
    assert failing[0].name == first_failing
    assert words in failing[0].message
    assert failing[0].details["first_mismatches"]
    assert report.message.startswith(first_failing)
    assert report.reference is None


def test_syntax_error_is_a_compile_error_with_its_line(softmax_spec):
    report = _grade(softmax_spec, "import numpy as np\n\ndef softmax(x):\n    return x +\n")
    assert report.verdict is Verdict.COMPILE_ERROR
    assert "line 4" in report.message
    assert "SyntaxError" in report.message
    assert report.tests == []


def test_runtime_error_shows_the_candidates_traceback_not_ours(softmax_spec):
    code = "def helper(x):\n    return 1 / 0\n\ndef softmax(x):\n    return helper(x)\n"
    report = _grade(softmax_spec, code)
    assert report.verdict is Verdict.RUNTIME_ERROR
    message = report.tests[0].message
    assert "ZeroDivisionError" in message
    assert 'File "solution.py", line 2, in helper' in message
    assert "harnesses" not in message and "runner" not in message


def test_missing_function_is_a_runtime_error(softmax_spec):
    report = _grade(softmax_spec, "def soft_max(x):\n    return x\n")
    assert report.verdict is Verdict.RUNTIME_ERROR
    assert "defines no function softmax()" in report.message
