"""A newcomer's first session: sign up, answer a practice question, see it on the dashboard,
start a mock interview from there and finish it to its scorecard."""

from __future__ import annotations

from interview.models import Attempt, Loop
from interview.question_bank import questions_load
from tests.e2e.conftest import screenshot_path


def test_sign_up_practise_and_finish_a_mock_loop(live_stack, page):
    questions_load()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(live_stack.base_url + "/accounts/signup/")
    page.get_by_label("Username").fill("hopper")
    page.get_by_label("Email").fill("hopper@example.com")
    page.locator("#id_password1").fill("pw-hopper-journey-1")
    page.locator("#id_password2").fill("pw-hopper-journey-1")
    page.screenshot(path=str(screenshot_path("02-sign-up")), full_page=True)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(live_stack.base_url + "/")
    assert page.inner_text(".who") == "hopper"

    page.goto(live_stack.base_url + "/practice/cb-what/")
    page.get_by_label("The scheduler decides the batch at every decode step", exact=False).check()
    page.get_by_role("button", name="Check answer").click()
    assert page.locator(".feedback.ok").is_visible()
    assert Attempt.objects.get(user__username="hopper").correct
    page.screenshot(path=str(screenshot_path("03-practice-answered")), full_page=True)

    page.get_by_role("navigation").get_by_role("link", name="Dashboard").click()
    page.wait_for_url(live_stack.base_url + "/dashboard/")
    assert page.evaluate("Chart.getChart('progress-chart').data.labels") == ["continuous-batching"]
    assert page.evaluate("Chart.getChart('progress-chart').data.datasets[0].data") == [100]
    page.screenshot(path=str(screenshot_path("23-dashboard-progress")), full_page=True)

    page.get_by_label("Length").select_option("30")
    page.get_by_role("button", name="Start a mock interview").click()
    assert page.get_by_role("heading", name="Round 1").is_visible()
    assert page.locator("#countdown").is_visible()
    page.screenshot(path=str(screenshot_path("50-mock-round")), full_page=True)

    page.get_by_role("button", name="Finish the loop").click()
    page.get_by_role("heading", name="Scorecard").wait_for()
    loop = Loop.objects.get(user__username="hopper")
    assert loop.status == "finished"
    page.screenshot(path=str(screenshot_path("51-mock-scorecard")), full_page=True)

    page.get_by_role("navigation").get_by_role("link", name="Dashboard").click()
    assert "rating" in page.inner_text("#loops-h + ul") or "Finished" in page.inner_text(
        "#loops-h + ul"
    )
    assert errors == []  # no script failed on any page
