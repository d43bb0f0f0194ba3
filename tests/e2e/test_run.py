"""Run against the real stack (Daphne and a Celery worker with the sandbox): `inferprep run`
from a terminal, the Run button of the problem page, then a submission that opens the editorial,
and the Run button of a mock loop's coding round. cpu-softmax, the cheapest problem: a Run is its
three public examples."""

from __future__ import annotations

import random
import re

from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from grader.bank import PROBLEMS_DIR, problems_load
from grader.models import Submission
from interview import services as interview_services
from interview.question_bank import questions_load
from tests.e2e.conftest import screenshot_path
from tests.e2e.test_cli import inferprep
from tests.e2e.test_coding import GRADING_TIMEOUT_MS, editor_replace, log_in

SOFTMAX = PROBLEMS_DIR / "cpu-softmax"


def test_cli_run_shows_each_example_and_records_no_submission(live_stack, tmp_path):
    problems_load()
    get_user_model().objects.create_user("cli-user", password="pw-cli-user-1")
    assert inferprep(live_stack, tmp_path, "login", "--username", "cli-user").returncode == 0

    wrong = tmp_path / "wrong.py"
    wrong.write_text((SOFTMAX / "wrong" / "wrong_axis.py").read_text())
    failed = inferprep(
        live_stack, tmp_path, "run", "cpu-softmax", str(wrong), "--input", "[[1, 2, 3]]"
    )
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert re.search(r"^small-float64\s+wrong_answer", failed.stdout, re.MULTILINE)
    assert re.search(r"^your-input-1\s+wrong_answer", failed.stdout, re.MULTILINE)
    assert "your-input-1: first values out of tolerance" in failed.stdout  # the short diff
    assert "run: wrong_answer\n0 of 4 examples passed" in failed.stdout

    reference = tmp_path / "reference.py"
    reference.write_text((SOFTMAX / "reference.py").read_text() + "\nprint('hello from run')\n")
    passed = inferprep(
        live_stack, tmp_path, "run", "cpu-softmax", str(reference), "--input", '[[0, 0, "-inf"]]'
    )
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "] 4/4 your-input-1: accepted (" in passed.stdout  # live, as the worker judged it
    assert "your-input-1: your output [[0.5, 0.5, 0.0]]" in passed.stdout
    assert "stdout:\nhello from run" in passed.stdout
    assert "run: accepted\n4 of 4 examples passed" in passed.stdout

    malformed = inferprep(
        live_stack, tmp_path, "run", "cpu-softmax", str(reference), "--input", "[[1, 2], [3]]"
    )
    assert malformed.returncode == 2
    assert "every row needs the same number of values" in malformed.stderr
    unknown = inferprep(live_stack, tmp_path, "run", "no-such-problem", str(reference))
    assert unknown.returncode == 2 and "no published problem 'no-such-problem'" in unknown.stderr
    # Two Runs, both graded on the worker and stored as Runs only: no submission.
    runs = Submission.objects.values_list("purpose", "state", "score")
    assert sorted(runs) == [("run", "graded", None)] * 2


def test_run_in_the_browser_then_submit_opens_the_editorial(live_stack, page):
    problems_load()
    log_in(live_stack, page, "ada", "pw-ada-run-1")
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live_stack.base_url}/problems/cpu-softmax/")
    expect(page.locator("#editorial")).to_contain_text("opens once you have an accepted")
    assert "a full copy at twice the size" not in page.content()

    editor_replace(page, (SOFTMAX / "wrong" / "wrong_axis.py").read_text())
    page.get_by_role("button", name="Run", exact=True).click()
    heading = page.locator("#verdict-heading")
    heading.wait_for(timeout=GRADING_TIMEOUT_MS)
    assert heading.inner_text() == "Run: Wrong answer"
    assert page.inner_text("#live-phase") == "Examples run: wrong answer"
    rows = page.locator("#run-examples > tbody > tr")
    assert rows.count() == 3
    assert rows.first.get_attribute("data-verdict") == "wrong_answer"
    expect(rows.first.locator("table.diff")).to_be_visible()  # the first mismatches
    page.screenshot(path=str(screenshot_path("16-run-wrong-answer")), full_page=True)

    editor_replace(page, (SOFTMAX / "reference.py").read_text())
    page.locator("#custom-input summary").click()
    page.get_by_label("Your input").fill("[[1, 1]]")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#verdict-heading")).to_have_text(
        "Run: every example passed", timeout=GRADING_TIMEOUT_MS
    )
    assert rows.count() == 4
    expect(rows.last).to_contain_text("Your output: [[0.5, 0.5]]")
    page.screenshot(path=str(screenshot_path("17-run-accepted")), full_page=True)
    # Runs are not submissions: none in the history, and the editorial stays closed.
    assert page.locator("#history").is_hidden()
    assert "a full copy at twice the size" not in page.content()

    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#verdict-heading")).to_have_text("Accepted", timeout=GRADING_TIMEOUT_MS)
    expect(page.locator("#editorial")).to_contain_text("a full copy at twice the size")
    assert page.locator("#history tbody tr").count() == 1
    purposes = Submission.objects.filter(user__username="ada").values_list("purpose", flat=True)
    assert sorted(purposes) == ["practice", "run", "run"]
    page.screenshot(path=str(screenshot_path("18-editorial-open")), full_page=True)
    assert errors == []


def test_run_in_a_mock_loops_coding_round_is_not_a_submission(live_stack, page):
    """The round's Run button runs the examples as on the problem page; the round's list of
    submissions, and so its score, sees only what was submitted."""
    questions_load()
    problems_load()
    log_in(live_stack, page, "grace", "pw-grace-run-1")
    loop = interview_services.loop_start(
        user=get_user_model().objects.get(username="grace"), level="mid", length_min=30,
        rng=random.Random(4),
    )  # fmt: skip
    coding = loop.rounds.get(kind="coding")
    coding.problem_slug = "cpu-softmax"  # the cheapest problem: a Run is three examples
    coding.save(update_fields=["problem_slug"])
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live_stack.base_url}/loops/{loop.pk}/rounds/{coding.position}/")
    page.locator(".CodeMirror").wait_for()
    editor_replace(page, (SOFTMAX / "wrong" / "wrong_axis.py").read_text())
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#verdict-heading")).to_have_text(
        "Run: Wrong answer", timeout=GRADING_TIMEOUT_MS
    )
    assert page.locator("#run-examples > tbody > tr").count() == 3
    assert page.inner_text("#live-phase") == "Examples run: wrong answer"
    page.screenshot(path=str(screenshot_path("53-mock-coding-round-run")), full_page=True)
    page.reload()
    expect(page.locator("main ul li", has_text="None yet.")).to_be_visible()
    assert list(Submission.objects.values_list("purpose", flat=True)) == ["run"]
    assert errors == []
