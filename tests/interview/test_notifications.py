"""A user's open page receives notifications through the configured channel layer."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from interview.asgi import application
from interview.notifications import user_notify

pytestmark = pytest.mark.django_db(transaction=True)


async def _connect_as(user) -> WebsocketCommunicator:
    client = Client()
    await sync_to_async(client.force_login)(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    communicator = WebsocketCommunicator(
        application,
        "/ws/notifications/",
        headers=[(b"cookie", cookie.encode()), (b"origin", b"http://127.0.0.1")],
    )
    return communicator


async def test_notification_reaches_only_the_users_open_page():
    alice = await sync_to_async(get_user_model().objects.create_user)(
        "alice", password="pw-alice-1"
    )
    bob = await sync_to_async(get_user_model().objects.create_user)("bob", password="pw-bob-1")
    alice_page = await _connect_as(alice)
    bob_page = await _connect_as(bob)
    assert (await alice_page.connect())[0]
    assert (await bob_page.connect())[0]

    await sync_to_async(user_notify)(alice.pk, {"kind": "verdict", "submission": 7})

    assert await alice_page.receive_json_from(timeout=5) == {"kind": "verdict", "submission": 7}
    assert await bob_page.receive_nothing(timeout=0.5)
    await alice_page.disconnect()
    await bob_page.disconnect()


async def test_anonymous_socket_is_refused():
    page = WebsocketCommunicator(
        application, "/ws/notifications/", headers=[(b"origin", b"http://127.0.0.1")]
    )
    connected, code = await page.connect()
    assert not connected
    assert code == 4401
