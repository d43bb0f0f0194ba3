"""The API's password exchange under attack: the attacker waits, the owner does not; a
password change revokes tokens; the command-line client says why a token is refused."""

from __future__ import annotations

import pytest
from django.test import Client

from grader import access, client, login_guard
from grader.models import ApiToken

OWNER_PASSWORD = "pw-candidate-1"


def exchange(address: str, password: str, username: str = "candidate"):
    return Client(REMOTE_ADDR=address).post(
        "/api/auth/token",
        data={"username": username, "password": password},
        content_type="application/json",
    )


def test_the_owner_logs_in_after_an_attacker_failed_many_times_from_elsewhere(user, login_limits):
    for attempt in range(login_guard.ACCOUNT_FREE_FAILURES + 5):
        assert exchange("203.0.113.9", f"guess-{attempt}").status_code in (401, 429)
        login_limits.advance(login_guard.MAX_BACKOFF_S)
    assert exchange("198.51.100.7", OWNER_PASSWORD).status_code == 201


def test_a_client_that_keeps_failing_waits_even_with_the_right_password(user, login_limits):
    for attempt in range(login_guard.CLIENT_FREE_FAILURES):
        assert exchange("203.0.113.9", f"guess-{attempt}").status_code == 401
    refused = exchange("203.0.113.9", OWNER_PASSWORD)
    assert refused.status_code == 429
    assert refused["Retry-After"] == "1"
    assert "from your address" in refused.json()["detail"]
    assert not ApiToken.objects.exists()
    login_limits.advance(1)
    assert exchange("203.0.113.9", "guess-again").status_code == 401
    # The wait doubles after each further failure.
    login_limits.advance(1)
    assert exchange("203.0.113.9", OWNER_PASSWORD).status_code == 429
    login_limits.advance(1)
    assert exchange("203.0.113.9", OWNER_PASSWORD).status_code == 201


def test_an_attacked_account_slows_clients_that_have_been_failing(user, login_limits):
    for attacker in range(login_guard.ACCOUNT_FREE_FAILURES):
        assert exchange(f"203.0.113.{attacker}", "guess").status_code == 401
    # A failing client is now slowed on this account, even before its own limit.
    refused = exchange("203.0.113.0", OWNER_PASSWORD)
    assert refused.status_code == 429
    assert refused.json()["errors"][0]["field"] == "username"
    assert "to this account" in refused.json()["detail"]
    assert exchange("198.51.100.7", OWNER_PASSWORD).status_code == 201


def test_changing_the_password_revokes_every_token(user, login_limits):
    tokens = [access.api_token_create(user, name)[1] for name in ("laptop", "ci")]
    user.set_password("a-new-passphrase-9")
    user.save()
    for raw in tokens:
        reply = Client(headers={"Authorization": f"Bearer {raw}"}).get("/api/problems")
        assert reply.status_code == 401
        assert reply.json()["detail"].startswith("token revoked")
    assert exchange("198.51.100.7", "a-new-passphrase-9").status_code == 201


def test_a_log_in_that_only_updates_last_login_keeps_the_tokens(user, login_limits):
    raw = access.api_token_create(user, "laptop")[1]
    assert Client(REMOTE_ADDR="198.51.100.7").login(username="candidate", password=OWNER_PASSWORD)
    user.refresh_from_db()
    user.first_name = "Ada"
    user.save()
    reply = Client(headers={"Authorization": f"Bearer {raw}"}).get("/api/problems")
    assert reply.status_code == 200


@pytest.mark.parametrize("revoked", [False, True], ids=["unknown", "revoked"])
def test_the_cli_says_the_token_is_unknown_or_revoked(
    user, softmax_problem, live_server, tmp_path, capsys, revoked
):
    token, raw = access.api_token_create(user, "laptop")
    if revoked:
        access.api_token_revoke(user, token.pk)
    source = tmp_path / "solution.py"
    source.write_text("def softmax(x):\n    return x\n")
    status = client.main(
        [
            "--server",
            live_server.url,
            "--token",
            raw if revoked else "ipk_bogus",
            "submit",
            "cpu-softmax",
            str(source),
        ]
    )
    assert status == 2
    printed = capsys.readouterr().err
    assert ("token revoked" if revoked else "unknown token") in printed
    assert "CSRF" not in printed


def test_with_redis_down_log_ins_still_work_and_stay_limited(user, login_limits, settings):
    settings.CACHES = settings.CACHES | {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            # Nothing listens on port 1: every call fails at once, as with Redis stopped.
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    for attempt in range(login_guard.CLIENT_FREE_FAILURES):
        assert exchange("203.0.113.9", f"guess-{attempt}").status_code == 401
    assert exchange("203.0.113.9", OWNER_PASSWORD).status_code == 429
    assert exchange("198.51.100.7", OWNER_PASSWORD).status_code == 201
