"""Authoring in the admin: nothing an author writes is lost at a restart, every edit is a version
(answers keep theirs), a question is checked before it is published, and publishing needs a
reviewer."""

from __future__ import annotations

import random
import re
import shutil

import pytest
import yaml
from django.contrib.auth.models import Group

from grader.authoring import AUTHOR_GROUP, REVIEWER_GROUP
from grader.versions import versions_of
from interview import services
from interview.management.commands.serve import prepare_steps
from interview.models import Attempt, LoopItem, Question, ReviewCard
from interview.question_bank import (
    BANK_DIR,
    bank_dump,
    bank_read,
    questions_load_report,
)
from tests.interview.conftest import right_answer, wrong_answer
from tests.interview.test_admin import NEW_QUESTION

pytestmark = pytest.mark.django_db

SHIPPED = "kv-what-is-cached"
SHORT = "kv-explain-memory-cost"


@pytest.fixture
def root(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")


@pytest.fixture
def admin_client(client, root):
    client.force_login(root)
    return client


def _staff(django_user_model, name: str, *groups: str):
    user = django_user_model.objects.create_user(name, password=f"pw-{name}-123", is_staff=True)
    user.groups.add(*Group.objects.filter(name__in=groups))
    return user


def _spec(bank_id: str) -> dict:
    return dict(Question.objects.get(bank_id=bank_id).spec)


def _post_question(client, spec: dict, published: bool, pk: int | None = None):
    url = f"/admin/interview/question/{pk}/change/" if pk else "/admin/interview/question/add/"
    data = {"spec_yaml": bank_dump(spec)} | ({"published": "on"} if published else {})
    return client.post(url, data)


def _errors(response) -> str:
    form = response.context["adminform"].form
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


# ---------------------------------------------------------------- 1. nothing is lost


def test_an_admin_edit_and_an_admin_question_survive_make_runs_start_up(admin_client, bank):
    shipped = Question.objects.get(bank_id=SHIPPED)
    edited = _spec(SHIPPED) | {"prompt": "What does the KV cache keep, edited by an author?"}
    assert _post_question(admin_client, edited, True, shipped.pk).status_code == 302
    assert _post_question(admin_client, NEW_QUESTION, True).status_code == 302
    before = {
        q.bank_id: (q.spec, q.published, q.prompt)
        for q in Question.objects.filter(bank_id__in=[SHIPPED, NEW_QUESTION["id"]])
    }

    prepare_steps()

    after = {
        q.bank_id: (q.spec, q.published, q.prompt)
        for q in Question.objects.filter(bank_id__in=[SHIPPED, NEW_QUESTION["id"]])
    }
    assert after == before
    assert after[SHIPPED][2] == "What does the KV cache keep, edited by an author?"
    assert after[NEW_QUESTION["id"]][1] is True
    assert Question.objects.filter(published=True).count() == len(bank_read()) + 1


def test_the_loader_updates_unedited_rows_keeps_edited_ones_and_unpublishes_only_its_own(
    tmp_path, bank
):
    for path in BANK_DIR.glob("*.yaml"):
        shutil.copy(path, tmp_path)
    mqa = Question.objects.get(bank_id="kv-mqa")
    mqa.spec = mqa.spec | {"prompt": "An author's own wording, kept."}
    mqa.prompt = mqa.spec["prompt"]
    mqa.save()
    created = Question.objects.create(
        bank_id="kv-admin-made", topic="kv-cache", level="junior", type="numeric",
        prompt=NEW_QUESTION["prompt"], explanation=NEW_QUESTION["explanation"],
        source_title="t", source_url="https://docs.nvidia.com/", spec=NEW_QUESTION | {"id": "kv-admin-made"},
    )  # fmt: skip
    path = tmp_path / "kv-cache.yaml"
    document = yaml.safe_load(path.read_text())
    for spec in document["questions"]:
        if spec["id"] in (SHIPPED, "kv-mqa"):
            spec["prompt"] = spec["prompt"] + " (reworded upstream)"
    document["questions"] = [q for q in document["questions"] if q["id"] != "kv-why-it-matters"]
    path.write_text(bank_dump(document))

    report = questions_load_report(tmp_path)

    assert (report.created, report.updated, report.kept, report.unpublished) == (
        0,
        1,
        ["kv-mqa"],
        1,
    )
    assert Question.objects.get(bank_id=SHIPPED).prompt.endswith("(reworded upstream)")
    assert Question.objects.get(bank_id="kv-mqa").prompt == "An author's own wording, kept."
    assert Question.objects.get(bank_id="kv-why-it-matters").published is False
    created.refresh_from_db()
    assert created.published is True and created.prompt == NEW_QUESTION["prompt"]
    # A second load of the same files changes nothing.
    again = questions_load_report(tmp_path)
    assert (again.created, again.updated, again.unpublished) == (0, 0, 0)


def test_export_bank_writes_the_authors_questions_too(admin_client, bank, tmp_path):
    assert _post_question(admin_client, NEW_QUESTION, False).status_code == 302
    from django.core.management import call_command

    call_command("export_bank", str(tmp_path))
    exported = {q.spec["id"]: q.spec for q in bank_read(tmp_path)}
    assert exported[NEW_QUESTION["id"]] == NEW_QUESTION | {"published": False}
    assert len(exported) == len(bank_read()) + 1


# ---------------------------------------------------------------- 2. versions


def test_an_answer_keeps_the_version_it_was_graded_against_and_the_scorecard_shows_it(
    client, admin_client, bank, alice
):
    loop = services.loop_start(user=alice, level="mid", length_min=30, rng=random.Random(3))
    item = LoopItem.objects.filter(round__loop=loop).select_related("question").first()
    question = item.question
    old_prompt = question.spec["prompt"]
    services.answer_submit(
        user=alice,
        item_id=item.pk,
        data=wrong_answer(question, item.params, item.option_order),
    )
    new_prompt = "A reworded prompt that the candidate never saw?"
    edited = dict(question.spec) | {"prompt": new_prompt}
    assert _post_question(admin_client, edited, True, question.pk).status_code == 302

    attempt = Attempt.objects.get(user=alice, question=question)
    versions = list(versions_of(question))
    assert [v.number for v in versions] == [2, 1]
    assert versions[0].author.username == "root" and versions[1].author is None
    assert attempt.question_version.number == 1
    assert attempt.question_version.snapshot["prompt"] == old_prompt
    card = ReviewCard.objects.get(user=alice, question=question, point_id="")
    assert card.question_version == attempt.question_version

    services.loop_finish(user=alice, loop_id=loop.pk)
    loop.refresh_from_db()
    assert [
        q["version"] for q in loop.scorecard["questions"] if q["bank_id"] == question.bank_id
    ] == [1]
    client.force_login(alice)
    page = client.get(f"/loops/{loop.pk}/scorecard/").content.decode()
    answered = page.split(f'id="answer-{item.pk}"', 1)[1].split("</li>", 1)[0]
    assert ">v1<" in answered
    assert new_prompt not in page


def test_the_versions_page_diffs_and_rolls_back(admin_client, bank):
    question = Question.objects.get(bank_id=SHIPPED)
    old_prompt = question.prompt
    edited = dict(question.spec) | {"prompt": "An edit to undo, what does the cache keep?"}
    _post_question(admin_client, edited, True, question.pk)

    page = admin_client.get(f"/admin/interview/question/{question.pk}/versions/").content.decode()
    assert "+prompt: An edit to undo, what does the cache keep?" in page
    assert f"-prompt: {old_prompt}" in page
    assert "Roll back to v1" in page

    response = admin_client.post(f"/admin/interview/question/{question.pk}/versions/1/rollback/")
    assert response.status_code == 302
    question.refresh_from_db()
    assert question.prompt == old_prompt and question.published
    latest = versions_of(question).first()
    assert (latest.number, latest.note) == (3, "rolled back to v1")
    # A rollback is a GET-safe page: only a POST changes anything.
    assert (
        admin_client.get(
            f"/admin/interview/question/{question.pk}/versions/1/rollback/"
        ).status_code
        == 405
    )


def test_a_rollback_to_an_id_another_row_took_since_changes_nothing(admin_client, bank):
    question = Question.objects.get(bank_id=SHIPPED)
    renamed = dict(question.spec) | {"id": "kv-what-is-cached-renamed"}
    assert _post_question(admin_client, renamed, True, question.pk).status_code == 302
    assert _post_question(admin_client, NEW_QUESTION | {"id": SHIPPED}, False).status_code == 302

    url = f"/admin/interview/question/{question.pk}/versions/1/rollback/"
    page = admin_client.post(url, follow=True).content.decode()

    assert "Cannot roll back to v1: its id is taken by another row now" in page
    question.refresh_from_db()
    assert question.bank_id == "kv-what-is-cached-renamed"
    assert versions_of(question).first().number == 2


def test_an_author_answers_a_parametric_draft_as_a_candidate_and_nothing_is_recorded(
    admin_client, bank
):
    spec = _spec("kv-bytes-per-token-param") | {"id": "kv-param-draft"}
    assert _post_question(admin_client, spec, False).status_code == 302
    draft = Question.objects.get(bank_id="kv-param-draft")
    change = admin_client.get(f"/admin/interview/question/{draft.pk}/change/").content.decode()
    assert f"/admin/interview/question/{draft.pk}/try/" in change

    page = admin_client.get(f"/admin/interview/question/{draft.pk}/try/").content.decode()
    assert "Trying a draft as a candidate would" in page and "{" not in page.split("<h1>")[1]
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    draw = services.practice_token_read(draft, token)
    answer = right_answer(draft, draw.params)
    response = admin_client.post(
        f"/admin/interview/question/{draft.pk}/try/", answer | {"token": token}
    )
    assert "Correct — score 1.00" in response.content.decode()
    assert "Add to my review queue" not in response.content.decode()
    wrong = admin_client.post(
        f"/admin/interview/question/{draft.pk}/try/",
        wrong_answer(draft, draw.params) | {"token": token},
    )
    assert "Not quite — score 0.00" in wrong.content.decode()
    assert Attempt.objects.count() == 0 and ReviewCard.objects.count() == 0


# ---------------------------------------------------------------- 3. checks before publishing


def test_a_choice_question_whose_right_option_is_far_the_longest_is_not_published(
    admin_client, bank
):
    spec = {
        "id": "kv-giveaway",
        "type": "single_choice",
        "topics": ["kv-cache"],
        "level": "junior",
        "prompt": "What does the KV cache hold during decoding?",
        "choices": [
            "Logits",
            "The key and value vectors of every earlier token, for every layer of the model",
            "Queries",
        ],
        "answer": 1,
        "explanation": "Keys and values of earlier tokens are reused at every step.",
        "source": {"title": "vLLM docs", "url": "https://docs.vllm.ai/"},
    }
    response = _post_question(admin_client, spec, True)
    assert response.status_code == 200
    assert "right option not the longest by a wide margin" in _errors(response)
    assert not Question.objects.filter(bank_id="kv-giveaway").exists()
    # As a draft it saves, and its page shows the failed check.
    assert _post_question(admin_client, spec, False).status_code == 302
    draft = Question.objects.get(bank_id="kv-giveaway")
    page = admin_client.get(f"/admin/interview/question/{draft.pk}/change/").content.decode()
    assert "✗ right option not the longest by a wide margin" in page


def test_a_short_answer_whose_model_answer_fails_its_rubric_is_not_published(admin_client, bank):
    shipped = _spec(SHORT)
    good = shipped | {"id": "kv-explain-memory-cost-copy"}
    response = _post_question(admin_client, good, True)
    assert response.status_code == 302, _errors(response)
    assert Question.objects.get(bank_id=good["id"]).published

    broken = shipped | {
        "id": "kv-explain-memory-cost-broken",
        "model_answer": "Cooking pasta needs salted water at a rolling boil for ten minutes.",
    }
    response = _post_question(admin_client, broken, True)
    assert response.status_code == 200
    assert "model answer passes its rubric" in _errors(response)
    assert not Question.objects.filter(bank_id=broken["id"]).exists()


def test_a_shipped_short_answer_passes_both_checks_and_its_vacuous_answer_scores_nothing(bank):
    from interview.authoring import question_checks, vacuous_answer
    from interview.grading import text_grade

    spec = _spec(SHORT)
    checks = {c.name: c.passed for c in question_checks(spec)}
    assert checks == {"model answer passes its rubric": True, "a vacuous answer fails": True}
    assert "kv cache" in vacuous_answer(spec)
    assert text_grade(spec, vacuous_answer(spec)).score <= 0.25


def test_a_vacuous_answer_claims_nothing_even_when_a_keyword_has_a_verb(bank):
    """pd-why-memory-bound's keyword "read all the weights" is a claim to the judge, and one
    claim in the list made the judge grade the whole list as an answer: 0.80, a pass."""
    from interview import claims
    from interview.authoring import question_checks, vacuous_answer
    from interview.grading import text_grade

    spec = _spec("pd-why-memory-bound")
    assert "read all the weights" in {k for p in spec["rubric"]["points"] for k in p["keywords"]}
    text = vacuous_answer(spec)
    assert "all the weights" in text and "arithmetic intensity" in text
    assert not any(claims.is_claim(item) for item in text.rstrip(".").split(", "))
    assert claims.is_topic_list(text.rstrip("."))
    grade = text_grade(spec, text)
    assert grade.vacuous and grade.score <= 0.25
    checks = {c.name: c.passed for c in question_checks(spec)}
    assert checks == {"model answer passes its rubric": True, "a vacuous answer fails": True}


# ---------------------------------------------------------------- 4. roles


def test_an_author_drafts_and_a_reviewer_publishes(client, django_user_model, bank, settings):
    settings.ALLOW_SELF_REVIEW = False
    author = _staff(django_user_model, "ada", AUTHOR_GROUP)
    reviewer = _staff(django_user_model, "rex", REVIEWER_GROUP)

    client.force_login(author)
    response = _post_question(client, NEW_QUESTION, True)
    assert "publishing needs a member of the 'reviewer' group" in _errors(response)
    assert _post_question(client, NEW_QUESTION, False).status_code == 302
    question = Question.objects.get(bank_id=NEW_QUESTION["id"])
    assert question.published is False

    # An author's edit to a published question is refused as a publication, too.
    shipped = Question.objects.get(bank_id=SHIPPED)
    response = _post_question(
        client, _spec(SHIPPED) | {"prompt": "Quietly live?"}, True, shipped.pk
    )
    assert "publishing needs a member" in _errors(response)

    client.force_login(reviewer)
    assert _post_question(client, NEW_QUESTION, True, question.pk).status_code == 302
    question.refresh_from_db()
    assert question.published is True

    # The reviewer's own edit needs a second reviewer while self-review is off ...
    edited = NEW_QUESTION | {"prompt": "How many bytes does one BF16 number take?"}
    response = _post_question(client, edited, True, question.pk)
    assert "a second reviewer must publish" in _errors(response)
    question.refresh_from_db()
    assert question.prompt == NEW_QUESTION["prompt"]
    # ... and not when it is on (a one-person deployment).
    settings.ALLOW_SELF_REVIEW = True
    assert _post_question(client, edited, True, question.pk).status_code == 302
    question.refresh_from_db()
    assert question.prompt == edited["prompt"] and question.published


def test_the_author_group_may_not_reach_other_admin_pages(client, django_user_model, bank):
    author = _staff(django_user_model, "ada", AUTHOR_GROUP)
    client.force_login(author)
    assert client.get("/admin/interview/question/").status_code == 200
    assert client.get("/admin/grader/problem/").status_code == 200
    assert client.get("/admin/auth/user/").status_code == 403
    assert client.get("/admin/grader/submission/").status_code == 403
