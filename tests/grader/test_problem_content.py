"""A problem's difficulty and editorial: the loader and the admin refuse what loops and pages
cannot use, and the editorial reaches only a user with an accepted submission, on the page and
through the API alike (decided on the server: it is not in the HTML otherwise)."""

from __future__ import annotations

import importlib
import json
import shutil

import pytest
from django.apps import apps as django_apps
from django.test import Client
from django.utils import timezone

from grader import access
from grader.bank import (
    CONTENT_FIELDS,
    DIFFICULTIES,
    PROBLEMS_DIR,
    bank_problems,
    problem_read,
    problems_load,
)
from grader.models import Problem, Submission

# Words of cpu-softmax's editorial that its statement does not say, on one line of it.
EDITORIAL_LINE = "a full copy at twice the size"


def test_every_shipped_problem_has_a_difficulty_a_time_and_an_editorial():
    problems = bank_problems()
    assert len(problems) >= 8
    for problem in problems:
        assert problem.spec["difficulty"] in DIFFICULTIES, problem.slug
        assert problem.spec["expected_min"] > 0, problem.slug
        assert "level" not in problem.spec, problem.slug
        assert problem.editorial_md.strip(), problem.slug
        assert problem.as_spec().examples(), problem.slug
    assert {p.spec["difficulty"] for p in problems} == set(DIFFICULTIES)


@pytest.fixture
def folder(tmp_path):
    """A copy of cpu-softmax's folder to break."""
    copy = tmp_path / "cpu-softmax"
    shutil.copytree(PROBLEMS_DIR / "cpu-softmax", copy)
    return copy


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        ("difficulty: easy\n", "", "difficulty must be one of easy, medium, hard (got None)"),
        ("difficulty: easy", "difficulty: trivial", "(got 'trivial')"),
        ("difficulty: easy", "level: junior", "'level' is not a problem's field"),
        ("expected_min: 10", "expected_min: 0", "expected_min must be a positive whole number"),
        ("max_inputs: 5,", "max_inputs: -1,", "custom_inputs is {max_inputs: N, max_values: N}"),
    ],
    ids=["no-difficulty", "unknown-difficulty", "level", "no-time", "custom-inputs"],
)
def test_the_loader_names_the_folder_and_the_rule(folder, old, new, says):
    yaml = folder / "problem.yaml"
    assert old in yaml.read_text()
    yaml.write_text(yaml.read_text().replace(old, new))
    with pytest.raises(ValueError) as error:
        problem_read(folder)
    assert str(folder) in str(error.value) and says in str(error.value)


def test_a_published_problem_needs_an_editorial_and_a_draft_does_not(folder):
    (folder / "editorial.md").unlink()
    with pytest.raises(ValueError, match="a published problem needs an editorial"):
        problem_read(folder)
    yaml = folder / "problem.yaml"
    yaml.write_text(yaml.read_text().replace("published: true", "published: false"))
    assert problem_read(folder).editorial_md == ""


def test_publishing_in_the_admin_without_an_editorial_is_refused(
    softmax_problem, django_user_model
):
    root = django_user_model.objects.create_superuser("root", password="pw-root-1")
    client = Client()
    client.force_login(root)
    data = {name: getattr(softmax_problem, name) for name in CONTENT_FIELDS}
    form = {k: v for k, v in data.items() if k not in ("published", "spec", "checks")}
    form |= {"spec": json.dumps(data["spec"]), "checks": json.dumps(data["checks"])}
    form["editorial_md"] = ""
    Problem.objects.filter(pk=softmax_problem.pk).update(published=False)
    response = client.post(
        f"/admin/grader/problem/{softmax_problem.pk}/change/", form | {"published": "on"}
    )
    assert response.status_code == 200  # the form again, with the reason
    assert "a published problem needs an editorial" in response.content.decode()
    assert Problem.objects.get(pk=softmax_problem.pk).published is False


def _graded(user, problem, verdict: str, purpose: str = "practice") -> Submission:
    """A graded row as the worker leaves one (made directly: the gate reads rows, not jobs)."""
    return Submission.objects.create(
        user=user,
        problem=problem,
        code="x = 1",
        purpose=purpose,
        seed=1,
        state="graded",
        verdict=verdict,
        score=None,
        graded_at=timezone.now(),
    )


@pytest.mark.usefixtures("fresh_buckets")
def test_the_editorial_is_only_for_a_user_with_an_accepted_submission(softmax_problem, user):
    page, token = Client(), access.api_token_create(user, "tests")[1]
    api = Client(headers={"Authorization": f"Bearer {token}"})

    def shown() -> tuple[bool, bool]:
        html = page.get("/problems/cpu-softmax/").content.decode()
        detail = api.get("/api/problems/cpu-softmax").json()
        in_api = detail["editorial_md"] is not None
        assert in_api == (EDITORIAL_LINE in (detail["editorial_md"] or ""))
        return EDITORIAL_LINE in html, in_api

    assert EDITORIAL_LINE in softmax_problem.editorial_md  # the check below is not vacuous
    assert "Solve it to read the editorial" in page.get("/problems/cpu-softmax/").content.decode()
    page.force_login(user)
    assert shown() == (False, False)
    _graded(user, softmax_problem, "wrong_answer")
    _graded(user, softmax_problem, "suspect")
    _graded(user, softmax_problem, "accepted", purpose="run")  # a Run's examples passing
    assert shown() == (False, False)
    assert (
        "opens once you have an accepted submission"
        in page.get("/problems/cpu-softmax/").content.decode()
    )
    _graded(user, softmax_problem, "accepted")
    assert shown() == (True, True)


def test_rows_loaded_before_editorials_existed_get_theirs_and_authors_edits_stay(transactional_db):
    migration = importlib.import_module("grader.migrations.0009_problem_editorial")
    problems_load()
    shipped, edited = (
        Problem.objects.get(slug="cpu-softmax"),
        Problem.objects.get(slug="kv-allocator"),
    )
    # Both as the bank loaded them before this migration: no editorial, hashed without one; the
    # second edited by an author since (its content no longer hashes to what was loaded).
    for row in (shipped, edited):
        before = {name: getattr(row, name) for name in migration.FIELDS_BEFORE}
        Problem.objects.filter(pk=row.pk).update(
            editorial_md="", shipped_hash=migration._hash(before)
        )
    Problem.objects.filter(pk=edited.pk).update(title="Our own allocator")
    migration.shipped_hashes_with_editorial(django_apps, None)
    problems_load()
    assert Problem.objects.get(pk=shipped.pk).editorial_md == shipped.editorial_md != ""
    assert Problem.objects.get(pk=edited.pk).editorial_md == ""  # kept for its author
    assert Problem.objects.get(pk=edited.pk).title == "Our own allocator"
