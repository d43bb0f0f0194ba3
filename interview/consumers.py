"""WebSocket consumers of the interview app."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.utils import timezone

from grader.consumers import JsonFramesConsumer
from interview import selectors
from interview.design.practice import after_count

# The consumer re-reads its round at least this often: a change pushed while the page was
# reconnecting, or made where the in-memory channel layer cannot reach, still arrives.
RECHECK_S = 15.0


def user_group(user_id: int) -> str:
    """The channel-layer group that reaches every open page of one user."""
    return f"user.{user_id}"


def round_group(round_id: int) -> str:
    """The channel-layer group that reaches every open page of one loop round."""
    return f"loop-round.{round_id}"


class NotificationConsumer(JsonFramesConsumer):
    """Pushes a signed-in user's notifications (a verdict, a due review) to each open page."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.group = user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def notify(self, event: dict) -> None:
        await self.send_json(event["payload"])


class DesignFollowUpConsumer(JsonFramesConsumer):
    """Pushes a loop design round's follow-ups as the server releases them.

    `ws/loops/rounds/<id>/follow-ups/?after=<n>` sends every released follow-up from index n
    on, then each later one when it comes due or when the design's answer releases the rest:
    `{"kind": "follow-up", "index", "id", "prompt", "pending"}`, `pending` being how many are
    still to come. Once none is, the server closes the socket.
    """

    async def connect(self) -> None:
        self.user = self.scope.get("user")
        if self.user is None or not self.user.is_authenticated:
            await self.close(code=4401)
            return
        self.round_id = int(self.scope["url_route"]["kwargs"]["round_id"])
        query = parse_qs(self.scope["query_string"].decode())
        self.sent = after_count(query.get("after", [""])[-1])
        if await self._state() is None:
            await self.close(code=4403)
            return
        self.changed = asyncio.Event()
        self.group = round_group(self.round_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        self.pusher = asyncio.create_task(self._push())

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "pusher"):
            self.pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.pusher
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def round_changed(self, event: dict) -> None:
        self.changed.set()

    async def _state(self) -> dict | None:
        return await database_sync_to_async(selectors.design_round_follow_ups)(
            self.user, self.round_id, timezone.now(), self.sent
        )

    async def _push(self) -> None:
        while True:
            self.changed.clear()
            state = await self._state()
            if state is None:
                await self.close(code=4403)
                return
            for index, item in enumerate(state["follow_ups"], start=self.sent):
                await self.send_json(
                    {"kind": "follow-up", "index": index, "id": item.follow_up.id,
                     "prompt": item.prompt, "pending": state["pending"]}
                )  # fmt: skip
            self.sent = max(self.sent, state["released"])
            if not state["pending"]:
                await self.close()
                return
            wait_s = (state["next_follow_up_at"] - timezone.now()).total_seconds()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), timeout=min(max(wait_s, 0), RECHECK_S))
