"""The synchronous grading path (the one ``manage.py grade`` and the worker share), sandbox included."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from grader.grading import grade
from grader.harnesses.contract import SandboxKind, Verdict
from grader.sandbox import sandbox_kind
from tests.conftest import REPO
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
    assert report.score > 0
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


def test_each_test_is_reported_live_with_the_verdict_the_grader_gave_it(softmax_spec):
    """Before a test runs its start is reported; once judged, its verdict, time and message."""
    events: list[tuple[str, dict]] = []
    code = (
        "import numpy as np\n\ndef softmax(x):\n"
        "    if x.dtype == np.float64:\n        return np.zeros_like(x)\n"
        "    e = np.exp(x - x.max(axis=-1, keepdims=True))\n"
        "    return e / e.sum(axis=-1, keepdims=True)\n"
    )
    report = grade(
        softmax_spec,
        code,
        seed=20261127,
        hardware={},
        progress=lambda step, data: events.append((step, data)),
    )
    assert report.verdict is Verdict.WRONG_ANSWER
    per_test = [(step, data) for step, data in events if step in ("test", "test_done")]
    total = len(softmax_spec.tests)
    assert per_test == [
        pair
        for index, test in enumerate(report.tests, start=1)
        for pair in (
            ("test", {"index": index, "total": total, "name": test.name}),
            (
                "test_done",
                {
                    "index": index,
                    "total": total,
                    "name": test.name,
                    "verdict": str(test.verdict),
                    "time_ms": round(test.time_ms, 3),
                    "message": test.message,
                },
            ),
        )
    ]
    verdicts = {data["verdict"] for step, data in per_test if step == "test_done"}
    assert verdicts == {"accepted", "wrong_answer"}


def test_a_long_message_is_capped_in_the_live_event_and_whole_in_the_results():
    from grader.harnesses.contract import EVENT_MESSAGE_CHARS, TestOutcome

    outcome = TestOutcome("big", Verdict.RUNTIME_ERROR, 1.23456, "x" * 5000)
    data = outcome.event_data()
    assert data == {
        "verdict": "runtime_error",
        "time_ms": 1.235,
        "message": "x" * (EVENT_MESSAGE_CHARS - 1) + "…",
    }
    assert outcome.as_dict()["message"] == "x" * 5000


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


def test_without_bubblewrap_code_runs_unsandboxed_scrubbed_and_says_so(softmax_spec, monkeypatch):
    import grader.grading
    import grader.sandbox

    for module in (grader.grading, grader.sandbox):
        monkeypatch.setattr(module, "sandbox_kind", lambda: SandboxKind.UNSANDBOXED)
    monkeypatch.setenv("SECRET_KEY", "s3cr3t-key-value")
    code = "import os\ndef softmax(x):\n    raise RuntimeError('ENV ' + repr(dict(os.environ)))\n"
    report = _grade(softmax_spec, code)
    assert report.sandbox is SandboxKind.UNSANDBOXED
    assert report.verdict is Verdict.RUNTIME_ERROR
    assert "ENV " in report.message
    assert "s3cr3t-key-value" not in report.message


def test_with_debug_off_the_app_refuses_to_start_without_bubblewrap():
    environment = os.environ | {"PATH": "/nonexistent", "DEBUG": "0", "SECRET_KEY": "x" * 50}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "refuses to run candidate code unsandboxed" in result.stderr
