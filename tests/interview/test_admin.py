"""Authoring in the Django admin: YAML edited in a form, schema errors shown, a preview."""

from __future__ import annotations

import re

import pytest

from interview.models import Question
from interview.question_bank import bank_dump

pytestmark = pytest.mark.django_db

NEW_QUESTION = {
    "id": "kv-new-question",
    "type": "numeric",
    "topics": ["kv-cache"],
    "level": "junior",
    "prompt": "How many bytes is one BF16 value?",
    "answer": 2,
    "tolerance": 0.01,
    "unit": "bytes",
    "formula": "bits / 8",
    "variables": {"bits": 16},
    "explanation": "BF16 is 16 bits: 16 / 8 = 2 bytes.",
    "source": {"title": "NVIDIA mixed precision guide", "url": "https://docs.nvidia.com/"},
}


@pytest.fixture
def admin_client(client, django_user_model):
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")
    client.force_login(admin)
    return client


def test_admin_shows_schema_errors_and_saves_nothing(admin_client, bank):
    broken = bank_dump(NEW_QUESTION | {"answer": 3})
    response = admin_client.post(
        "/admin/interview/question/add/", {"spec_yaml": broken, "published": "on"}
    )
    assert response.status_code == 200
    assert "disagrees with its formula" in response.content.decode()
    response = admin_client.post(
        "/admin/interview/question/add/", {"spec_yaml": "id: [unclosed", "published": "on"}
    )
    assert "not valid YAML" in response.content.decode()
    assert not Question.objects.filter(bank_id="kv-new-question").exists()


def test_admin_creates_edits_and_previews_a_question(admin_client, bank):
    response = admin_client.post(
        "/admin/interview/question/add/", {"spec_yaml": bank_dump(NEW_QUESTION)}
    )
    assert response.status_code == 302
    question = Question.objects.get(bank_id="kv-new-question")
    assert (question.topic, question.level, question.published) == ("kv-cache", "junior", False)
    page = admin_client.get(f"/admin/interview/question/{question.pk}/change/").content.decode()
    assert "How many bytes is one BF16 value?" in page and "BF16 is 16 bits" in page

    parametric = Question.objects.get(bank_id="kv-bytes-per-token-param")
    page = admin_client.get(f"/admin/interview/question/{parametric.pk}/change/").content.decode()
    assert "Drawn parameters" in page
    assert re.search(r"(Llama|Qwen|SmolLM2)[\w.-]* has \d+ layers", page)
