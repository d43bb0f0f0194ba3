"""Live progress of one submission over a WebSocket, replayable after a reconnect."""

from __future__ import annotations

import asyncio
import contextlib
import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from grader.selectors import submission_events_after, submission_visible_to
from grader.services import submission_group, submissions_reap_lost

# With the in-memory channel layer the worker's events cannot reach this process, so the
# consumer polls the events table; with Redis the poll only backs up the pushed events.
POLL_INTERVAL_S = (
    0.25 if settings.CHANNEL_LAYERS["default"]["BACKEND"].endswith("InMemoryChannelLayer") else 2.0
)
# A watched page also re-queues lost jobs this often, so a submission never stays "running"
# when no worker is alive to notice that its job died.
REAP_INTERVAL_S = 10.0


# Close codes in the 4000s an application may send (Daphne sends no 1003 or 1007 of
# RFC 6455), read as HTTP statuses: a frame not JSON (400), not text (415), no such path (404).
CLOSE_NOT_JSON = 4400
CLOSE_NOT_TEXT = 4415
CLOSE_UNKNOWN_PATH = 4404


class JsonFramesConsumer(AsyncJsonWebsocketConsumer):
    """A JSON consumer that answers a frame it cannot read with a message and a close code
    saying why (4415 binary, 4400 not JSON), instead of a server error (1011)."""

    async def receive(self, text_data=None, bytes_data=None, **kwargs) -> None:
        if text_data is None:
            await self.refuse(CLOSE_NOT_TEXT, "json", "frames must be JSON text, not binary")
            return
        try:
            content = json.loads(text_data)
        except ValueError:
            await self.refuse(CLOSE_NOT_JSON, "json", "frames must be JSON")
            return
        await self.receive_json(content, **kwargs)

    async def refuse(self, code: int, rule: str, message: str) -> None:
        """Tell the client what was wrong, then close with ``code``."""
        await self.send_json({"error": message, "field": "frame", "rule": rule})
        await self.close(code=code, reason=message)


class UnknownPathConsumer(JsonFramesConsumer):
    """Every WebSocket path no route serves: accepted only to say so and close (4404), rather
    than the router's error becoming an HTTP 500 of the handshake."""

    async def connect(self) -> None:
        await self.accept()
        await self.refuse(
            CLOSE_UNKNOWN_PATH, "route", f"no WebSocket endpoint at {self.scope['path'][:200]}"
        )


class SubmissionProgressConsumer(JsonFramesConsumer):
    """Streams ``ws/submissions/<id>/?after=<seq>``: every event after ``seq``, then live ones."""

    async def connect(self) -> None:
        self.submission_id = int(self.scope["url_route"]["kwargs"]["submission_id"])
        if not await database_sync_to_async(submission_visible_to)(
            self.submission_id, self.scope.get("user")
        ):
            await self.close(code=4403)
            return
        query = dict(
            part.split("=", 1)
            for part in self.scope["query_string"].decode().split("&")
            if "=" in part
        )
        try:
            self.last_seq = max(int(query.get("after", 0)), 0)
        except ValueError:
            self.last_seq = 0
        self.lock = asyncio.Lock()
        self.group = submission_group(self.submission_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self._catch_up()
        self.poller = asyncio.create_task(self._poll())

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "poller"):
            self.poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.poller
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def _catch_up(self) -> None:
        async with self.lock:
            events = await database_sync_to_async(submission_events_after)(
                self.submission_id, self.last_seq
            )
            for event in events:
                await self.send_json(event.as_message())
                self.last_seq = event.seq

    async def _poll(self) -> None:
        loop = asyncio.get_running_loop()
        next_reap = loop.time() + REAP_INTERVAL_S
        while True:
            await asyncio.sleep(POLL_INTERVAL_S)
            if loop.time() >= next_reap:
                next_reap = loop.time() + REAP_INTERVAL_S
                await database_sync_to_async(submissions_reap_lost)()
            await self._catch_up()

    async def submission_event(self, message: dict) -> None:
        """A pushed event: send it if it is the next one, else replay from the table."""
        event = message["event"]
        async with self.lock:
            if event["seq"] == self.last_seq + 1:
                await self.send_json(event)
                self.last_seq = event["seq"]
                return
        if event["seq"] > self.last_seq:
            await self._catch_up()
