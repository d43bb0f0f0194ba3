"""A candidate opens a coding problem, writes a solution in the editor, submits it, watches
the tests arrive over the WebSocket and reads the verdict, the test rows and the speed chart."""

from __future__ import annotations

from django.contrib.auth import get_user_model

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
    assert page.get_by_role("heading", name="Fast, stable softmax on the CPU").is_visible()
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
    page.keyboard.press("Enter")
    page.locator("#live-tests tr").first.wait_for()
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
    assert page.locator("#speed-chart").is_visible()
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
    page.keyboard.press("Control+Enter")
    heading = page.locator("#verdict-heading")
    heading.wait_for(timeout=GRADING_TIMEOUT_MS)
    assert heading.inner_text() in ("Wrong answer", "Runtime error")
    failing = page.locator(
        "#test-results tbody tr", has=page.locator(".verdict:not(.verdict-accepted)")
    )
    assert failing.count() >= 1
    assert page.locator("#speed-chart").count() == 0
    assert page.locator(".measures").count() == 0  # the failure's numbers are in its message
    page.screenshot(path=str(screenshot_path("15-problem-wrong-answer")), full_page=True)
