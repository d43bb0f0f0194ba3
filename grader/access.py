"""Who may submit how much: personal API tokens, per-user limits and idempotent creation.

Services in the HackSoft sense (they write); the API endpoints call them and nothing else.
"""

from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth import authenticate
from django.db import IntegrityError
from django.http import HttpRequest
from django.utils import timezone

from grader import login_guard
from grader.models import ApiToken, Problem, Submission
from grader.ratelimit import Bucket, LimiterUnavailable, bucket_take
from grader.services import submission_create

TOKEN_PREFIX = "ipk_"
# Sustained one submission every 10 s per user, bursts of 6: enough for a person iterating
# quickly, not for a script flooding the workers.
SUBMIT_BUCKET = Bucket(name="submit", capacity=6, refill_per_s=0.1)
# Submissions one user may have waiting or running at once.
MAX_PENDING_PER_USER = 5
# Submissions all users may have waiting at once before new ones are refused with 503: past
# this the queue would take longer to drain than a client waits.
MAX_QUEUED_TOTAL = 500
# How long a client should wait after a 503 for a full queue.
QUEUE_FULL_RETRY_S = 30
# How long a client should wait after a 503 for a limiter that did not answer (Redis down).
UNAVAILABLE_RETRY_S = 30


class LimitExceeded(Exception):
    """A request over a limit: carries the HTTP status, the field and rule, and when to retry."""

    def __init__(
        self, message: str, *, status: int, field: str, rule: str, retry_after_s: float | None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.rule = rule
        self.retry_after_s = retry_after_s


def _take(bucket: Bucket, owner: int | str) -> float:
    """``bucket_take``, with a limiter that does not answer refused as a 503 that says so."""
    try:
        return bucket_take(bucket, owner)
    except LimiterUnavailable:
        raise LimitExceeded(
            "the rate limiter (Redis) is not answering, so nothing can be accepted now; "
            "try again shortly",
            status=503,
            field="",
            rule="unavailable",
            retry_after_s=UNAVAILABLE_RETRY_S,
        ) from None


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def api_token_create(user, name: str) -> tuple[ApiToken, str]:
    """A new token for ``user``; returns the row and the raw token (shown once, never stored)."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, prefix=raw[: len(TOKEN_PREFIX) + 6], key_hash=_hash(raw)
    )
    return token, raw


def api_token_create_with_password(
    username: str, password: str, name: str, request: HttpRequest | None = None
) -> tuple[ApiToken, str]:
    """Exchange a username and password for a new token (the command-line client's login),
    under the same brute-force limits as the site's log-in (:mod:`grader.login_guard`)."""
    try:
        attempt = login_guard.login_begin(request, username)
    except login_guard.LoginRefused as refused:
        raise LimitExceeded(
            str(refused),
            status=429,
            field="username" if refused.scope == "account" else "",
            rule="rate_limit",
            retry_after_s=refused.retry_after_s,
        ) from None
    user = authenticate(request, username=username, password=password)
    if user is None or not user.is_active:
        login_guard.login_failed(attempt)
        raise LimitExceeded(
            "wrong username or password",
            status=401,
            field="password",
            rule="credentials",
            retry_after_s=None,
        )
    login_guard.login_succeeded(attempt)
    return api_token_create(user, name)


def api_token_revoke(user, token_id: int) -> bool:
    """Revoke one of the user's tokens; returns whether one was revoked."""
    return bool(
        ApiToken.objects.filter(pk=token_id, user=user, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
    )


class TokenRefused(Exception):
    """A bearer token that names no active user: unknown, revoked, or its user disabled."""


def api_token_authenticate(raw: str):
    """The active user behind a raw token; records when the token was last used.

    Raises :class:`TokenRefused` saying why not, so a client with a stale token is told so
    rather than falling through to the session's CSRF check."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 100:
        raise TokenRefused(f"unknown token: API tokens start with {TOKEN_PREFIX!r}")
    token = ApiToken.objects.select_related("user").filter(key_hash=_hash(raw)).first()
    if token is None:
        raise TokenRefused("unknown token")
    if token.revoked_at is not None:
        raise TokenRefused(f"token revoked at {token.revoked_at:%Y-%m-%d %H:%M} UTC")
    if not token.user.is_active:
        raise TokenRefused("token's account is disabled")
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token.user


def api_tokens_revoke_all(user) -> int:
    """Revoke every active token of ``user`` (their password changed); returns how many."""
    return ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


def submission_create_limited(
    *,
    user,
    problem: Problem,
    code: str,
    idempotency_key: str = "",
    purpose: str = Submission.Purpose.PRACTICE,
    queue: str = "",
    run_inputs: list | None = None,
) -> tuple[Submission, bool]:
    """Create a submission within the user's limits: the one service every path a user
    submits through calls (the API, the problem page, a mock interview's coding round).
    ``queue`` is the card class a GPU problem's submitter chose (``submission_queue_choose``).
    A Run (``purpose`` RUN, with the ``run_inputs`` the candidate wrote) counts against the
    same limits: it takes a sandbox on a worker like any submission.
    A repeated Idempotency-Key returns the first submission made with it. Returns
    ``(submission, created)``; LimitExceeded names the limit, SubmissionRejected the code."""
    if idempotency_key:
        existing = Submission.objects.filter(user=user, idempotency_key=idempotency_key).first()
        if existing is not None:
            return _same_request(existing, problem, code), False
    pending = Submission.objects.filter(
        user=user, state__in=[Submission.State.QUEUED, Submission.State.RUNNING]
    ).count()
    if pending >= MAX_PENDING_PER_USER:
        raise LimitExceeded(
            f"you have {pending} submissions waiting or running (at most {MAX_PENDING_PER_USER}); wait for one to finish",
            status=429,
            field="code",
            rule="max_pending",
            retry_after_s=5,
        )
    if Submission.objects.filter(state=Submission.State.QUEUED).count() >= MAX_QUEUED_TOTAL:
        raise LimitExceeded(
            "the grading queue is full; try again shortly",
            status=503,
            field="",
            rule="queue_full",
            retry_after_s=QUEUE_FULL_RETRY_S,
        )
    wait_s = _take(SUBMIT_BUCKET, user.pk)
    if wait_s:
        raise LimitExceeded(
            f"too many submissions; the next is allowed in {wait_s:.0f} s",
            status=429,
            field="code",
            rule="rate_limit",
            retry_after_s=wait_s,
        )
    try:
        return submission_create(
            user=user,
            problem=problem,
            code=code,
            purpose=purpose,
            idempotency_key=idempotency_key,
            queue=queue,
            run_inputs=run_inputs,
        ), True
    except IntegrityError:
        # The same key raced in from a concurrent retry: the first one won; return it.
        existing = Submission.objects.get(user=user, idempotency_key=idempotency_key)
        return _same_request(existing, problem, code), False


def _same_request(existing: Submission, problem: Problem, code: str) -> Submission:
    if existing.problem_id != problem.pk or existing.code != code:
        raise LimitExceeded(
            "this Idempotency-Key was already used for a different submission; use a new key",
            status=409,
            field="Idempotency-Key",
            rule="reused",
            retry_after_s=None,
        )
    return existing
