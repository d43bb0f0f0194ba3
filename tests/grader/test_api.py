"""The grader API as a program uses it: tokens, problems, submissions, limits, event streams."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.test import AsyncClient, Client

from grader import access
from grader.models import ApiToken, Submission
from grader.services import submission_abort, submission_grade
from tests.grader.conftest import solution

pytestmark = pytest.mark.usefixtures("fresh_buckets")


@pytest.fixture
def token(user) -> str:
    return access.api_token_create(user, "tests")[1]


def api(token: str) -> Client:
    return Client(headers={"Authorization": f"Bearer {token}"})


def submit(client: Client, code: str, key: str = "", problem: str = "cpu-softmax"):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(
        "/api/submissions",
        data=json.dumps({"problem": problem, "code": code}),
        content_type="application/json",
        headers=headers,
    )


def test_password_exchange_gives_a_working_token_and_stores_only_its_hash(user, softmax_problem):
    reply = Client().post(
        "/api/auth/token",
        data={"username": "candidate", "password": "pw-candidate-1", "name": "laptop"},
        content_type="application/json",
    )
    assert reply.status_code == 201
    raw = reply.json()["token"]
    stored = ApiToken.objects.get(user=user)
    assert raw not in (stored.key_hash, stored.prefix) and raw.startswith(stored.prefix)
    problems = api(raw).get("/api/problems")
    assert problems.status_code == 200
    assert "cpu-softmax" in [p["slug"] for p in problems.json()]


def test_wrong_password_is_401_and_creates_no_token(user):
    reply = Client().post(
        "/api/auth/token",
        data={"username": "candidate", "password": "nope"},
        content_type="application/json",
    )
    assert reply.status_code == 401
    assert reply.json()["errors"][0]["field"] == "password"
    assert not ApiToken.objects.exists()


def test_revoked_or_unknown_tokens_are_refused_saying_which(user, softmax_problem, token):
    unknown = api("ipk_not-a-real-token").get("/api/problems")
    assert unknown.status_code == 401
    assert unknown.json()["detail"].startswith("unknown token")
    assert Client().get("/api/problems").status_code == 401
    access.api_token_revoke(user, ApiToken.objects.get(user=user).pk)
    reply = api(token).get("/api/problems")
    assert reply.status_code == 401
    assert reply.json()["detail"].startswith("token revoked")


@pytest.mark.parametrize("revoked", [False, True], ids=["unknown", "revoked"])
def test_a_bad_token_on_a_post_is_401_naming_the_token_not_a_csrf_failure(
    user, softmax_problem, token, revoked
):
    if revoked:
        access.api_token_revoke(user, ApiToken.objects.get(user=user).pk)
    reply = submit(api(token if revoked else "ipk_bogus"), solution("reference.py"))
    assert reply.status_code == 401
    assert reply.json()["detail"].startswith("token revoked" if revoked else "unknown token")
    assert reply.json()["errors"][0]["field"] == "Authorization"
    assert "CSRF" not in reply.content.decode()
    assert not Submission.objects.exists()


def test_problem_detail_has_statement_and_starter_and_unknown_slug_is_404(softmax_problem, token):
    detail = api(token).get("/api/problems/cpu-softmax").json()
    assert detail["starter_code"] == softmax_problem.starter_code
    assert "softmax" in detail["statement_md"].lower()
    missing = api(token).get("/api/problems/no-such-problem")
    assert missing.status_code == 404
    assert "no-such-problem" in missing.json()["detail"]


def test_retry_with_the_same_idempotency_key_returns_the_same_submission(softmax_problem, token):
    first = submit(api(token), solution("reference.py"), key="retry-1")
    again = submit(api(token), solution("reference.py"), key="retry-1")
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert Submission.objects.count() == 1
    other = submit(api(token), solution("starter.py"), key="retry-1")
    assert other.status_code == 409
    assert other.json()["errors"][0]["rule"] == "reused"
    assert Submission.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        ({"problem": "cpu-softmax"}, "body.payload.code", "missing"),
        (
            {"problem": "Not A Slug", "code": "x = 1"},
            "body.payload.problem",
            "string_pattern_mismatch",
        ),
        (
            {"problem": "cpu-softmax", "code": "x" * (256 * 1024 + 1)},
            "body.payload.code",
            "string_too_long",
        ),
    ],
    ids=["no-code", "bad-slug", "over-size-cap"],
)
def test_malformed_submissions_name_the_field_and_rule(softmax_problem, token, body, field, rule):
    reply = api(token).post(
        "/api/submissions", data=json.dumps(body), content_type="application/json"
    )
    assert reply.status_code == 422
    error = reply.json()["errors"][0]
    assert (error["field"], error["rule"]) == (field, rule)
    assert not Submission.objects.exists()


def test_nul_bytes_and_unknown_problems_are_refused_and_nothing_is_stored(softmax_problem, token):
    nul = submit(api(token), "def softmax(x):\x00 return x")
    assert nul.status_code == 422
    assert "NUL" in nul.json()["detail"]
    unknown = submit(api(token), "x = 1", problem="no-such-problem")
    assert unknown.status_code == 404
    not_json = api(token).post("/api/submissions", data="{", content_type="application/json")
    assert not_json.status_code in (400, 422)
    assert not Submission.objects.exists()


def test_pending_cap_answers_429_with_retry_after(softmax_problem, token):
    for attempt in range(access.MAX_PENDING_PER_USER):
        assert submit(api(token), f"# {attempt}\n" + solution("reference.py")).status_code == 201
    over = submit(api(token), solution("reference.py"))
    assert over.status_code == 429
    assert int(over["Retry-After"]) >= 1
    assert over.json()["errors"][0]["rule"] == "max_pending"
    assert Submission.objects.count() == access.MAX_PENDING_PER_USER


def test_token_bucket_refuses_a_burst_with_retry_after(softmax_problem, token, user):
    for attempt in range(access.SUBMIT_BUCKET.capacity):
        assert submit(api(token), f"# {attempt}\n" + solution("reference.py")).status_code == 201
        submission_abort(Submission.objects.latest("pk").pk)
    over = submit(api(token), solution("reference.py"))
    assert over.status_code == 429
    assert over.json()["errors"][0]["rule"] == "rate_limit"
    assert 1 <= int(over["Retry-After"]) <= 1 / access.SUBMIT_BUCKET.refill_per_s


def test_full_queue_answers_503_with_retry_after(softmax_problem, token, monkeypatch):
    monkeypatch.setattr(access, "MAX_QUEUED_TOTAL", 0)
    reply = submit(api(token), solution("reference.py"))
    assert reply.status_code == 503
    assert int(reply["Retry-After"]) == access.QUEUE_FULL_RETRY_S
    assert not Submission.objects.exists()


def test_a_flooding_user_holds_one_job_in_the_broker_and_others_go_straight_in(
    softmax_problem, token
):
    for attempt in range(3):
        submit(api(token), f"# {attempt}\n" + solution("reference.py"))
    other = get_user_model().objects.create_user("other", password="pw-other-1")
    submit(api(access.api_token_create(other, "t")[1]), solution("reference.py"))
    flood = Submission.objects.exclude(user=other).order_by("pk")
    assert [s.dispatched for s in flood] == [True, False, False]
    assert Submission.objects.get(user=other).dispatched
    submission_abort(flood[0].pk)
    assert [s.dispatched for s in Submission.objects.exclude(user=other).order_by("pk")] == [
        True,
        True,
        False,
    ]


async def _read_stream(response) -> list[dict]:
    events = []
    async for chunk in response.streaming_content:
        for block in chunk.decode().split("\n\n"):
            lines = dict(
                line.split(": ", 1)
                for line in block.splitlines()
                if line and not line.startswith(":")
            )
            if lines:
                events.append({"id": int(lines["id"]), "event": lines["event"]})
    return events


def test_event_stream_replays_a_graded_submission_and_resumes_after_last_event_id(
    softmax_problem, token
):
    created = submit(api(token), solution("reference.py")).json()
    graded = submission_grade(created["id"], attempt=0, hostname="api-test")
    assert graded.verdict == "accepted"
    client = AsyncClient()

    async def read(**headers):
        response = await client.get(
            f"/api/submissions/{created['id']}/events",
            headers={"Authorization": f"Bearer {token}"} | headers,
        )
        assert response.status_code == 200
        assert response["Content-Type"] == "text/event-stream"
        return await _read_stream(response)

    events = async_to_sync(read)()
    assert events[0]["event"] == "queued" and events[-1]["event"] == "done"
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    resumed = async_to_sync(read)(**{"Last-Event-ID": "2"})
    assert [e["id"] for e in resumed] == [e["id"] for e in events[2:]]
    detail = api(token).get(f"/api/submissions/{created['id']}").json()
    assert detail["verdict"] == "accepted"
    assert [t["verdict"] for t in detail["tests"]] == ["accepted"] * len(detail["tests"])


def test_someone_elses_submission_is_404(softmax_problem, token):
    created = submit(api(token), solution("reference.py")).json()
    other = get_user_model().objects.create_user("other", password="pw-other-1")
    other_token = access.api_token_create(other, "t")[1]
    assert api(other_token).get(f"/api/submissions/{created['id']}").status_code == 404
    assert api(other_token).get(f"/api/submissions/{created['id']}/events").status_code == 404
    assert api(other_token).get("/api/submissions").json() == []
