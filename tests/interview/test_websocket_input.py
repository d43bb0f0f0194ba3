"""WebSockets given what they do not serve: an unknown path and a frame that is not JSON are
answered with a message and a close code that says why, never a server error."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from grader.consumers import CLOSE_NOT_JSON, CLOSE_NOT_TEXT, CLOSE_UNKNOWN_PATH
from interview.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = (b"origin", b"http://127.0.0.1")


async def _signed_in_socket(path: str) -> WebsocketCommunicator:
    user = await sync_to_async(get_user_model().objects.create_user)("ws", password="pw-ws-12")
    client = Client()
    await sync_to_async(client.force_login)(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    return WebsocketCommunicator(application, path, headers=[(b"cookie", cookie), ORIGIN])


@pytest.mark.parametrize("path", ["/ws/no-such-thing/", "/ws/submissions/abc/", "/"])
async def test_an_unknown_path_is_closed_with_4404_and_a_message(path):
    socket = WebsocketCommunicator(application, path, headers=[ORIGIN])
    connected, _ = await socket.connect()
    assert connected
    assert await socket.receive_json_from(timeout=5) == {
        "error": f"no WebSocket endpoint at {path}",
        "field": "frame",
        "rule": "route",
    }
    closed = await socket.receive_output(timeout=5)
    assert closed == {
        "type": "websocket.close",
        "code": CLOSE_UNKNOWN_PATH,
        "reason": f"no WebSocket endpoint at {path}",
    }


@pytest.mark.parametrize(
    ("frame", "code", "message"),
    [
        ({"text_data": "not json {"}, CLOSE_NOT_JSON, "frames must be JSON"),
        ({"bytes_data": b"\x00\x01"}, CLOSE_NOT_TEXT, "frames must be JSON text, not binary"),
    ],
    ids=["not-json", "binary"],
)
async def test_a_frame_that_is_not_json_text_is_refused_with_a_clear_close(frame, code, message):
    socket = await _signed_in_socket("/ws/notifications/")
    assert (await socket.connect())[0]
    await socket.send_to(**frame)
    assert await socket.receive_json_from(timeout=5) == {
        "error": message,
        "field": "frame",
        "rule": "json",
    }
    assert await socket.receive_output(timeout=5) == {
        "type": "websocket.close",
        "code": code,
        "reason": message,
    }
