"""Dashboard, profile (history and API tokens) and leaderboards in a real browser."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import expect

from grader.bank import problems_load
from grader.models import ApiToken, Problem, Submission
from tests.e2e.conftest import screenshot_path
from tests.e2e.test_coding import log_in

H100 = "NVIDIA H100 80GB HBM3"
EPYC = "AMD EPYC 7B13"


def graded(username: str, score: float, label: str, *, verdict="accepted", review=False):
    """A graded submission of cpu-softmax as the worker would have stored it."""
    user, _ = get_user_model().objects.get_or_create(username=username)
    median_ns = 1e6 / score
    return Submission.objects.create(
        user=user,
        problem=Problem.objects.get(slug="cpu-softmax"),
        code="import numpy as np\n",
        seed=1,
        state=Submission.State.GRADED,
        verdict=verdict,
        score=score,
        needs_review=review,
        graded_at=timezone.now() - timedelta(minutes=5),
        hardware={"label": label},
        timing={
            "candidate": {
                "median_ns": median_ns,
                "p10_ns": median_ns * 0.95,
                "p90_ns": median_ns * 1.1,
                "samples_ns": [median_ns] * 5,
            },
            "reference": {"median_ns": 1e6, "p10_ns": 0.97e6, "p90_ns": 1.05e6},
        },
    )


def test_dashboard_and_profile_tokens(live_stack, page):
    problems_load()
    log_in(live_stack, page, "barbara", "pw-barbara-pages-1")
    graded("barbara", 1.2, EPYC)
    page.get_by_role("navigation").get_by_role("link", name="Dashboard").click()
    assert page.inner_text("#due-count") == "0"
    expect(page.get_by_role("button", name="Start a mock interview")).to_be_visible()
    assert "Fast, stable softmax on the CPU" in page.inner_text("#subs-h + table")
    page.screenshot(path=str(screenshot_path("20-dashboard")), full_page=True)

    page.get_by_role("navigation").get_by_role("link", name="barbara").click()
    page.get_by_label("Name").fill("laptop")
    page.get_by_role("button", name="Create token").click()
    raw = page.get_by_role("textbox", name="Token").input_value()
    token = ApiToken.objects.get(user__username="barbara")
    assert raw.startswith(token.prefix) and token.revoked_at is None
    page.screenshot(path=str(screenshot_path("21-profile-new-token")), full_page=True)

    page.reload()
    assert page.get_by_role("textbox", name="Token").count() == 0  # shown once only
    page.get_by_role("button", name="Revoke token laptop").click()
    assert "Token revoked" in page.inner_text(".messages")
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert "revoked" in page.inner_text("#tokens")
    page.screenshot(path=str(screenshot_path("22-profile-revoked")), full_page=True)


def test_leaderboards_per_hardware_hide_suspects(live_stack, page):
    problems_load()
    graded("ada", 1.5, EPYC)
    graded("ada", 1.1, EPYC)  # only her best counts
    graded("bob", 1.3, EPYC)
    graded("mallory", 9.0, EPYC, verdict="suspect", review=True)
    graded("carol", 3.0, H100)
    # The boards are public: a visitor reaches them from the nav before logging in.
    page.goto(live_stack.base_url + "/")
    page.get_by_role("navigation").get_by_role("link", name="Leaderboards").click()
    assert page.locator("section.board").count() == 2
    log_in(live_stack, page, "viewer", "pw-viewer-pages-1")

    page.get_by_role("navigation").get_by_role("link", name="Leaderboards").click()
    boards = page.locator("section.board")
    assert boards.count() == 2  # one per hardware: a CPU score is not ranked with an H100's
    cpu_board = page.locator("section.board", has=page.get_by_role("heading", name=f"on {EPYC}"))
    names = cpu_board.locator("tbody tr td:nth-child(2)").all_inner_texts()
    assert names == ["ada", "bob"]
    assert cpu_board.locator("tbody tr").first.locator("td").nth(2).inner_text() == "1.500×"
    assert "mallory" not in page.inner_text("main")
    page.screenshot(path=str(screenshot_path("30-leaderboards")), full_page=True)

    page.get_by_label("Hardware").select_option(H100)
    page.get_by_role("button", name="Show").click()
    assert page.locator("section.board").count() == 1
    assert page.locator("section.board tbody tr td:nth-child(2)").all_inner_texts() == ["carol"]

    page.goto(live_stack.base_url + "/leaderboards/cpu-softmax/")
    assert page.locator("section.board").count() == 2
    page.screenshot(path=str(screenshot_path("31-leaderboard-problem")), full_page=True)
