"""What every response carries and what an error report may show: the Content-Security-Policy
and the masking of credentials in Django's debug pages and error mails."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.debug import SafeExceptionReporterFilter

# Every page loads its scripts, styles, fonts and images from this site and nothing else:
# no inline script or style attribute, no eval, no frames, forms post only here.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        # KaTeX's fonts and Swagger UI's icons come as data: URLs.
        "img-src 'self' data:",
        "font-src 'self' data:",
        # The live pages' WebSockets and event streams go to this same host.
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    """Adds the site's Content-Security-Policy to every response.

    Django's own debug pages (``DEBUG`` on, an error status) use inline styles and scripts; they
    go out without the policy so a developer can read them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if settings.DEBUG and response.status_code >= 400:
            return response
        response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response


# A password in a URL (scheme://user:password@host) or a libpq conninfo (password=...).
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+(?P<tail>@)", re.I)
_CONNINFO_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<value>'[^']*'|\S+)", re.I)


def credentials_masked(text: str, mask: str) -> str:
    """``text`` with the password of every URL or conninfo in it replaced by ``mask``."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{mask}{m['tail']}", text)
    return _CONNINFO_PASSWORD.sub(lambda m: f"{m['head']}{mask}", text)


class CredentialsMaskingFilter(SafeExceptionReporterFilter):
    """Django's filter, plus: a password inside any URL-valued setting, environment variable
    or local variable is masked (``DATABASE_URL``, ``REDIS_URL``, ``CELERY_BROKER_URL``,
    ``CELERY_RESULT_BACKEND``, ``CHANNEL_LAYERS`` hosts, a driver's connection string), which
    the stock filter shows because their names do not look secret."""

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        return self._masked(super().cleanse_setting(key, value))

    def get_traceback_frame_variables(self, request, tb_frame) -> list[tuple[str, Any]]:
        variables = super().get_traceback_frame_variables(request, tb_frame)
        return [(name, self._masked_object(value)) for name, value in variables]

    def _masked(self, value: Any) -> Any:
        if isinstance(value, str):
            return credentials_masked(value, self.cleansed_substitute)
        if isinstance(value, dict):
            return {k: self._masked(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._masked(v) for v in value)
        return value

    def _masked_object(self, value: Any) -> Any:
        """A local variable of any type: its text form, masked, where that text held a
        password; else the value itself, for the report to print as usual."""
        masked = self._masked(value)
        if masked is not value:
            return masked
        try:
            text = repr(value)
        except Exception:  # a broken __repr__ is the report's to show, as Django does
            return value
        cleaned = credentials_masked(text, self.cleansed_substitute)
        return value if cleaned == text else cleaned
