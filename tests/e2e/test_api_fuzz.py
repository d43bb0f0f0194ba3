"""Schemathesis against the running stack: every operation of /api/openapi.json, generated
inputs valid and invalid, no 5xx, and every response as the document says; then the inputs it
does not generate (NUL characters, oversized bodies and ids, WebSocket paths and frames)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

from django.contrib.auth import get_user_model

from grader.access import api_token_create
from grader.bank import problems_load

# Examples per operation, half the 30 it once ran, to keep CI short: deterministic generation
# starts from each schema's boundary values and required fields, where 5xx faults live.
EXAMPLES_PER_OPERATION = 15
FUZZ_TIMEOUT_S = 480


def test_every_operation_survives_schemathesis(private_stack, tmp_path):
    problems_load()
    user = get_user_model().objects.create_user("fuzzer", password="pw-fuzzer-1")
    token = api_token_create(user, "schemathesis")[1]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{private_stack.base_url}/api/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            "all",
            "--max-examples",
            str(EXAMPLES_PER_OPERATION),
            "--generation-deterministic",
            "--request-timeout",
            "30",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=FUZZ_TIMEOUT_S,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def _http(base_url: str, path: str, token: str, body: bytes | None = None, **headers: str):
    """One request to the live server: (status, parsed JSON body or text)."""
    request = urllib.request.Request(base_url + path, data=body, method="POST" if body else "GET")
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    for name, value in headers.items():
        request.add_header(name.replace("_", "-"), value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, payload = error.code, error.read()
    try:
        return status, json.loads(payload)
    except ValueError:
        return status, payload.decode(errors="replace")


# Opens a WebSocket from the page, optionally sends one frame, and reports how it closed.
SOCKET_CLOSE = """([url, frame]) => new Promise((resolve) => {
  const socket = new WebSocket(url);
  const messages = [];
  socket.onopen = () => { if (frame !== null) socket.send(frame); };
  socket.onmessage = (event) => messages.push(JSON.parse(event.data));
  socket.onclose = (event) => resolve({code: event.code, reason: event.reason, messages});
})"""


def test_the_inputs_schemathesis_does_not_send_are_refused_with_a_4xx(live_stack, page):
    """NUL characters, numbers past any column, oversized bodies, unknown WebSocket paths and
    frames that are not JSON, sent to the real server: a 4xx (or a close code) that names the
    field and the rule, never a 5xx or a server error."""
    problems_load()
    user = get_user_model().objects.create_user("fuzzer", password="pw-fuzzer-1")
    token = api_token_create(user, "edge cases")[1]
    base = live_stack.base_url

    status, body = _http(base, "/api/questions?topic=%00", token)
    assert (status, body["errors"][0]["field"], body["errors"][0]["rule"]) == (
        422,
        "topic",
        "no_nul",
    )
    status, body = _http(
        base,
        "/api/submissions",
        token,
        json.dumps({"problem": "cpu-softmax", "code": "\x00"}).encode(),
    )
    assert (status, body["errors"][0]["field"]) == (422, "code")
    status, body = _http(base, "/practice/?topic=%00", token)
    assert status == 400 and "topic: must not contain a NUL character" in body
    status, body = _http(base, "/api/problems", token, b"{" + b" " * 3_000_000 + b"}")
    assert (status, body["errors"][0]["rule"]) == (413, "max_size")
    status, submission = _http(
        base,
        "/api/submissions",
        token,
        json.dumps({"problem": "cpu-softmax", "code": "x = 1"}).encode(),
    )
    assert status == 201
    for last_event_id in ("9" * 5000, "\u0663"):
        status, body = _http(
            base,
            f"/api/submissions/{submission['id']}/events",
            token,
            Last_Event_ID=last_event_id.encode("utf-8").decode("latin-1"),
        )
        assert (status, body["errors"][0]["field"]) == (422, "Last-Event-ID")

    ws_base = base.replace("http://", "ws://")
    page.goto(base + "/accounts/login/")
    # Daphne does not pass a close reason on; the message before the close says it.
    unknown = page.evaluate(SOCKET_CLOSE, [ws_base + "/ws/nowhere/", None])
    assert unknown["code"] == 4404
    assert unknown["messages"] == [
        {"error": "no WebSocket endpoint at /ws/nowhere/", "field": "frame", "rule": "route"}
    ]
    page.get_by_label("Username").fill("fuzzer")
    page.get_by_label("Password").fill("pw-fuzzer-1")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(base + "/")
    not_json = page.evaluate(SOCKET_CLOSE, [ws_base + "/ws/notifications/", "not json {"])
    assert not_json["code"] == 4400
    assert not_json["messages"] == [
        {"error": "frames must be JSON", "field": "frame", "rule": "json"}
    ]
