"""Design prompts authored in the admin: an edit survives `make run`'s start-up, every edit is a
version, and a prompt is published only when its checks pass (its numbers agree with the
capacity model); the pages show published prompts only."""

from __future__ import annotations

import copy
import json

import pytest

from grader.models import ContentVersion
from grader.versions import content_hash, version_record, versions_of
from interview.authoring import design_checks
from interview.design import (
    DESIGN_DIR,
    design_files_read,
    design_prompt_validate,
    example_params,
    numeric_answer,
    numeric_correct,
    render,
)
from interview.design_bank import (
    design_apply,
    design_prompts_load_report,
    design_snapshot,
    design_spec_ordered,
)
from interview.management.commands.serve import prepare_steps
from interview.models import DesignPromptRow, Loop, RoundKind
from interview.question_bank import bank_dump

# A shipped prompt (every one passes its own publish checks, see below).
PROMPT = "long-context-200k"


@pytest.fixture
def admin_client(client, django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")
    client.force_login(root)
    return client


def _row() -> DesignPromptRow:
    return DesignPromptRow.objects.get(prompt_id=PROMPT)


def _rows() -> list[DesignPromptRow]:
    return list(DesignPromptRow.objects.order_by("prompt_id"))


def _post(client, spec: dict, published: bool, pk: int):
    data = {"spec_yaml": bank_dump(design_spec_ordered(spec))}
    return client.post(
        f"/admin/interview/designpromptrow/{pk}/change/",
        data | ({"published": "on"} if published else {}),
    )


def _errors(response) -> str:
    form = response.context["adminform"].form
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


@pytest.mark.django_db
def test_an_authors_edit_to_a_prompt_survives_make_runs_start_up_as_a_new_version(admin_client):
    row = _row()
    assert all(c.passed for c in design_checks(row.spec))
    edited = dict(row.spec) | {"title": "Serve 200k-token contexts, as an author retitled it"}
    response = _post(admin_client, edited, True, row.pk)
    assert response.status_code == 302, _errors(response)
    before = _row()

    prepare_steps()

    after = _row()
    assert (after.spec, after.title, after.published) == (before.spec, before.title, True)
    assert after.title == "Serve 200k-token contexts, as an author retitled it"
    versions = list(versions_of(after))
    assert [v.number for v in versions] == [2, 1]
    assert versions[0].author.username == "root" and versions[1].author is None
    assert versions[0].snapshot["title"] == after.title
    page = admin_client.get("/design/")
    assert "as an author retitled it" in page.content.decode()


@pytest.mark.django_db
def test_a_prompt_whose_stored_answer_disagrees_with_the_capacity_model_is_not_published(
    admin_client,
):
    row = _row()
    spec = dict(row.spec)
    answers = dict(spec["example"]["answers"])
    question_id = next(iter(answers))
    answers[question_id] *= 2
    spec["example"] = spec["example"] | {"answers": answers}
    spec["title"] = "An edit whose numbers are wrong"

    response = _post(admin_client, spec, True, row.pk)

    assert response.status_code == 200
    errors = _errors(response)
    assert f"{question_id}: the stored answer agrees with the capacity model" in errors
    unchanged = _row()
    assert unchanged.spec == row.spec and unchanged.published
    assert [v.number for v in versions_of(unchanged)] == [1]
    assert _post(admin_client, spec, False, row.pk).status_code == 302
    draft = _row()
    assert not draft.published and draft.title == "An edit whose numbers are wrong"
    assert admin_client.get(f"/design/{PROMPT}/").status_code == 404
    assert PROMPT not in admin_client.get("/design/").content.decode()


@pytest.mark.django_db
def test_a_schema_error_is_shown_inline_and_nothing_changes(admin_client):
    row = _row()
    spec = dict(row.spec) | {"parameters": dict(row.spec["parameters"]) | {"gpu": {"choices": []}}}
    response = _post(admin_client, spec, False, row.pk)
    assert response.status_code == 200
    assert "parameter 'gpu' has no choices" in _errors(response)
    assert _row().spec == row.spec


@pytest.mark.parametrize(
    "data", [data for _, data in design_files_read()], ids=lambda data: data["id"]
)
def test_every_shipped_prompts_stored_answers_agree_with_the_capacity_model(data):
    prompt = design_prompt_validate(data)
    params = example_params(prompt, data)
    assert set(data["example"]["answers"]) == {q.id for q in prompt.numeric}
    for question in prompt.numeric:
        stored = data["example"]["answers"][question.id]
        answer = numeric_answer(question, params)
        assert numeric_correct(answer, stored), (question.id, stored, answer.value)
        above_both = max(answer.value, answer.ideal_value or 0) * (1 + 2 * question.tolerance)
        assert not numeric_correct(answer, above_both), question.id


@pytest.mark.slow
@pytest.mark.parametrize(
    "data", [data for _, data in design_files_read()], ids=lambda data: data["id"]
)
def test_every_shipped_prompt_passes_the_publish_check_authors_face(data):
    """The admin refuses to publish an author's prompt while any of these fails; a shipped one
    must pass them too: each section's and follow-up's model answer passes its own rubric, a
    vacuous answer fails it, every stored number agrees with the capacity model."""
    checks = design_checks(data)
    assert len(checks) == 2 * (len(data["sections"]) + len(data["follow_ups"])) + len(
        data["numeric"]
    )
    assert [f"{c.name}: {c.detail}" for c in checks if not c.passed] == []


# ---------------------------------------------------------------- answers keep their version

EDIT_MARK = "AN-AUTHOR-EDITED-THIS-AFTERWARDS"


def _edit_as_the_admin_saves(prompt_id: str, editor) -> DesignPromptRow:
    """An author's edit to a prompt's statement and first follow-up, saved as the admin saves
    one (VersionedAdmin.save_model): the row changes and a version is recorded."""
    row = DesignPromptRow.objects.get(prompt_id=prompt_id)
    spec = copy.deepcopy(row.spec)
    spec["prompt"] = f"{spec['prompt']} {EDIT_MARK}"
    spec["follow_ups"][0]["prompt"] = f"{EDIT_MARK} {spec['follow_ups'][0]['prompt']}"
    design_apply(row, spec | {"published": True})
    row.save()
    version_record(row, design_snapshot(row), author=editor, note="edited in the admin")
    return row


@pytest.mark.django_db
def test_a_practice_attempt_keeps_the_prompt_version_it_was_answered_against(client, alice):
    client.force_login(alice)
    page = f"/design/{PROMPT}/"
    client.post(page, {"section-memory_model": "The KV cache is stored in paged blocks."})
    attempt = client.session[f"design-attempt:{PROMPT}"]
    assert attempt["result"] is not None and attempt["version"] == 1

    row = _edit_as_the_admin_saves(PROMPT, alice)
    assert [v.number for v in versions_of(row)] == [2, 1]

    answered = client.get(page).content.decode()
    assert EDIT_MARK not in answered
    assert ">v1</span>" in answered
    assert client.post(f"/design/{PROMPT}/new").status_code == 302
    fresh = client.get(page).content.decode()
    assert EDIT_MARK in fresh and ">v2</span>" in fresh


@pytest.mark.django_db
def test_a_loops_design_round_keeps_its_prompt_version_through_an_edit(client, alice, bank):
    client.force_login(alice)
    client.post("/loops/start/", {"level": "senior", "length_min": "30"})
    loop = Loop.objects.get(user=alice)
    design = loop.rounds.get(kind=RoundKind.DESIGN)
    drawn = design.design_version
    assert drawn is not None and drawn.number == 1
    assert drawn.snapshot["id"] == design.design_id
    round_url = f"/loops/{loop.pk}/rounds/{design.position}/"
    client.post(f"{round_url}submit/", {"section-memory_model": "KV cache blocks are paged."})
    design.refresh_from_db()
    assert design.submitted_at is not None
    original_follow_up = drawn.snapshot["follow_ups"][0]["prompt"]

    _edit_as_the_admin_saves(design.design_id, alice)

    page = client.get(round_url).content.decode()
    assert EDIT_MARK not in page and ">v1</span>" in page
    assert client.post(f"/loops/{loop.pk}/finish/").status_code == 302
    loop.refresh_from_db()
    [entry] = [r for r in loop.scorecard["rounds"] if r["kind"] == "design"]
    assert entry["version"] == 1
    assert EDIT_MARK not in json.dumps(entry)
    params = design.design["params"]
    assert entry["follow_ups"][0]["prompt"] == render(original_follow_up, params)
    scorecard = client.get(f"/loops/{loop.pk}/scorecard/").content.decode()
    assert "(prompt v1)" in scorecard and EDIT_MARK not in scorecard


# ---------------------------------------------------------------- export


@pytest.mark.django_db
def test_export_bank_writes_the_design_prompts_back_and_a_load_changes_nothing(tmp_path):
    from django.core.management import call_command

    edited = _row()
    edited.spec = edited.spec | {"title": "Retitled by an author"}
    edited.published = False
    edited.save()
    authored = DesignPromptRow.objects.create(
        prompt_id="an-authors-prompt", title="An author's", level="senior", position=99,
        spec=dict(_row().spec) | {"id": "an-authors-prompt", "title": "An author's"},
    )  # fmt: skip
    rows_before = {r.prompt_id: (design_snapshot(r), r.published) for r in _rows()}
    versions_before = ContentVersion.objects.count()

    call_command("export_bank", str(tmp_path / "bank"))

    design_dir = tmp_path / "bank" / "design"
    shipped_names = {name for name, _ in design_files_read()}
    exported = dict(design_files_read(design_dir))
    assert set(exported) == shipped_names | {"an_authors_prompt.yaml"}
    by_id = {data["id"]: data for data in exported.values()}
    assert by_id[PROMPT]["title"] == "Retitled by an author"
    assert by_id[PROMPT]["published"] is False
    assert by_id["an-authors-prompt"] == design_snapshot(authored)
    for name, data in design_files_read():
        if data["id"] != PROMPT:
            assert exported[name] == data, name  # unedited prompts: what ships, unchanged
    # Authors read the keys in the files' order, however the database stored them.
    text = (design_dir / "an_authors_prompt.yaml").read_text()
    assert text.startswith("id: ") and text.index("\nsections:") < text.index("\nexample:")
    assert text.index("    question:") < text.index("    rubric:")

    report = design_prompts_load_report(design_dir)

    assert (report.created, report.updated, report.unpublished) == (0, 0, 0)
    assert {r.prompt_id: (design_snapshot(r), r.published) for r in _rows()} == rows_before
    assert ContentVersion.objects.count() == versions_before
    # What was exported is what ships now: the edited and the authored rows are adopted.
    assert all(r.shipped_hash == content_hash(design_snapshot(r)) for r in _rows())


@pytest.mark.django_db
def test_export_into_a_checkout_rewrites_only_the_prompts_authors_changed(tmp_path):
    import shutil

    from django.core.management import call_command

    checkout = tmp_path / "design"
    shutil.copytree(DESIGN_DIR, checkout)
    shipped_text = {path.name: path.read_text() for path in checkout.glob("*.yaml")}
    edited = _row()
    edited.spec = edited.spec | {"title": "Retitled by an author"}
    edited.save()
    name = next(name for name, data in design_files_read() if data["id"] == PROMPT)

    call_command("export_bank", str(tmp_path / "bank"), design_directory=str(checkout))

    changed = {p.name for p in checkout.glob("*.yaml") if p.read_text() != shipped_text[p.name]}
    assert changed == {name}
    assert dict(design_files_read(checkout))[name]["title"] == "Retitled by an author"
