"""A newcomer's first session: sign up, answer a practice question, see it on the dashboard,
start a mock interview from there, write code in its coding round's editor, and finish it to
its scorecard and its charts."""

from __future__ import annotations

from playwright.sync_api import expect

from grader.bank import problems_load
from grader.models import Problem, Submission
from interview.models import Attempt, Loop
from interview.question_bank import questions_load
from tests.e2e.conftest import screenshot_path
from tests.e2e.test_coding import editor_replace


def test_sign_up_practise_and_finish_a_mock_loop(live_stack, page):
    questions_load()
    problems_load()
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
    expect(page.locator(".feedback.ok")).to_be_visible()
    assert Attempt.objects.get(user__username="hopper").correct
    page.screenshot(path=str(screenshot_path("03-practice-answered")), full_page=True)

    page.get_by_role("navigation").get_by_role("link", name="Dashboard").click()
    page.wait_for_url(live_stack.base_url + "/dashboard/")
    assert page.evaluate("Chart.getChart('progress-chart').data.labels") == ["continuous-batching"]
    assert page.evaluate("Chart.getChart('progress-chart').data.datasets[0].data") == [100]
    page.screenshot(path=str(screenshot_path("23-dashboard-progress")), full_page=True)

    page.get_by_label("Length").select_option("30")
    page.get_by_role("button", name="Start a mock interview").click()
    expect(page.get_by_role("heading", name="Round 1")).to_be_visible()
    expect(page.locator("#countdown")).to_be_visible()
    page.screenshot(path=str(screenshot_path("50-mock-round")), full_page=True)

    # The coding round: the same editor as the problem pages, on the starter code.
    loop = Loop.objects.get(user__username="hopper")
    coding = loop.rounds.get(kind="coding")
    problem = Problem.objects.get(slug=coding.problem_slug)
    page.get_by_role("link", name=f"Next round: {coding.title}").click()
    page.locator(".CodeMirror").wait_for()
    assert page.evaluate("InferPrep.editor.getValue()") == problem.starter_code
    solution = "def answer():\n    return 42\n"
    editor_replace(page, solution)
    page.wait_for_function(
        "() => document.getElementById('draft-status').textContent.startsWith('Draft saved')"
    )
    page.reload()  # the draft of this round comes back
    assert page.inner_text("#draft-status") == "Your last draft was restored."
    assert page.evaluate("InferPrep.editor.getValue()") == solution
    page.screenshot(path=str(screenshot_path("52-mock-coding-round-editor")), full_page=True)
    page.locator(".CodeMirror").click()
    page.keyboard.press("Control+Enter")  # submits what the editor holds
    page.get_by_text("Submitted.", exact=True).wait_for()
    page.locator(".CodeMirror").wait_for()  # the round again, its editor on what was sent
    submitted = Submission.objects.get(user__username="hopper")
    # A form posts its text with CRLF line breaks (HTML's rule); Python reads either.
    assert submitted.code.replace("\r\n", "\n") == solution
    assert submitted.purpose == "interview"
    expect(page.locator("main li a", has_text=f"#{submitted.pk}")).to_be_visible()
    assert page.evaluate("InferPrep.editor.getValue()") == solution

    page.get_by_role("button", name="Finish the loop").click()
    page.get_by_role("heading", name="Scorecard").wait_for()
    page.wait_for_function("() => window.Chart && Chart.getChart('round-time-chart')")
    loop.refresh_from_db()
    coding.refresh_from_db()
    assert loop.status == "finished"
    # Its charts: score per round, and time used against time allotted.
    rounds = list(loop.rounds.order_by("position"))
    labels = [f"{r.position + 1}. {r.get_kind_display()}" for r in rounds]
    assert page.evaluate("Chart.getChart('round-score-chart').data.labels") == labels
    scores = [round(100 * r["score"], 1) for r in loop.scorecard["rounds"]]
    assert page.evaluate("Chart.getChart('round-score-chart').data.datasets[0].data") == scores
    times = page.evaluate(
        "Chart.getChart('round-time-chart').data.datasets.map(d => [d.label, d.data])"
    )
    used = round((submitted.created_at - coding.started_at).total_seconds() / 60, 2)
    assert times == [
        ["allotted", [r.duration_s / 60 for r in rounds]],
        ["used (to your last answer)", [used if r.kind == "coding" else 0 for r in rounds]],
    ]
    page.screenshot(path=str(screenshot_path("51-mock-scorecard")), full_page=True)

    page.get_by_role("navigation").get_by_role("link", name="Dashboard").click()
    assert "rating" in page.inner_text("#loops-h + ul") or "Finished" in page.inner_text(
        "#loops-h + ul"
    )
    assert errors == []  # no script failed on any page
