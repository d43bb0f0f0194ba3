"""Safe defaults: debug off unless asked, a private signing key, error pages that show no
secrets and no URL map, and a strict Content-Security-Policy on every page."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys

import pytest
from django.test import RequestFactory, override_settings
from django.views import defaults
from django.views.debug import ExceptionReporter

from interview.security import CONTENT_SECURITY_POLICY
from tests.conftest import REPO

PRINT_SETTINGS = (
    "import django; django.setup(); from django.conf import settings; "
    "print(settings.DEBUG); print(settings.SECRET_KEY)"
)


def _start_django(var_dir, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}}
    environment |= {"INFERPREP_VAR_DIR": str(var_dir)} | env
    return subprocess.run(
        [sys.executable, "-c", PRINT_SETTINGS],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_debug_is_off_and_a_private_signing_key_is_made_once_and_kept(tmp_path):
    first = _start_django(tmp_path)
    assert first.returncode == 0, first.stderr
    debug, key = first.stdout.split()
    assert debug == "False"
    assert len(key) >= 50 and "insecure" not in key
    kept = tmp_path / "secret-key.txt"
    assert kept.read_text().strip() == key
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    again = _start_django(tmp_path)
    assert again.stdout.split()[1] == key
    elsewhere = _start_django(tmp_path / "other")
    assert elsewhere.stdout.split()[1] != key


def test_an_explicit_secret_key_wins_and_debug_turns_on_when_asked(tmp_path):
    result = _start_django(tmp_path, SECRET_KEY="k" * 50, DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "k" * 50]
    assert not (tmp_path / "secret-key.txt").exists()


def test_malformed_debug_value_is_a_clear_error(tmp_path):
    result = _start_django(tmp_path, DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


# Joined at run time, so the source lines the report quotes do not hold it whole.
SECRET = "-".join(["s3cret", "pa55"])


def _failing_with_a_password_in_a_local() -> None:
    conninfo = f"host=db user=app password={SECRET} dbname=app"  # noqa: F841  (shown in the report)
    raise RuntimeError("could not connect")


@override_settings(
    DEBUG=True,
    DATABASE_URL=f"postgresql://app:{SECRET}@db:5432/app",
    REDIS_URL=f"redis://:{SECRET}@cache:6379/0",
    CELERY_BROKER_URL=f"redis://:{SECRET}@cache:6379/0",
    CELERY_RESULT_BACKEND=f"redis://:{SECRET}@cache:6379/0",
    CHANNEL_LAYERS={"default": {"CONFIG": {"hosts": [f"redis://:{SECRET}@cache:6379/0"]}}},
)
def test_the_debug_page_masks_every_password_in_settings_environment_and_locals():
    request = RequestFactory().get("/boom", HTTP_X_DATABASE=f"postgres://u:{SECRET}@h/d")
    try:
        _failing_with_a_password_in_a_local()
    except RuntimeError:
        html = ExceptionReporter(request, *sys.exc_info()).get_traceback_html()
    # Guards against passing vacuously: the settings and the frame are in the report.
    assert "REDIS_URL" in html and "CHANNEL_LAYERS" in html and "conninfo" in html
    assert "redis://:********************@cache:6379/0" in html
    assert SECRET not in html


@pytest.mark.django_db
def test_the_404_page_is_the_sites_own_and_lists_no_url_patterns(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "Page not found" in html and 'class="site-header"' in html
    assert "URLconf" not in html and "api/" not in html


def test_the_500_page_is_the_sites_own():
    response = defaults.server_error(RequestFactory().get("/"))
    html = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong on our side" in html and "site.css" in html


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/problems/", "/api/docs", "/nope/"])
def test_every_page_carries_a_strict_content_security_policy(client, path):
    policy = client.get(path)["Content-Security-Policy"]
    assert policy == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "unsafe" not in policy and "*" not in policy


# What the policy refuses in markup: inline scripts, inline event handlers, style attributes
# and <style> elements. A JSON data island (json_script) is not run and is allowed.
INLINE = re.compile(
    r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>|\son[a-z]+=\"|\sstyle=\"|<style"
)


def test_no_template_has_inline_script_or_style():
    offenders = [
        f"{path.relative_to(REPO)}: {match.group(0)}"
        for path in sorted((REPO / "templates").rglob("*.html"))
        for match in INLINE.finditer(path.read_text())
    ]
    assert offenders == []


@pytest.mark.django_db
def test_with_debug_on_the_debug_pages_go_out_without_the_policy_to_stay_readable(client):
    with override_settings(DEBUG=True):
        debug_404 = client.get("/no-such-page/")
        page = client.get("/accounts/login/")
    assert "URLconf" in debug_404.content.decode()
    assert "Content-Security-Policy" not in debug_404
    assert page["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
