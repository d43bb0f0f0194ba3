"""Problems authored in the admin: an edit survives make run's start-up, and a problem is
published only after its reference is accepted and every wrong or cheating solution is not, on a
live worker through the normal submission path."""

from __future__ import annotations

import json
import time

import pytest

from grader.bank import CONTENT_FIELDS, problem_snapshot
from grader.markdown_render import markdown_html
from grader.models import Problem, ProblemValidation, Submission
from grader.selectors import problem_validation_status
from grader.versions import versions_of
from interview.management.commands.serve import prepare_steps
from tests.grader.conftest import VERDICT_TIMEOUT_S, solution


@pytest.fixture
def root_client(client, django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")
    client.force_login(root)
    return client


def _form(problem: Problem, **changes) -> dict[str, str]:
    """The problem's change form as the admin posts it, with ``changes`` (published a bool)."""
    values = problem_snapshot(problem) | changes
    data = {name: values[name] for name in CONTENT_FIELDS if name != "published"}
    data["spec"] = json.dumps(values["spec"])
    data["checks"] = json.dumps(values["checks"])
    return data | ({"published": "on"} if values["published"] else {})


def _errors(response) -> str:
    form = response.context["adminform"].form
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


@pytest.mark.django_db
def test_an_admin_edit_and_an_admin_problem_survive_make_runs_start_up(root_client):
    prepare_steps()
    shipped = Problem.objects.get(slug="cpu-softmax")
    edited = _form(shipped, title="Softmax, as our author words it", published=False)
    response = root_client.post(f"/admin/grader/problem/{shipped.pk}/change/", edited)
    assert response.status_code == 302, _errors(response)
    made = _form(shipped, slug="my-softmax", title="An author's own softmax", published=False)
    response = root_client.post("/admin/grader/problem/add/", made)
    assert response.status_code == 302, _errors(response)
    before = {p.slug: problem_snapshot(p) for p in Problem.objects.all()}

    prepare_steps()

    after = {p.slug: problem_snapshot(p) for p in Problem.objects.all()}
    assert after == before
    assert after["cpu-softmax"]["title"] == "Softmax, as our author words it"
    assert after["my-softmax"]["title"] == "An author's own softmax"
    assert [v.note for v in versions_of(Problem.objects.get(slug="cpu-softmax"))] == [
        "edited in the admin",
        "loaded from the bank",
    ]


def _validation_done(problem: Problem) -> ProblemValidation:
    """The problem's latest validation run once every solution in it has its verdict."""
    deadline = time.monotonic() + VERDICT_TIMEOUT_S * 3
    while time.monotonic() < deadline:
        validation = problem.validations.first()
        if problem_validation_status(validation).state != "running":
            return validation
        time.sleep(0.25)
    raise AssertionError(f"validation still running: {problem_validation_status(validation)}")


@pytest.mark.slow
def test_validate_grades_every_solution_on_a_worker_and_gates_publishing(
    module_worker, softmax_problem, root_client
):
    Problem.objects.filter(pk=softmax_problem.pk).update(published=False)
    problem = Problem.objects.get(pk=softmax_problem.pk)
    url = f"/admin/grader/problem/{problem.pk}/change/"
    assert [c["name"] for c in problem.checks] == [
        "wrong/unstable_exponent.py",
        "wrong/wrong_axis.py",
    ]

    # Not validated yet: the Published box is refused inline and nothing changes.
    response = root_client.post(url, _form(problem, published=True))
    assert "validate it first" in _errors(response)
    assert Problem.objects.get(pk=problem.pk).published is False

    response = root_client.post(url, _form(problem, published=False) | {"_validate": "1"})
    assert response.status_code == 302
    validation = _validation_done(problem)
    status = problem_validation_status(validation)
    assert status.state == "passed"
    assert [(r.name, r.verdict, r.ok) for r in status.rows] == [
        ("reference", "accepted", True),
        ("wrong/unstable_exponent.py", "wrong_answer", True),
        ("wrong/wrong_axis.py", "wrong_answer", True),
    ]
    submissions = Submission.objects.filter(pk__in=[run["submission"] for run in validation.runs])
    assert {s.purpose for s in submissions} == {Submission.Purpose.VALIDATION}
    assert {s.problem_version.number for s in submissions} == {versions_of(problem).first().number}
    page = root_client.get(url).content.decode()
    assert "<strong>passed</strong>" in page and page.count("✓") >= 3

    response = root_client.post(url, _form(problem, published=True))
    assert response.status_code == 302, _errors(response)
    assert Problem.objects.get(pk=problem.pk).published is True

    # A wrong reference: refused without a run on it, and refused after a run that fails.
    problem.refresh_from_db()
    broken = _form(problem, reference_code=solution("wrong/wrong_axis.py"), published=True)
    assert "validate it first" in _errors(root_client.post(url, broken))
    assert Problem.objects.get(pk=problem.pk).reference_code == problem.reference_code
    draft = _form(problem, reference_code=solution("wrong/wrong_axis.py"), published=False)
    assert root_client.post(url, draft | {"_validate": "1"}).status_code == 302
    status = problem_validation_status(_validation_done(problem))
    assert status.state == "failed"
    assert [(r.name, r.ok) for r in status.rows][0] == ("reference", False)
    problem.refresh_from_db()
    response = root_client.post(url, _form(problem, published=True))
    assert "its validation failed (reference)" in _errors(response)
    assert Problem.objects.get(pk=problem.pk).published is False
    assert "<strong>failed</strong>" in root_client.get(url).content.decode()


@pytest.mark.django_db
def test_the_statement_preview_renders_as_the_problem_page_and_code_fields_read_as_code(
    root_client,
):
    prepare_steps()
    problem = Problem.objects.get(slug="cpu-softmax")
    statement = (
        "## Stable softmax\n\nSubtract the **row maximum** first: $e^{x_i - m}$.\n\n"
        "```python\ndef softmax(x):\n    return x\n```\n\n<script>alert(1)</script>\n"
    )
    editorial = (
        "### The idea\n\nOne pass with a **running maximum**.\n\n<script>alert(2)</script>\n"
    )
    edited = _form(problem, statement_md=statement, editorial_md=editorial, published=False)
    response = root_client.post(f"/admin/grader/problem/{problem.pk}/change/", edited)
    assert response.status_code == 302, _errors(response)

    page = root_client.get(f"/admin/grader/problem/{problem.pk}/change/").content.decode()
    preview = page.split('class="statement-preview">', 1)[1].split("field-harness", 1)[0]

    assert "<h2>Stable softmax</h2>" in preview
    assert "<strong>row maximum</strong>" in preview
    assert "$e^{x_i - m}$" in preview
    assert '<div class="highlight"><pre>' in preview and '<span class="k">def</span>' in preview
    assert "<script>" not in preview and "&lt;script&gt;" in preview
    assert markdown_html(statement) in page  # the problem page's own renderer
    # The editorial beside its field, rendered as it opens after an accepted submission.
    shown = page.split('data-source="id_editorial_md" class="editorial-preview">', 1)[1]
    shown = shown.split("</div>", 1)[0]
    assert "<h3>The idea</h3>" in shown and "<strong>running maximum</strong>" in shown
    assert "<script>" not in shown and "&lt;script&gt;" in shown
    for field in ("starter_code", "reference_code", "oracle_code", "inputs_code", "checks"):
        textarea = page.split(f'<textarea name="{field}"', 1)[1].split(">", 1)[0]
        assert 'class="code-field"' in textarea and 'wrap="off"' in textarea, field
    assert "/static/css/admin_code.css" in page and "/static/js/admin_code.js" in page


PREVIEW_URL = "/admin/grader/problem/statement-preview/"


@pytest.mark.django_db
def test_the_live_preview_renders_what_the_author_types_with_the_pages_sanitiser(
    client, django_user_model
):
    from django.contrib.auth.models import Group

    from grader.admin import STATEMENT_PREVIEW_MAX_CHARS
    from grader.authoring import AUTHOR_GROUP

    statement = "## Draft\n\nKeep the **row max**: $e^{x - m}$.\n\n<img src=x onerror=alert(1)>\n"
    assert client.post(PREVIEW_URL, {"markdown": statement}).status_code == 302  # log in
    candidate = django_user_model.objects.create_user("cand", password="pw-cand-12345")
    client.force_login(candidate)
    assert client.post(PREVIEW_URL, {"markdown": statement}).status_code == 302
    author = django_user_model.objects.create_user("auth", password="pw-auth-12345", is_staff=True)
    author.groups.add(Group.objects.get(name=AUTHOR_GROUP))
    client.force_login(author)

    response = client.post(PREVIEW_URL, {"markdown": statement})

    assert response.status_code == 200
    html = response.content.decode()
    assert html == markdown_html(statement)  # the problem page's own renderer
    assert "<h2>Draft</h2>" in html and "<strong>row max</strong>" in html
    assert "<img" not in html and "&lt;img" in html
    assert client.get(PREVIEW_URL).status_code == 405
    too_long = client.post(PREVIEW_URL, {"markdown": "x" * (STATEMENT_PREVIEW_MAX_CHARS + 1)})
    assert too_long.status_code == 413
    page = client.get("/admin/grader/problem/add/").content.decode()
    assert f'data-preview-url="{PREVIEW_URL}"' in page
    assert "/static/js/admin_markdown_preview.js" in page


@pytest.mark.django_db
def test_the_live_preview_refuses_a_post_without_the_csrf_token(django_user_model):
    from django.test import Client

    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(root)
    assert strict.post(PREVIEW_URL, {"markdown": "# x"}).status_code == 403
    token = strict.get("/admin/grader/problem/add/").context["csrf_token"]
    accepted = strict.post(PREVIEW_URL, {"markdown": "# x"}, HTTP_X_CSRFTOKEN=str(token))
    assert accepted.status_code == 200 and accepted.content.decode() == "<h1>x</h1>"
