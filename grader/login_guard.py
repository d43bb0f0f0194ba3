"""Brute-force limits on every log-in (the site's, the admin's, the API's) and on reset mails.

Failed log-ins are counted per client (its address) and per account, in Django's cache: Redis
when ``REDIS_URL`` is set, so every web process agrees; the process's memory otherwise (the
embedded default runs one web process).

- A client that keeps failing waits: after ``CLIENT_FREE_FAILURES`` failures, twice as long
  after each further one, up to ``MAX_BACKOFF_S``, whatever account it tries.
- An account under attack (``ACCOUNT_FREE_FAILURES`` failures from anywhere) slows every client
  that has been failing, with the same back-off.
- A client with no recent failure is never refused: the owner logs in with the right password
  while an attacker elsewhere is locked out.

When Redis does not answer, the counters move to this process's memory until it does: log-ins
go on working, still limited, instead of failing with the store.

A success forgets nothing but the attempt itself, so a client cannot clear its record by
logging in to an account of its own between guesses; failures are forgotten
``FORGET_AFTER_S`` after the last one.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from django.core.cache import BaseCache, caches
from django.http import HttpRequest
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)
Result = TypeVar("Result")

# Wrong passwords a client may send before it has to wait: room for a person's typos.
CLIENT_FREE_FAILURES = 5
# Failures on one account, from all clients together, before failing clients slow down.
ACCOUNT_FREE_FAILURES = 10
# The first wait, doubled after every further failure; capped so a person is never shut out.
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 15 * 60
# A client's or an account's record is dropped this long after its last failure.
FORGET_AFTER_S = 24 * 3600
# Password-reset mails one address may receive per window: enough for a lost first mail.
RESET_MAILS_PER_WINDOW = 3
RESET_MAIL_WINDOW_S = 3600


def clock() -> float:
    """Seconds since the epoch; tests replace it to move time without sleeping."""
    return time.time()


class LoginRefused(Exception):
    """Too many failures: carries the seconds to wait and whose failures caused it."""

    def __init__(self, message: str, *, retry_after_s: float, scope: str) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.scope = scope


@dataclass(frozen=True)
class LoginAttempt:
    """One log-in in progress: the keys it was counted under; finish it with
    :func:`login_failed` or :func:`login_succeeded`."""

    client_key: str
    account_key: str


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def client_address(request: HttpRequest | None) -> str:
    """The address a request came from ("" when there is no request, e.g. a script)."""
    return (request.META.get("REMOTE_ADDR") or "") if request is not None else ""


def backoff_s(failures: int, free: int) -> float:
    """The wait after ``failures`` failures of which ``free`` cost nothing."""
    if failures < free:
        return 0.0
    return min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** min(failures - free, 32))


def _with_store(operation: Callable[[BaseCache], Result]) -> Result:
    """Run ``operation`` on the shared cache, or on this process's when that one fails."""
    try:
        return operation(caches["default"])
    except (RedisError, OSError) as error:
        logger.warning("log-in limits: the shared cache failed (%s); using this process's", error)
        return operation(caches["local"])


def _record(cache: BaseCache, key: str) -> tuple[int, float]:
    state = cache.get_many([f"{key}:n", f"{key}:at"])
    return int(state.get(f"{key}:n", 0)), float(state.get(f"{key}:at", 0.0))


def _count(cache: BaseCache, key: str) -> int:
    """Add one failure to ``key`` atomically; returns the count before it."""
    cache.add(f"{key}:n", 0, timeout=FORGET_AFTER_S)
    after = cache.incr(f"{key}:n")
    cache.touch(f"{key}:n", FORGET_AFTER_S)
    return after - 1


def _uncount(cache: BaseCache, key: str) -> None:
    with contextlib.suppress(ValueError):  # forgotten meanwhile: nothing to take back
        cache.decr(f"{key}:n")


def login_begin(request: HttpRequest | None, username: str) -> LoginAttempt:
    """Check that this client may try to log in as ``username`` now, and count the attempt
    as a failure until :func:`login_succeeded` takes it back, so that parallel guesses from
    one client each see the others. Raises :class:`LoginRefused`."""
    attempt = LoginAttempt(
        client_key=f"inferprep:login:client:{_digest(client_address(request))}",
        account_key=f"inferprep:login:account:{_digest(username.strip().lower())}",
    )
    _with_store(lambda cache: _begin(cache, attempt, clock()))
    return attempt


def _begin(cache: BaseCache, attempt: LoginAttempt, now: float) -> None:
    _, client_last_at = _record(cache, attempt.client_key)
    account_failures, account_last_at = _record(cache, attempt.account_key)
    client_failures = _count(cache, attempt.client_key)
    try:
        wait_s = backoff_s(client_failures, CLIENT_FREE_FAILURES) - (now - client_last_at)
        if wait_s > 0:
            raise LoginRefused(
                f"too many failed log-ins from your address; try again in {wait_s:.0f} s",
                retry_after_s=wait_s,
                scope="client",
            )
        wait_s = backoff_s(account_failures, ACCOUNT_FREE_FAILURES) - (now - account_last_at)
        if client_failures and wait_s > 0:
            raise LoginRefused(
                f"too many failed log-ins to this account; try again in {wait_s:.0f} s",
                retry_after_s=wait_s,
                scope="account",
            )
    except LoginRefused:
        _uncount(cache, attempt.client_key)
        raise
    # The back-off runs from the last attempt let through; a refused one does not extend it.
    cache.set(f"{attempt.client_key}:at", now, timeout=FORGET_AFTER_S)


def login_failed(attempt: LoginAttempt) -> None:
    """The password was wrong: the client's failure stays counted, and the account's too."""
    now = clock()

    def record(cache: BaseCache) -> None:
        _count(cache, attempt.account_key)
        cache.set(f"{attempt.account_key}:at", now, timeout=FORGET_AFTER_S)

    _with_store(record)


def login_succeeded(attempt: LoginAttempt) -> None:
    """The password was right: take back the attempt counted as a failure."""
    _with_store(lambda cache: _uncount(cache, attempt.client_key))


class ResetMailRefused(Exception):
    """Too many reset mails to one address: carries the seconds until another may go."""

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def reset_mail_allow(email: str) -> None:
    """Count a password-reset mail to ``email`` (whether or not an account has it, so the
    answer tells nothing), or raise :class:`ResetMailRefused` past the limit."""
    now = clock()
    key = f"inferprep:reset-mail:{_digest(email.strip().lower())}"
    _with_store(lambda cache: _reset_mail_count(cache, key, now))


def _reset_mail_count(cache: BaseCache, key: str, now: float) -> None:
    recent = [at for at in cache.get(key, []) if now - at < RESET_MAIL_WINDOW_S]
    if len(recent) >= RESET_MAILS_PER_WINDOW:
        wait_s = RESET_MAIL_WINDOW_S - (now - min(recent))
        raise ResetMailRefused(
            f"{RESET_MAILS_PER_WINDOW} reset mails went to this address in the last hour; "
            f"check your inbox, or ask again in {wait_s / 60:.0f} minutes",
            retry_after_s=wait_s,
        )
    cache.set(key, [*recent, now], timeout=RESET_MAIL_WINDOW_S)
