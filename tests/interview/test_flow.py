"""The whole candidate journey through real HTTP requests (Django's test client)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from interview import services
from interview.models import (
    Attempt,
    Loop,
    LoopItem,
    LoopRound,
    LoopStatus,
    Question,
    ReviewCard,
    RoundKind,
)
from interview.scorecard import rating_for
from tests.interview.conftest import bank_choice, right_answer, wrong_answer

pytestmark = pytest.mark.django_db


def _unmasked(page: str) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", page)


def test_signup_logout_login_and_password_reset_by_console_email(client, bank, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    response = client.post(
        "/accounts/signup/",
        {
            "username": "carol",
            "email": "carol@example.com",
            "password1": "inference-is-fun-7",
            "password2": "inference-is-fun-7",
        },
    )
    assert response.status_code == 302
    home = client.get("/").content.decode()
    assert "carol" in home and "Practise the inference-engineer interview" in home
    # One page at both addresses (each render masks its CSRF token anew).
    dashboard = client.get("/dashboard/").content.decode()
    assert _unmasked(client.get("/").content.decode()) == _unmasked(dashboard)
    assert re.search(r'id="due-count">0<', home)
    assert client.post("/accounts/logout/").status_code == 302
    assert "Log in" in client.get("/").content.decode()

    client.post("/accounts/password_reset/", {"email": "carol@example.com"})
    [email] = mail.outbox
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", email.body).group(1)
    form_url = client.get(link).url
    response = client.post(
        form_url,
        {"new_password1": "decode-is-memory-bound-9", "new_password2": "decode-is-memory-bound-9"},
    )
    assert response.status_code == 302
    assert client.login(username="carol", password="decode-is-memory-bound-9")


def test_pages_need_login(client, bank):
    for url in ("/practice/", "/loops/", "/review/", "/progress/"):
        assert client.get(url).url.startswith("/accounts/login/")


def _token(html: str) -> str:
    return re.search(r'name="token" value="([^"]+)"', html).group(1)


def test_practice_gives_immediate_feedback_with_explanation_and_source(client, bank, alice):
    client.force_login(alice)
    listing = client.get("/practice/?topic=kv-cache&level=mid").content.decode()
    assert "kv-bytes-per-token-llama3-8b" in listing

    page = client.get("/practice/kv-bytes-per-token-llama3-8b/").content.decode()
    response = client.post(
        "/practice/kv-bytes-per-token-llama3-8b/", {"value": "131072", "token": _token(page)}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Correct" in html and "2 × 32 layers × 8 KV heads × 128 × 2 bytes" in html
    assert "https://huggingface.co/meta-llama/Meta-Llama-3-8B" in html

    page = client.get("/practice/kv-what-is-cached/").content.decode()
    wrong = bank_choice(Question.objects.get(bank_id="kv-what-is-cached"), page, right=False)
    html = client.post(
        "/practice/kv-what-is-cached/", wrong | {"token": _token(page)}
    ).content.decode()
    assert "Not quite" in html
    attempts = Attempt.objects.filter(user=alice).order_by("created_at")
    assert [(a.question.bank_id, a.correct) for a in attempts] == [
        ("kv-bytes-per-token-llama3-8b", True),
        ("kv-what-is-cached", False),
    ]
    [card] = ReviewCard.objects.filter(user=alice)
    assert (card.question.bank_id, card.point_id) == ("kv-what-is-cached", "")


def test_parametric_practice_grades_against_the_drawn_numbers(client, bank, alice):
    client.force_login(alice)
    question = Question.objects.get(bank_id="kv-bytes-per-token-param")
    page = client.get("/practice/kv-bytes-per-token-param/").content.decode()
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))
    layers = int(re.search(r"has (\d+) layers", text).group(1))
    kv_heads = int(re.search(r"(\d+) KV heads", text).group(1))
    head_dim = int(re.search(r"head dimension (\d+)", text).group(1))
    bytes_per = 2 if "stored in BF16" in text else 1
    answer = 2 * layers * kv_heads * head_dim * bytes_per
    html = client.post(
        "/practice/kv-bytes-per-token-param/", {"value": str(answer), "token": _token(page)}
    ).content.decode()
    assert "Correct" in html, (layers, kv_heads, head_dim, bytes_per)
    attempt = Attempt.objects.get(user=alice, question=question)
    assert attempt.params["model"]["layers"] == layers


def test_a_forged_or_foreign_practice_token_is_refused(client, bank, alice):
    client.force_login(alice)
    page = client.get("/practice/kv-mqa/").content.decode()
    response = client.post("/practice/kv-gqa-effect/", {"choice": "0", "token": _token(page)})
    assert response.status_code == 400
    response = client.post("/practice/kv-mqa/", {"choice": "0", "token": "forged"})
    assert response.status_code == 400
    assert not Attempt.objects.exists()


def _answer_round(client, loop, plan):
    """Answer the concept items by ``plan`` (right, wrong, skip, late); returns expected scores."""
    round_ = loop.rounds.get(kind=RoundKind.CONCEPTS)
    items = list(LoopItem.objects.filter(round=round_).select_related("question"))
    expected = []
    for item, how in zip(items, plan, strict=False):
        if how == "skip":
            expected.append((item.question, 0.0))
            continue
        if how == "late":
            LoopRound.objects.filter(pk=round_.pk).update(
                deadline=timezone.now() - timedelta(seconds=1)
            )
        data = (right_answer if how in ("right", "late") else wrong_answer)(
            item.question, item.params, item.option_order
        )
        response = client.post(f"/loops/{loop.pk}/items/{item.pk}/answer/", data)
        assert response.status_code == 302
        attempt = Attempt.objects.get(loop_round=round_, question=item.question)
        assert attempt.correct == (how in ("right", "late"))
        # A written answer's score is the judge's verdict, near but not exactly 1 or 0; a late
        # answer scores nothing in the round.
        expected.append((item.question, 0.0 if how == "late" else attempt.score))
    return round_, items, expected


def test_a_whole_mock_loop_to_its_scorecard(client, bank, alice):
    client.force_login(alice)
    response = client.post("/loops/start/", {"level": "junior", "length_min": "30"})
    loop = Loop.objects.get(user=alice)
    assert response.url == f"/loops/{loop.pk}/rounds/0/"
    page = client.get(response.url).content.decode()
    assert 'id="countdown"' in page and "data-deadline" in page
    rounds = list(loop.rounds.order_by("position"))
    assert [r.kind for r in rounds][0] == RoundKind.CONCEPTS
    concepts = rounds[0]
    assert concepts.deadline - concepts.started_at == timedelta(minutes=10)

    round_, items, expected = _answer_round(
        client, loop, ["right", "right", "wrong", "skip", "late"]
    )
    assert len(items) == 5
    # A double submit counts once, and its answer is the first one.
    first = Attempt.objects.get(loop_round=round_, question=items[0].question)
    client.post(
        f"/loops/{loop.pk}/items/{items[0].pk}/answer/",
        wrong_answer(items[0].question, items[0].params, items[0].option_order),
    )
    assert Attempt.objects.filter(loop_round=round_, question=items[0].question).count() == 1
    first.refresh_from_db()
    assert first.correct
    late = Attempt.objects.get(loop_round=round_, question=items[4].question)
    assert late.late and late.correct

    design = loop.rounds.get(kind=RoundKind.DESIGN)
    page = client.get(f"/loops/{loop.pk}/rounds/{design.position}/").content.decode()
    assert "Submit the design" in page and 'id="countdown"' in page
    client.post(
        f"/loops/{loop.pk}/rounds/{design.position}/submit/",
        {"section-memory_model": "KV cache per token is 2 x layers x KV heads x head dim x bytes."},
    )
    design.refresh_from_db()
    assert design.submitted_at and not design.late and design.score is not None

    assert client.post(f"/loops/{loop.pk}/finish/").status_code == 302
    assert client.post(f"/loops/{loop.pk}/finish/").status_code == 409
    loop.refresh_from_db()
    card = loop.scorecard
    concept_score = round(sum(score for _, score in expected) / 5, 4)
    assert concept_score == pytest.approx(0.4, abs=0.02)
    [concept_row] = [r for r in card["rounds"] if r["kind"] == "concepts"]
    assert concept_row["score"] == concept_score
    assert (concept_row["answered"], concept_row["late"]) == (4, 1)
    assert [r["kind"] for r in card["rounds"]] == ["concepts", "design"]  # no coding problem
    assert card["rounds"][1]["score"] == design.score
    overall = round((concept_score + design.score) / 2, 4)
    assert card["overall"] == loop.overall_score == overall
    assert loop.rating == card["rating"] == rating_for(overall)
    topics: dict[str, list[float]] = {}
    for question, score in expected:
        topics.setdefault(question.topic, []).append(score)
    assert {t["topic"]: (t["questions"], t["score"]) for t in card["topics"]} == {
        topic: (len(scores), round(sum(scores), 4)) for topic, scores in topics.items()
    }
    weak = sorted(
        (t for t in card["topics"] if t["share"] < 0.75), key=lambda t: (t["share"], t["topic"])
    )
    assert [s["topic"] for s in card["study_plan"]] == [t["topic"] for t in weak][:3]

    html = client.get(f"/loops/{loop.pk}/scorecard/").content.decode()
    assert f'id="overall">{overall:.2f}<' in html
    assert f"{loop.rating}/4" in html and "Study plan" in html
    for entry in card["study_plan"]:
        assert f"/practice/?topic={entry['topic']}" in html
    assert "Finished loops" in client.get("/progress/").content.decode()
    assert str(loop.pk) in client.get("/loops/").content.decode()
    assert Loop.objects.get(pk=loop.pk).status == LoopStatus.FINISHED


def test_answers_to_another_users_loop_are_refused(client, bank, alice, bob):
    client.force_login(alice)
    client.post("/loops/start/", {"level": "mid", "length_min": "45"})
    loop = Loop.objects.get(user=alice)
    item = LoopItem.objects.filter(round__loop=loop).first()
    client.force_login(bob)
    response = client.post(
        f"/loops/{loop.pk}/items/{item.pk}/answer/",
        right_answer(item.question, item.params, item.option_order),
    )
    assert response.status_code == 404
    assert client.post(f"/loops/{loop.pk}/finish/").status_code == 404
    assert client.get(f"/loops/{loop.pk}/").status_code == 404
    assert not Attempt.objects.exists()
    assert Loop.objects.get(pk=loop.pk).status == LoopStatus.ACTIVE


def test_answers_after_finish_are_refused(client, bank, alice):
    client.force_login(alice)
    client.post("/loops/start/", {"level": "senior", "length_min": "60"})
    loop = Loop.objects.get(user=alice)
    assert loop.rounds.get(kind=RoundKind.CONCEPTS).items.count() == 10
    client.post(f"/loops/{loop.pk}/finish/")
    item = LoopItem.objects.filter(round__loop=loop).first()
    response = client.post(
        f"/loops/{loop.pk}/items/{item.pk}/answer/",
        right_answer(item.question, item.params, item.option_order),
    )
    assert response.status_code == 409
    assert not Attempt.objects.exists()


def test_a_review_session_clears_a_due_card(client, bank, alice):
    client.force_login(alice)
    block_table = Question.objects.get(bank_id="pa-block-table")
    page = client.get("/practice/pa-block-table/").content.decode()
    wrong = bank_choice(block_table, page, right=False)
    client.post("/practice/pa-block-table/", wrong | {"token": _token(page)})
    assert re.search(r'id="due-count">1<', client.get("/").content.decode())
    review = client.get("/review/").content.decode()
    card = ReviewCard.objects.get(user=alice)
    assert f'name="card" value="{card.pk}"' in review
    right = bank_choice(block_table, review, right=True)
    html = client.post(
        "/review/", right | {"card": card.pk, "token": _token(review)}
    ).content.decode()
    assert "Correct" in html
    card.refresh_from_db()
    assert card.reviews == 0  # seeing the answer is not rating it
    # The grade's rating is the default; the person rates Easy instead, and that is what counts.
    assert re.search(r'value="3" class="rate-good" autofocus', html)
    client.post("/review/rate/", {"card": card.pk, "rating": "4", "suggested": "3"})
    card.refresh_from_db()
    assert card.reviews == 1 and card.due - timezone.now() > timedelta(days=1)
    assert [(log.rating, log.suggested) for log in card.logs.all()] == [(4, 3)]
    assert re.search(r'id="due-count">0<', client.get("/").content.decode())
    assert "Nothing due" in client.get("/review/").content.decode()


def test_a_card_rated_again_comes_back_in_minutes_and_the_due_count_holds(client, bank, alice):
    client.force_login(alice)
    for bank_id in ("pa-block-table", "kv-mqa"):
        services.review_card_add(user=alice, question=Question.objects.get(bank_id=bank_id))
    assert re.search(r'id="due-count">2<', client.get("/").content.decode())
    first = ReviewCard.objects.filter(user=alice).order_by("due", "pk").first()
    client.post("/review/rate/", {"card": first.pk, "rating": "1"})
    first.refresh_from_db()
    assert timedelta(0) < first.due - timezone.now() <= timedelta(minutes=10)
    # Still due today: the count does not drop now only to jump back when the step comes due.
    assert re.search(r'id="due-count">2<', client.get("/").content.decode())
    # The learning step is served within the session, after the other card.
    assert f'name="card" value="{first.pk}"' not in client.get("/review/").content.decode()
    second = ReviewCard.objects.exclude(pk=first.pk).get(user=alice)
    client.post("/review/rate/", {"card": second.pk, "rating": "4"})
    assert f'name="card" value="{first.pk}"' in client.get("/review/").content.decode()
    assert re.search(r'id="due-count">1<', client.get("/").content.decode())


def test_a_person_adds_their_own_card_for_a_question_or_a_rubric_point(client, bank, alice):
    client.force_login(alice)
    question = Question.objects.get(bank_id="pd-why-memory-bound")
    point = question.spec["rubric"]["points"][0]["id"]
    for data in ({"question": question.bank_id}, {"question": question.bank_id, "point": point}):
        response = client.post("/review/add/", data | {"next": "/practice/"})
        assert (response.status_code, response.url) == (302, "/practice/")
    cards = ReviewCard.objects.filter(user=alice, question=question)
    assert sorted(cards.values_list("point_id", "origin")) == [("", "added"), (point, "added")]
    refused = client.post("/review/add/", {"question": question.bank_id, "point": "no-such"})
    assert refused.status_code == 400 and cards.count() == 2
    assert client.post("/review/add/", {"question": question.bank_id}).status_code == 302
    assert cards.count() == 2  # asking twice keeps one card
