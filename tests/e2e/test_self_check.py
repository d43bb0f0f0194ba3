"""An answer the judge is unsure of, in a browser: the self-check replaces the score, the
judge's evidence is pre-ticked, and ticking counts the points the candidate says they made."""

from __future__ import annotations

from interview.question_bank import questions_load
from tests.e2e.conftest import screenshot_path
from tests.e2e.test_coding import log_in
from tests.interview.test_answer_self_check import UNSURE_DECODE


def test_an_unsure_grade_is_a_self_check(live_stack, page):
    questions_load()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(live_stack, page, "checker", "pw-checker-1")
    page.goto(live_stack.base_url + "/practice/pd-why-memory-bound/")
    page.locator("textarea[name=text]").fill(UNSURE_DECODE)
    page.get_by_role("button", name="Check answer").click()
    check = page.locator("[data-self-check]")
    assert check.is_visible() and "not sure" in check.inner_text()
    boxes = check.locator("input[type=checkbox]")
    ticked = sum(boxes.nth(i).is_checked() for i in range(boxes.count()))
    assert 0 < ticked and check.locator("[data-self-score]").inner_text() == str(ticked)
    first_ticked = next(i for i in range(boxes.count()) if boxes.nth(i).is_checked())
    boxes.nth(first_ticked).uncheck()
    assert check.locator("[data-self-score]").inner_text() == str(ticked - 1)
    page.screenshot(path=str(screenshot_path("answer-self-check")), full_page=True)
    assert errors == []
