"""Input no handler should see: answered with a 4xx that names the field and the rule.

One middleware, before any view, refuses what no field of ours accepts and what the database
would fail on: a NUL character in the path, a query or form parameter, a JSON body or a header
(PostgreSQL stores no NUL in text), and a body over Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE``
(413). Views that read a number from a form use :func:`whole_number`, whose refusal the same
middleware answers. The API's refusals keep its JSON error format; pages get a short page.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

# The largest id a bigint column holds; a larger one is no row of ours.
MAX_ID = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")


class InputRefused(Exception):
    """A request value that breaks a rule: answered 400 (pages) or 422 (API)."""

    def __init__(self, field: str, rule: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.rule = rule
        self.message = message
        self.status = status


def whole_number(raw: Any, field: str, *, low: int = 0, high: int = MAX_ID) -> int:
    """``raw`` (a form or header value) as a whole number in ``[low, high]``, written in ASCII
    digits; else :class:`InputRefused` naming ``field``."""
    text = str(raw if raw is not None else "").strip()
    if not _DIGITS.fullmatch(text):
        raise InputRefused(field, "whole_number", f"must be a whole number from {low} to {high}")
    value = int(text)
    if not low <= value <= high:
        raise InputRefused(field, "range", f"must be a whole number from {low} to {high}")
    return value


def _nul_in_json(value: Any, path: str) -> Iterator[str]:
    if isinstance(value, str):
        if "\x00" in value:
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                yield child
            yield from _nul_in_json(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_in_json(item, f"{path}.{index}" if path else str(index))


def _nul_field(request: HttpRequest) -> str | None:
    """The first place of the request that holds a NUL character, or None."""
    if "\x00" in request.path:
        return "path"
    for name, value in request.headers.items():
        if "\x00" in value:
            return name
    for key, values in request.GET.lists():
        if "\x00" in key or any("\x00" in value for value in values):
            return key
    content_type = request.content_type or ""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return None
    if content_type == "application/json":
        body = request.body
        if b"\x00" in body:
            return "body"
        if b"\\u0000" in body:
            try:
                return next(_nul_in_json(json.loads(body), ""), None)
            except ValueError:
                return None  # not JSON: the API says so itself
    elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        for key, values in request.POST.lists():
            if "\x00" in key or any("\x00" in value for value in values):
                return key
    return None


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def refusal_response(request: HttpRequest, refused: InputRefused) -> HttpResponse:
    """The answer to a refused request: the API's JSON error format, or a short page."""
    if _is_api(request):
        status = refused.status or 422
        return JsonResponse(
            {
                "detail": f"invalid request: {refused}",
                "errors": [
                    {"field": refused.field, "rule": refused.rule, "message": refused.message}
                ],
            },
            status=status,
        )
    status = refused.status or 400
    html = render_to_string("bad_request.html", {"refused": refused, "status": status}, request)
    return HttpResponse(html, status=status)


def body_too_big() -> InputRefused:
    """The refusal of a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``."""
    limit_mb = settings.DATA_UPLOAD_MAX_MEMORY_SIZE / 1e6
    return InputRefused(
        "body", "max_size", f"the request body is over {limit_mb:.1f} MB", status=413
    )


class InputGuardMiddleware:
    """Refuses NUL characters and oversized bodies before any view, and answers a view's
    :class:`InputRefused` or Django's ``RequestDataTooBig`` with the field and the rule."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            return refusal_response(request, body_too_big())
        try:
            field = _nul_field(request)
        except RequestDataTooBig:
            return refusal_response(request, body_too_big())
        if field is not None:
            return refusal_response(
                request,
                InputRefused(field, "no_nul", "must not contain a NUL character (\\x00)"),
            )
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, InputRefused):
            return refusal_response(request, exception)
        if isinstance(exception, RequestDataTooBig):
            return refusal_response(request, body_too_big())
        return None
