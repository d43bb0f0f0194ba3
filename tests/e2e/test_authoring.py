"""Authoring in the admin, in a browser: a question edited, its versions diffed and rolled back,
a short answer whose model answer fails its own rubric refused; a problem whose reference is
wrong refused publication, then fixed, validated on the live worker and published; an author
(not a reviewer) drafts a parametric question, is refused publishing it, and answers it as a
candidate."""

from __future__ import annotations

from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from grader.authoring import AUTHOR_GROUP, REVIEWER_GROUP
from grader.bank import problems_load
from grader.models import Problem
from interview.models import Attempt, Question
from interview.question_bank import bank_dump, expected_number, question_spec_full, questions_load
from interview.services import practice_token_read
from tests.e2e.conftest import screenshot_path
from tests.grader.conftest import FAST_BENCHMARK, FAST_LIMITS, solution

SHIPPED = "kv-what-is-cached"
SHORT = "kv-explain-memory-cost"


def _admin_log_in(live_stack, page, username: str, password: str) -> None:
    user = get_user_model().objects.create_user(username, password=password, is_staff=True)
    user.groups.add(Group.objects.get(name=REVIEWER_GROUP))
    page.goto(live_stack.base_url + "/admin/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(live_stack.base_url + "/admin/")


def _spec_yaml(bank_id: str, **changes) -> str:
    spec = question_spec_full(Question.objects.get(bank_id=bank_id)) | changes
    return bank_dump({k: v for k, v in spec.items() if k != "published"})


def test_authoring_in_the_admin(live_stack, page):
    """Every admin flow of questions and problems, in order."""
    questions_load()
    problems_load()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    _an_author_drafts_a_parametric_question_answers_it_and_cannot_publish(live_stack, page)
    page.context.clear_cookies()
    _admin_log_in(live_stack, page, "rita", "pw-rita-reviewer-1")
    _a_reviewer_edits_a_question_sees_its_versions_and_rolls_back(live_stack, page)
    _a_problem_with_a_wrong_reference_is_refused_then_fixed_validated_and_published(
        live_stack, page
    )
    assert errors == []


def _a_reviewer_edits_a_question_sees_its_versions_and_rolls_back(live_stack, page) -> None:
    question = Question.objects.get(bank_id=SHIPPED)
    original = question.prompt
    change_url = f"{live_stack.base_url}/admin/interview/question/{question.pk}/change/"

    page.goto(change_url)
    assert "✓ right option not the longest by a wide margin" in page.content()
    edited = "During decoding, which vectors does the KV cache keep"
    page.locator("textarea[name=spec_yaml]").fill(_spec_yaml(SHIPPED, prompt=edited + "?"))
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    question.refresh_from_db()
    assert question.prompt == edited + "?" and question.published

    page.get_by_role("link", name="versions, diffs and rollback").click()
    diff = page.locator("#v2 .version-diff").inner_text()
    assert f"+prompt: {edited}?" in diff and f"-prompt: {original}" in diff
    page.screenshot(path=str(screenshot_path("admin-versions")), full_page=True)

    page.get_by_role("button", name="Roll back to v1").click()
    expect(page.locator(".messagelist")).to_contain_text("Rolled back to v1.")
    question.refresh_from_db()
    assert question.prompt == original and question.published

    short = Question.objects.get(bank_id=SHORT)
    page.goto(f"{live_stack.base_url}/admin/interview/question/{short.pk}/change/")
    page.locator("textarea[name=spec_yaml]").fill(
        _spec_yaml(SHORT, model_answer="Salted water at a rolling boil cooks pasta in ten minutes.")
    )
    page.get_by_role("button", name="Save and continue editing").click()
    error = page.locator(".errorlist").first.inner_text()
    assert "model answer passes its rubric" in error
    short.refresh_from_db()
    assert "pasta" not in short.spec["model_answer"]
    page.screenshot(path=str(screenshot_path("admin-publish-refused")), full_page=True)


def _wait_for_validation(page, url: str) -> str:
    """Reload the problem's page until its last validation run is decided; returns its state."""
    for _ in range(180):
        page.goto(url)
        state = page.locator("[class^=validation-]").first.get_attribute("class")
        if state != "validation-running":
            return state.removeprefix("validation-")
        page.wait_for_timeout(1000)
    raise AssertionError("validation still running after 3 minutes")


def _a_problem_with_a_wrong_reference_is_refused_then_fixed_validated_and_published(
    live_stack, page
) -> None:
    problem = Problem.objects.get(slug="cpu-softmax")
    # The grader tests' short limits: the same checks, less CPU.
    problem.spec = problem.spec | {
        "limits": problem.spec["limits"] | FAST_LIMITS,
        "benchmark": problem.spec["benchmark"] | FAST_BENCHMARK,
    }
    problem.published = False
    problem.save()
    reference = problem.reference_code
    url = f"{live_stack.base_url}/admin/grader/problem/{problem.pk}/change/"

    # The statement's preview follows the Markdown as it is typed, before any save.
    page.goto(url)
    page.locator("textarea[name=statement_md]").fill(
        problem.statement_md + "\n\n## Previewed as typed\n\n<b>raw html</b>"
    )
    preview = page.locator(".statement-preview")
    expect(preview.locator("h2", has_text="Previewed as typed")).to_be_visible()
    expect(preview).to_contain_text("<b>raw html</b>")  # escaped, shown as text
    page.locator("textarea[name=editorial_md]").fill("### Why one pass\n\nThe **running max**.")
    editorial = page.locator(".editorial-preview")
    expect(editorial.locator("h3", has_text="Why one pass")).to_be_visible()
    expect(preview.locator("h2", has_text="Previewed as typed")).to_be_visible()  # untouched

    page.goto(url)
    page.locator("textarea[name=reference_code]").fill(solution("wrong/wrong_axis.py"))
    page.get_by_role("button", name="Save and validate on a worker").click()
    assert _wait_for_validation(page, url) == "failed"
    page.get_by_label("Published").check()
    page.get_by_role("button", name="Save and continue editing").click()
    assert "its validation failed (reference)" in page.locator(".errorlist").first.inner_text()
    assert Problem.objects.get(pk=problem.pk).published is False
    page.screenshot(path=str(screenshot_path("admin-problem-refused")), full_page=True)

    page.goto(url)
    page.locator("textarea[name=reference_code]").fill(reference)
    page.get_by_role("button", name="Save and validate on a worker").click()
    assert _wait_for_validation(page, url) == "passed"
    page.get_by_label("Published").check()
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    assert Problem.objects.get(pk=problem.pk).published is True


def _an_author_drafts_a_parametric_question_answers_it_and_cannot_publish(live_stack, page) -> None:
    author = get_user_model().objects.create_user("ada", password="pw-ada-author-1", is_staff=True)
    author.groups.add(Group.objects.get(name=AUTHOR_GROUP))
    page.goto(live_stack.base_url + "/admin/login/")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill("pw-ada-author-1")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(live_stack.base_url + "/admin/")

    page.goto(live_stack.base_url + "/admin/interview/question/add/")
    spec_yaml = _spec_yaml("kv-bytes-per-token-param", id="kv-param-by-ada")
    page.locator("textarea[name=spec_yaml]").fill(spec_yaml)
    page.get_by_label("Published").check()
    page.get_by_role("button", name="Save and continue editing").click()
    assert "publishing needs a member of the 'reviewer' group" in (
        page.locator(".errorlist").first.inner_text()
    )
    page.get_by_label("Published").uncheck()
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    draft = Question.objects.get(bank_id="kv-param-by-ada")
    assert draft.published is False

    page.get_by_role("link", name="Answer it as a candidate").click()
    expect(page.get_by_text("Trying a draft as a candidate would")).to_be_visible()
    token = page.locator("input[name=token]").get_attribute("value")
    draw = practice_token_read(draft, token)
    page.get_by_label("Your answer").fill(repr(expected_number(draft.spec, draw.params)))
    page.get_by_role("button", name="Check answer").click()
    expect(page.get_by_text("Correct — score 1.00")).to_be_visible()
    page.screenshot(path=str(screenshot_path("admin-try-draft")), full_page=True)
    assert not Attempt.objects.exists()


def test_a_later_admin_session_on_the_same_server_logs_its_change(live_stack, page):
    """A second test that writes through the admin on the server the first one used: the flush
    between them renumbered the content types the admin's change log points at."""
    questions_load()
    _admin_log_in(live_stack, page, "remy", "pw-remy-reviewer-1")
    question = Question.objects.get(bank_id=SHIPPED)
    page.goto(f"{live_stack.base_url}/admin/interview/question/{question.pk}/change/")
    edited = "During decoding, which vectors does the KV cache hold"
    page.locator("textarea[name=spec_yaml]").fill(_spec_yaml(SHIPPED, prompt=edited + "?"))
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    page.goto(f"{live_stack.base_url}/admin/interview/question/{question.pk}/history/")
    expect(page.locator("#change-history")).to_contain_text("remy")
    entry = LogEntry.objects.get(object_id=str(question.pk))
    assert entry.user.username == "remy" and entry.content_type.model_class() is Question
    page.goto(f"{live_stack.base_url}/admin/interview/designpromptrow/")
    expect(page.locator("#result_list")).to_contain_text("tp2-vs-tp4")
