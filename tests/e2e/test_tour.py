"""A new user's whole tour in one browser against one server: sign-up, practice, a full mock
loop to its scorecard, review with a self-rating, every problem page, a graded result, the
leaderboards, the lab, the calculator, the profile and the API docs, at desktop and phone
widths. Every page must load under the site's Content-Security-Policy without a console error
(a refused inline script or style is one), show no raw "{placeholder}" and no
"0.000x" ratio, and fit a 390 px phone without sideways scrolling. Each page's screenshot
goes to var/screenshots/tour-*.png, and the load times to var/screenshots/tour-timings.json."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field

from playwright.sync_api import expect

from grader.bank import PROBLEMS_DIR, problems_load
from grader.models import Problem, Submission
from interview.models import Loop, LoopRound, RoundKind
from interview.question_bank import questions_load
from tests.e2e.conftest import SCREENSHOTS_DIR, screenshot_path
from tests.e2e.test_coding import GRADING_TIMEOUT_MS, editor_replace

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
USERNAME, PASSWORD = "turing", "pw-turing-tour-1"
# Grading a design answer or a follow-up loads the sentence-embedding model in the server on
# its first use; a loaded two-core machine needs most of a minute for that.
RUBRIC_GRADE_TIMEOUT_MS = 90_000
# Any other page or action, on the same loaded machine.
PAGE_TIMEOUT_MS = 30_000
# A raw template placeholder as the bank writes them: {tokens}, {model.name}.
PLACEHOLDER = re.compile(r"\{[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)?\}")
# Template syntax Django did not read: a {# comment #} that spans lines is printed as text.
RAW_TEMPLATE = re.compile(r"\{#|#\}|\{%|%\}")
# A speed ratio of zero is what a failed run used to show instead of no ratio at all.
ZERO_RATIO = re.compile(r"\b0\.0+\s*[x×]")
PAGE_CHECKS = """() => ({
  overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
  text: document.body.innerText,
})"""


@dataclass
class Tour:
    """One browser context at one width, checking and photographing every page it loads."""

    base_url: str
    width: str
    page: object
    console_errors: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    visited: list[tuple[str, str]] = field(default_factory=list)
    count: int = 0

    def watch(self) -> None:
        self.page.on(
            "console",
            lambda message: (
                message.type == "error"
                and self.console_errors.append(f"{self.page.url}: {message.text}")
            ),
        )
        self.page.on(
            "pageerror", lambda error: self.console_errors.append(f"{self.page.url}: {error}")
        )

    def open(self, name: str, path: str) -> None:
        """Load ``path`` afresh, timing it, then check and photograph it."""
        started = time.perf_counter()
        response = self.page.goto(self.base_url + path, wait_until="load")
        self.timings_ms[f"{self.width} {name} ({path})"] = round(
            (time.perf_counter() - started) * 1000, 1
        )
        self.visited.append((name, path))
        # The policy is in force, so a page that breaks it shows as a console error below.
        assert "script-src 'self'" in response.headers["content-security-policy"], name
        self.check(name)

    def check(self, name: str, placeholders_allowed: bool = False) -> None:
        """The page as it stands: no overflow on a phone, no raw placeholder or template
        text, no 0.000x."""
        self.page.wait_for_load_state("load")
        state = self.page.evaluate(PAGE_CHECKS)
        self.count += 1
        self.page.screenshot(
            path=str(screenshot_path(f"tour-{self.width}-{self.count:02d}-{name}")), full_page=True
        )
        if self.width == "phone":
            assert state["overflow"] <= 0, f"{name}: {state['overflow']} px of sideways scroll"
        if not placeholders_allowed:
            assert not PLACEHOLDER.search(state["text"]), (
                f"{name}: {PLACEHOLDER.search(state['text'])}"
            )
        assert not ZERO_RATIO.search(state["text"]), f"{name}: a 0.000x ratio"
        assert not RAW_TEMPLATE.search(state["text"]), f"{name}: raw template text on the page"
        assert self.console_errors == [], self.console_errors


def test_tour_of_every_page_at_desktop_and_phone_widths(live_stack, browser):
    questions_load()
    problems_load()
    desktop_context = browser.new_context(viewport=DESKTOP)
    desktop = Tour(live_stack.base_url, "desktop", desktop_context.new_page())
    desktop.page.set_default_timeout(PAGE_TIMEOUT_MS)
    desktop.watch()

    desktop.open("welcome", "/")
    desktop.open("sign-up", "/accounts/signup/")
    _sign_up(desktop)
    _practise(desktop)
    _mock_loop_to_its_scorecard(desktop, live_stack)
    _review_with_a_self_rating(desktop)
    for problem in Problem.objects.filter(published=True).order_by("slug"):
        desktop.open(f"problem-{problem.slug}", f"/problems/{problem.slug}/")
    _graded_result(desktop)
    desktop.open("leaderboards", "/leaderboards/")
    desktop.open("leaderboard-cpu-softmax", "/leaderboards/cpu-softmax/")
    desktop.open("lab", "/lab/")
    _calculator(desktop)
    for name, path in [
        ("dashboard", "/"),
        ("progress", "/progress/"),
        ("design", "/design/"),
        ("mock-interviews", "/loops/"),
        ("profile", "/profile/"),
        ("admin-log-in", "/admin/login/"),
    ]:
        desktop.open(name, path)
    _api_docs(desktop)

    phone_context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    phone = Tour(live_stack.base_url, "phone", phone_context.new_page())
    phone.page.set_default_timeout(PAGE_TIMEOUT_MS)
    phone.watch()
    phone.open("log-in", "/accounts/login/")
    phone.page.get_by_label("Username").fill(USERNAME)
    phone.page.get_by_label("Password").fill(PASSWORD)
    phone.page.get_by_role("button", name="Log in").click()
    phone.page.wait_for_url(live_stack.base_url + "/")
    # The navigation folds behind Menu instead of filling the first screen.
    nav = phone.page.get_by_role("navigation", name="Main")
    expect(nav).to_be_hidden()
    phone.page.get_by_role("button", name="Menu").click()
    expect(nav.get_by_role("link", name="Practice")).to_be_visible()
    phone.check("menu-open")
    for name, path in desktop.visited:
        if path != "/accounts/signup/" and name != "welcome":
            phone.open(name, path)
    _api_docs(phone)

    SCREENSHOTS_DIR.joinpath("tour-timings.json").write_text(
        json.dumps(desktop.timings_ms | phone.timings_ms, indent=1)
    )
    desktop_context.close()
    phone_context.close()


def _sign_up(tour: Tour) -> None:
    page = tour.page
    page.get_by_role("button", name="Create account").click()  # empty: errors beside fields
    assert page.locator(".field.has-error").count() >= 2
    tour.check("sign-up-errors")
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Email").fill(f"{USERNAME}@example.com")
    page.locator("#id_password1").fill(PASSWORD)
    page.locator("#id_password2").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(tour.base_url + "/")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    tour.check("dashboard-new")


def _practise(tour: Tour) -> None:
    tour.open("practice", "/practice/")
    tour.open("practice-question", "/practice/cb-what/")
    page = tour.page
    page.get_by_label("The scheduler decides the batch at every decode step", exact=False).check()
    page.get_by_role("button", name="Check answer").click()
    page.locator(".feedback").wait_for()
    assert page.locator(".explanation p").count() >= 1
    tour.check("practice-answered")
    page.get_by_role("button", name="Add to my review queue").click()
    assert "Added to your review queue" in page.inner_text(".messages")


def _mock_loop_to_its_scorecard(tour: Tour, live_stack) -> None:
    """Every concept answered, the design submitted, a follow-up answered just before Finish;
    the scorecard shows each answer, the right answer and the explanation, and the follow-up."""
    page = tour.page
    tour.open("mock-interviews", "/loops/")
    page.get_by_label("Level").select_option("junior")
    page.get_by_label("Length").select_option("30")
    page.get_by_role("button", name="Start the loop").click()
    page.get_by_role("heading", name="Round 1").wait_for()
    loop = Loop.objects.get(user__username=USERNAME)
    concepts = loop.rounds.get(kind=RoundKind.CONCEPTS)
    for _ in range(concepts.items.count()):
        form = page.locator(".loop-items li form").first
        _answer_concept(form)
        form.get_by_role("button", name="Submit answer").click()
        page.wait_for_load_state("load")
    assert page.locator(".loop-items li form").count() == 0
    assert page.locator(".recorded").count() == concepts.items.count()
    tour.check("mock-concepts-answered")

    design = loop.rounds.get(kind=RoundKind.DESIGN)
    tour.open("mock-design-round", f"/loops/{loop.pk}/rounds/{design.position}/")
    page.set_default_timeout(RUBRIC_GRADE_TIMEOUT_MS)  # the design and follow-ups are graded
    for number in page.locator("#design-answer input[name^=numeric-]").all():
        number.fill("1000")
    page.locator("#design-answer textarea").first.fill(
        "KV cache per token is 2 x layers x KV heads x head dim x bytes; decode is memory bound."
    )
    page.get_by_role("button", name="Submit the design").click()
    page.locator(".recorded").first.wait_for()
    follow_ups = page.locator("article.follow-up")
    follow_ups.first.wait_for()
    assert follow_ups.count() >= 2

    # Finish with an answer typed but not sent: it asks, and staying keeps the answer.
    pending = follow_ups.nth(1).locator("textarea")
    pending.fill("A typed answer not yet sent.")
    dialogs: list[str] = []
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.get_by_role("button", name="Finish the loop").click()
    page.wait_for_function("() => !document.querySelector('[data-loop-finish] button').disabled")
    assert dialogs and "not submitted" in dialogs[0]
    assert pending.input_value() == "A typed answer not yet sent."
    pending.fill("")

    # A follow-up answered, then Finish at once, while it is still being graded.
    answer = "Shed load early: admission control with a bounded queue and 429s with Retry-After."
    follow_ups.first.locator("textarea").fill(answer)
    follow_ups.first.get_by_role("button", name="Answer the follow-up").click()
    page.get_by_role("button", name="Finish the loop").click()
    page.get_by_role("heading", name="Scorecard").wait_for()
    design = LoopRound.objects.get(pk=design.pk)
    assert [f["answer"] for f in design.follow_ups.values()] == [answer]
    kept = page.locator("section.follow-up", has_text=answer)
    assert kept.count() == 1 and "Your answer:" in kept.inner_text()

    answers = page.locator("li.concept-answer")
    assert answers.count() == concepts.items.count()
    for index in range(answers.count()):
        block = answers.nth(index)
        text = block.inner_text()
        assert "your pick:" in text or "Your answer" in text, text
        assert "Right answer:" in text, text
        assert block.locator(".explanation").inner_text().strip(), text
        assert block.locator(".source a").count() == 1
    tour.check("scorecard")
    tour.visited.append(("scorecard", f"/loops/{loop.pk}/scorecard/"))
    page.set_default_timeout(PAGE_TIMEOUT_MS)


def _answer_concept(form) -> None:
    """Some answer to whatever the question asks: the first choice, a number, or a sentence."""
    if form.locator("input[type=radio], input[type=checkbox]").count():
        form.locator("input[type=radio], input[type=checkbox]").first.check()
    elif form.locator("input[name=value]").count():
        form.locator("input[name=value]").fill("1024")
    else:
        form.locator("textarea").fill("The KV cache grows with the context and the batch.")


def _review_with_a_self_rating(tour: Tour) -> None:
    tour.open("review", "/review/")
    page = tour.page
    form = page.locator("main form.stack")
    _answer_concept(form)
    form.get_by_role("button", name="Check answer").click()
    page.get_by_role("heading", name="How well did you recall it?").wait_for()
    tour.check("review-answered")
    page.get_by_role("button", name=re.compile(r"^Hard")).click()
    assert "Rated Hard" in page.inner_text(".messages")
    tour.check("review-rated")


def _graded_result(tour: Tour) -> None:
    """The reference solution of cpu-softmax graded through its page by the real worker."""
    tour.open("problem-cpu-softmax-editor", "/problems/cpu-softmax/")
    page = tour.page
    editor_replace(page, (PROBLEMS_DIR / "cpu-softmax" / "reference.py").read_text())
    started = time.perf_counter()
    page.keyboard.press("Control+Enter")
    page.locator("#verdict-heading").wait_for(timeout=GRADING_TIMEOUT_MS)
    tour.timings_ms["desktop reference grade of cpu-softmax through the page"] = round(
        (time.perf_counter() - started) * 1000, 1
    )
    assert page.inner_text("#verdict-heading") == "Accepted"
    tour.check("problem-graded")
    submission = Submission.objects.get(user__username=USERNAME, problem__slug="cpu-softmax")
    tour.open("submission-results", f"/submissions/{submission.pk}/")


def _calculator(tour: Tour) -> None:
    tour.open("calculator", "/design/calculator")
    tour.page.locator("#calculator-result").wait_for()


def _api_docs(tour: Tour) -> None:
    """The OpenAPI document rendered by the vendored Swagger UI; its paths show {id} templates."""
    tour.page.goto(tour.base_url + "/api/docs")
    tour.page.locator(".swagger-ui .opblock").first.wait_for()
    assert tour.page.locator(".swagger-ui .opblock").count() > 5
    assert tour.page.locator(".swagger-ui .errors-wrapper").count() == 0
    tour.check("api-docs", placeholders_allowed=True)
