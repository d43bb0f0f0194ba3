"""Sending notifications to a user's open pages through the channel layer."""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from interview.consumers import round_group, user_group

logger = logging.getLogger(__name__)


def user_notify(user_id: int, payload: dict) -> None:
    """Push a JSON payload to every page the user has open; a no-op when none is."""
    async_to_sync(get_channel_layer().group_send)(
        user_group(user_id), {"type": "notify", "payload": payload}
    )


def round_notify(round_id: int) -> None:
    """Tell a loop round's open pages that its state changed (an answer releases follow-ups).

    Best effort: the row is the truth and the round's consumer re-reads it on its own, so a
    channel layer that cannot be reached costs a delay, never the answer that was stored.
    """
    try:
        async_to_sync(get_channel_layer().group_send)(
            round_group(round_id), {"type": "round.changed"}
        )
    except Exception:
        logger.warning("could not tell round %s's pages that it changed", round_id, exc_info=True)
