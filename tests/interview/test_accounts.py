"""Accounts under attack: log-ins (site and admin) that lock out a guessing client and never
the owner, limited reset mails, a reset that revokes API tokens, and sign-up names that cannot
pass for someone else's."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

from grader import access, login_guard
from grader.models import ApiToken

PASSWORD = "correct-horse-42"
ATTACKER, OWNER = "203.0.113.9", "198.51.100.7"


def log_in(address: str, password: str, path: str = "/accounts/login/", username: str = "alice"):
    browser = Client(REMOTE_ADDR=address)
    reply = browser.post(path, {"username": username, "password": password})
    return reply, browser


def logged_in(browser: Client) -> bool:
    return "_auth_user_id" in browser.session


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"], ids=["site", "admin"])
def test_a_guessing_client_waits_even_with_the_right_password_and_the_owner_does_not(
    alice, login_limits, path
):
    alice.is_staff = True
    alice.save()
    for attempt in range(login_guard.CLIENT_FREE_FAILURES):
        reply, browser = log_in(ATTACKER, f"guess-{attempt}", path)
        assert "correct username and password" in reply.content.decode()
    reply, browser = log_in(ATTACKER, PASSWORD, path)
    assert "Too many failed log-ins from your address; try again in 1 s" in reply.content.decode()
    assert not logged_in(browser)
    reply, browser = log_in(OWNER, PASSWORD, path)
    assert reply.status_code == 302 and logged_in(browser)
    login_limits.advance(1)
    reply, browser = log_in(ATTACKER, PASSWORD, path)
    assert reply.status_code == 302 and logged_in(browser)


@pytest.mark.django_db
def test_forty_guesses_from_many_addresses_are_held_back_and_never_lock_the_owner_out(
    alice, login_limits
):
    checked = 0
    for attempt in range(40):
        reply, _ = log_in(f"203.0.113.{attempt % 8}", f"guess-{attempt}")
        checked += "correct username and password" in reply.content.decode()
        login_limits.advance(1)
    # Past the account's free failures, its failing clients wait longer after each guess.
    assert login_guard.ACCOUNT_FREE_FAILURES <= checked < 20
    reply, browser = log_in(OWNER, PASSWORD)
    assert reply.status_code == 302 and logged_in(browser)


def _reset(address: str = "alice@example.com"):
    return Client(REMOTE_ADDR=ATTACKER).post("/accounts/password_reset/", {"email": address})


@pytest.mark.django_db
def test_reset_mails_to_one_address_are_limited(alice, login_limits):
    for _ in range(login_guard.RESET_MAILS_PER_WINDOW):
        assert _reset().status_code == 302
    assert len(mail.outbox) == login_guard.RESET_MAILS_PER_WINDOW
    refused = _reset()
    assert refused.status_code == 200
    assert "reset mails went to this address in the last hour" in refused.content.decode()
    assert len(mail.outbox) == login_guard.RESET_MAILS_PER_WINDOW
    # An unknown address is counted the same, so the answer tells nothing about accounts.
    for _ in range(login_guard.RESET_MAILS_PER_WINDOW):
        assert _reset("nobody@example.com").status_code == 302
    assert "in the last hour" in _reset("nobody@example.com").content.decode()
    login_limits.advance(login_guard.RESET_MAIL_WINDOW_S)
    assert _reset().status_code == 302
    assert len(mail.outbox) == login_guard.RESET_MAILS_PER_WINDOW + 1


@pytest.mark.django_db
def test_a_password_reset_revokes_the_api_tokens(alice, login_limits):
    raw = access.api_token_create(alice, "laptop")[1]
    assert _reset().status_code == 302
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.outbox[0].body)[1]
    browser = Client()
    form_page = browser.get(link, follow=True)
    new_password = "a-fresh-passphrase-77"
    done = browser.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": new_password, "new_password2": new_password},
    )
    assert done.status_code == 302
    assert ApiToken.objects.get(user=alice).revoked_at is not None
    reply = Client(headers={"Authorization": f"Bearer {raw}"}).get("/api/reviews")
    assert reply.status_code == 401
    assert reply.json()["detail"].startswith("token revoked")


def _sign_up(username: str):
    return Client().post(
        "/accounts/signup/",
        {
            "username": username,
            "email": "x@example.com",
            "password1": "pw-signup-test-1",
            "password2": "pw-signup-test-1",
        },
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "username",
    ["\u0430lice", "b\u043eb", "ev\u0435", "\u03b1lice", "pаypal田"],
    ids=["cyrillic-a", "cyrillic-o", "cyrillic-e", "greek-alpha", "three-scripts"],
)
def test_a_username_mixing_scripts_is_refused_at_sign_up(username):
    reply = _sign_up(username)
    assert reply.status_code == 200
    assert "Use letters of one script only" in reply.content.decode()
    assert not get_user_model().objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "username",
    ["alice_2", "\u0430\u043b\u0438\u0441\u0430", "李小龙", "田中さん", "김민준", "Zoë"],
    ids=["latin", "cyrillic", "han", "han-and-kana", "hangul", "latin-with-diaeresis"],
)
def test_a_username_in_one_script_is_accepted(username):
    reply = _sign_up(username)
    assert reply.status_code == 302
    assert get_user_model().objects.filter(username=username).exists()
