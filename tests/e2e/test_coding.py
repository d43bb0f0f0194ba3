"""A candidate opens a coding problem, writes a solution in the editor, submits it, watches
the tests arrive over the WebSocket and reads the verdict, the test rows and the speed chart."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from grader.bank import PROBLEMS_DIR, problems_load
from grader.models import Submission
from tests.e2e.conftest import screenshot_path

# Grading runs the tests, then times the solution against the reference on the worker.
GRADING_TIMEOUT_MS = 180_000


def log_in(live_stack, page, username: str, password: str) -> None:
    get_user_model().objects.create_user(username, password=password)
    page.goto(live_stack.base_url + "/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(live_stack.base_url + "/")


# Notes, as each test's verdict row arrives, what the page shows then: the row, the progress
# bar, and whether the final verdict was already on the page (it must not be: rows are live).
WATCH_LIVE_ROWS = """() => {
  window.liveRows = [];
  const tbody = document.getElementById("live-tests");
  new MutationObserver(() => {
    const judged = tbody.querySelectorAll("tr[data-verdict]");
    const last = window.liveRows[window.liveRows.length - 1];
    if (!judged.length || (last && last.judged === judged.length)) return;
    const row = judged[judged.length - 1];
    window.liveRows.push({
      judged: judged.length,
      test: row.children[1].textContent,
      verdict: row.querySelector(".verdict").textContent,
      message: row.querySelector(".message").textContent,
      bar: Number(document.getElementById("live-progress").value),
      verdictShown: document.getElementById("verdict-heading") !== null,
    });
  }).observe(tbody, { subtree: true, childList: true, attributes: true });
}"""


def live_rows(page, total: int) -> list[dict]:
    """The rows noted by WATCH_LIVE_ROWS, each checked to have come before the verdict."""
    rows = page.evaluate("window.liveRows")
    assert rows and not any(row["verdictShown"] for row in rows)
    judged = [row["judged"] for row in rows]
    assert judged == sorted(set(judged))  # one more finished test each time
    for row in rows:  # the bar moves per finished test: 10% at the start, 80% when all ran
        assert row["bar"] == pytest.approx(10 + 70 * row["judged"] / total)
    return rows


def editor_replace(page, code: str) -> None:
    """Select everything in CodeMirror and type ``code`` over it, as a person pasting would."""
    page.locator(".CodeMirror").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(code)


def test_solve_a_problem_in_the_editor(live_stack, page):
    problems_load()
    log_in(live_stack, page, "grace", "pw-grace-coding-1")
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.get_by_role("navigation").get_by_role("link", name="Coding").click()
    page.get_by_role("link", name="Fast, stable softmax on the CPU").click()
    expect(page.get_by_role("heading", name="Fast, stable softmax on the CPU")).to_be_visible()
    assert "def softmax" in page.locator(".CodeMirror").inner_text()
    page.screenshot(path=str(screenshot_path("10-problem-page")), full_page=True)

    # A draft survives a reload.
    reference = (PROBLEMS_DIR / "cpu-softmax" / "reference.py").read_text()
    editor_replace(page, reference)
    page.wait_for_function(
        "() => document.getElementById('draft-status').textContent.startsWith('Draft saved')"
    )
    page.reload()
    assert page.inner_text("#draft-status") == "Your last draft was restored."
    assert page.evaluate("InferPrep.editor.getValue()") == reference

    page.locator(".CodeMirror").click()
    page.keyboard.press("Escape")  # the keyboard way out of the editor
    assert page.evaluate("document.activeElement.id") == "submit-button"
    page.evaluate(WATCH_LIVE_ROWS)
    page.keyboard.press("Enter")
    page.locator("#live-tests tr[data-verdict]").first.wait_for()
    page.screenshot(path=str(screenshot_path("11-problem-grading-live")), full_page=True)
    heading = page.locator("#verdict-heading")
    heading.wait_for(timeout=GRADING_TIMEOUT_MS)
    assert heading.inner_text() == "Accepted"
    assert page.inner_text("#live-phase") == "Graded: accepted"
    assert int(page.get_attribute("#live-progress", "value")) == 100

    submission = Submission.objects.get(user__username="grace")
    test_rows = page.locator("#test-results tbody tr")
    assert test_rows.count() == submission.tests.count() > 0
    assert page.locator("#live-tests tr").count() == submission.tests.count()  # one per test event
    rows = live_rows(page, total=submission.tests.count())
    assert rows[-1]["judged"] == submission.tests.count()
    assert {row["verdict"] for row in rows} == {"Accepted"}
    assert rows[-1]["test"] == submission.tests.last().name
    expect(page.locator("#speed-chart")).to_be_visible()
    assert page.evaluate("Chart.getChart('speed-chart').data.datasets.length") == 6
    history = page.locator("#history tbody tr")
    history.first.wait_for()
    assert history.count() == 1 and "Accepted" in history.first.inner_text()
    page.screenshot(path=str(screenshot_path("12-problem-verdict")), full_page=True)

    page.get_by_role("link", name="Permalink").click()
    page.wait_for_url(f"{live_stack.base_url}/submissions/{submission.pk}/")
    page.wait_for_load_state("load")
    assert page.locator("#verdict-heading").inner_text() == "Accepted"
    assert page.evaluate("Chart.getChart('speed-chart') !== undefined")
    page.screenshot(path=str(screenshot_path("13-submission-results")), full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_stack.base_url}/problems/cpu-softmax/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing runs off-screen
    page.screenshot(path=str(screenshot_path("14-problem-phone")), full_page=True)
    assert errors == []  # no script failed on any page


def test_a_wrong_solution_shows_the_failing_test(live_stack, page):
    problems_load()
    log_in(live_stack, page, "linus", "pw-linus-coding-1")
    page.goto(f"{live_stack.base_url}/problems/cpu-softmax/")
    wrong = (PROBLEMS_DIR / "cpu-softmax" / "wrong" / "unstable_exponent.py").read_text()
    editor_replace(page, wrong)
    page.evaluate(WATCH_LIVE_ROWS)
    page.keyboard.press("Control+Enter")
    heading = page.locator("#verdict-heading")
    heading.wait_for(timeout=GRADING_TIMEOUT_MS)
    assert heading.inner_text() in ("Wrong answer", "Runtime error")
    # The failing test's row said so, with the grader's message, before the verdict came.
    tests = Submission.objects.get(user__username="linus").tests
    failed = [row for row in live_rows(page, tests.count()) if row["verdict"] != "Accepted"]
    first = tests.exclude(verdict="accepted")[0]
    assert failed[0]["test"] == first.name
    assert failed[0]["verdict"] == first.get_verdict_display().capitalize()
    assert failed[0]["message"] == first.message
    failing = page.locator(
        "#test-results tbody tr", has=page.locator(".verdict:not(.verdict-accepted)")
    )
    assert failing.count() >= 1
    assert page.locator("#speed-chart").count() == 0
    assert page.locator(".measures").count() == 0  # the failure's numbers are in its message
    page.screenshot(path=str(screenshot_path("15-problem-wrong-answer")), full_page=True)
