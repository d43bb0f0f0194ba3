"""Pushes to open pages through the configured channel layer: a user's notifications, and a
loop design round's follow-ups as the server releases them."""

from __future__ import annotations

import random

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import Client

from interview import services
from interview.asgi import application
from interview.design import load_design_prompts, render
from interview.models import LoopRound, RoundKind
from interview.notifications import user_notify
from interview.question_bank import questions_load
from tests.interview.conftest import clock_back

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


# ---------------------------------------------------------------- a loop design round's follow-ups


def _design_round_opened(user):
    """The design round of the user's 30-minute loop (10 minutes long), opened now."""
    questions_load()
    loop = services.loop_start(user=user, level="senior", length_min=30, rng=random.Random(3))
    design = loop.rounds.get(kind=RoundKind.DESIGN)
    return services.round_open(user=user, round_id=design.pk)


def _follow_ups_socket(cookie: str, round_id: int, after: int = 0) -> WebsocketCommunicator:
    return WebsocketCommunicator(
        application,
        f"/ws/loops/rounds/{round_id}/follow-ups/?after={after}",
        headers=[(b"cookie", cookie.encode()), (b"origin", b"http://127.0.0.1")],
    )


async def _cookie(user) -> str:
    client = Client()
    await sync_to_async(client.force_login)(user)
    return f"sessionid={client.cookies['sessionid'].value}"


async def test_design_follow_ups_are_pushed_as_they_are_released():
    alice = await sync_to_async(get_user_model().objects.create_user)("alice", password="pw-a-1")
    design = await sync_to_async(_design_round_opened)(alice)
    prompt = next(p for p in load_design_prompts() if p.id == design.design_id)
    first, *rest = prompt.follow_ups
    # Just past the first follow-up's time, scaled from the prompt's length to the round's.
    scaled_min = first.after_minutes * 10 / prompt.minutes
    design = await sync_to_async(clock_back)(design, scaled_min + 1 / 60)

    page = _follow_ups_socket(await _cookie(alice), design.pk)
    assert (await page.connect())[0]
    pushed = await page.receive_json_from(timeout=10)
    assert pushed == {
        "kind": "follow-up", "index": 0, "id": first.id,
        "prompt": render(first.prompt, design.design["params"]), "pending": len(rest),
    }  # fmt: skip
    assert await page.receive_nothing(timeout=0.5)  # the next one is minutes away

    # Submitting the design releases the rest at once, pushed through the channel layer.
    await sync_to_async(services.round_submit)(
        user=alice, round_id=design.pk, data={"section-observability": "We alert on p99 TTFT."}
    )
    for index, follow_up in enumerate(rest, start=1):
        pushed = await page.receive_json_from(timeout=10)
        assert (pushed["index"], pushed["id"]) == (index, follow_up.id)
    assert pushed["pending"] == 0
    assert (await page.receive_output(timeout=5))["type"] == "websocket.close"

    # A page that reconnects after the first gets only what it lacks, then the socket closes.
    again = _follow_ups_socket(await _cookie(alice), design.pk, after=1)
    assert (await again.connect())[0]
    ids = [(await again.receive_json_from(timeout=10))["id"] for _ in rest]
    assert ids == [f.id for f in rest]
    assert (await again.receive_output(timeout=5))["type"] == "websocket.close"
    # The consumer's queries ran on asgiref's shared thread; leave no session open in it.
    await sync_to_async(connections.close_all)()


async def test_design_follow_up_socket_refuses_others_and_other_rounds():
    alice = await sync_to_async(get_user_model().objects.create_user)("alice", password="pw-a-1")
    bob = await sync_to_async(get_user_model().objects.create_user)("bob", password="pw-b-1")
    design = await sync_to_async(_design_round_opened)(alice)
    concepts = await sync_to_async(LoopRound.objects.get)(
        loop_id=design.loop_id, kind=RoundKind.CONCEPTS
    )
    for cookie, round_id in (
        (await _cookie(bob), design.pk),
        (await _cookie(alice), concepts.pk),
        (await _cookie(alice), 999_999),
    ):
        connected, code = await _follow_ups_socket(cookie, round_id).connect()
        assert (connected, code) == (False, 4403)
    anonymous = WebsocketCommunicator(
        application,
        f"/ws/loops/rounds/{design.pk}/follow-ups/",
        headers=[(b"origin", b"http://127.0.0.1")],
    )
    assert await anonymous.connect() == (False, 4401)
    await sync_to_async(connections.close_all)()
