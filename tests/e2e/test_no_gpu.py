"""A kernel problem in a browser on a site with no GPU worker: the page says so, offers
correctness only on a CPU worker, and the verdict shows no speed, no rank, no "solved"."""

from __future__ import annotations

from playwright.sync_api import expect

from grader.bank import PROBLEMS_DIR, problems_load
from grader.models import Submission
from tests.e2e.conftest import screenshot_path
from tests.e2e.test_coding import GRADING_TIMEOUT_MS, editor_replace, log_in

SLUG = "paged-decode-attention"


def test_a_kernel_without_a_gpu_is_checked_for_correctness_only(live_stack, page):
    problems_load()
    log_in(live_stack, page, "nogpu", "pw-nogpu-kernel-1")
    page.goto(f"{live_stack.base_url}/problems/{SLUG}/")
    expect(page.locator("#no-card")).to_have_text(
        "No GPU worker is running, so no speed can be measured now."
    )
    choice = page.get_by_role("radio", name="Correctness only: no GPU", exact=False)
    expect(choice).to_be_checked()
    assert page.get_by_role("radio").count() == 1  # no card class is live

    editor_replace(page, (PROBLEMS_DIR / SLUG / "reference.py").read_text())
    page.get_by_role("button", name="Submit").click()
    heading = page.locator("#verdict-heading")
    heading.wait_for(timeout=GRADING_TIMEOUT_MS)
    assert heading.inner_text() == "Accepted"
    expect(page.locator("#correctness-only")).to_contain_text("correctness only: no GPU")
    assert "× the reference" not in page.inner_text("#results")
    page.screenshot(path=str(screenshot_path("40-kernel-correctness-only")), full_page=True)
    assert Submission.objects.get(user__username="nogpu").queue == "cpu"

    page.goto(f"{live_stack.base_url}/problems/")
    row = page.locator("tr", has=page.get_by_role("link", name="Paged decode attention in Triton"))
    expect(row).to_contain_text("correct (speed not measured)")
    page.goto(f"{live_stack.base_url}/leaderboards/{SLUG}/")
    expect(page.locator("main")).to_contain_text("No accepted, timed submissions")
