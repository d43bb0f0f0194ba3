"""The private channel between the trusted grader and the in-sandbox harness.

A Unix socketpair carries small length-prefixed JSON messages; a shared memory file (memfd)
carries the arrays. Neither is stdout: what candidate code prints is captured separately and
never parsed. The candidate shares a process with the in-sandbox harness and can find both,
so the trusted side believes nothing it receives: it generates the inputs, keeps the expected
outputs, and checks every output itself (see ``grader/harnesses/base.py``).
"""

from __future__ import annotations

import json
import socket
import struct
import time
from typing import Any

# A control message is a few hundred bytes; anything larger is a broken or hostile peer.
MAX_MESSAGE_BYTES = 1024 * 1024
_HEADER = struct.Struct("!I")


class ChannelError(Exception):
    """The peer closed the channel, sent garbage, or did not answer in time."""


class ChannelClosed(ChannelError):
    pass


class ChannelTimeout(ChannelError):
    pass


def message_send(sock: socket.socket, message: dict[str, Any]) -> None:
    body = json.dumps(message, separators=(",", ":")).encode()
    sock.sendall(_HEADER.pack(len(body)) + body)


def _receive_exactly(sock: socket.socket, size: int, deadline: float | None) -> bytes:
    chunks = []
    remaining = size
    while remaining:
        if deadline is not None:
            left_s = deadline - time.monotonic()
            if left_s <= 0:
                raise ChannelTimeout("no answer in time")
            sock.settimeout(left_s)
        try:
            chunk = sock.recv(min(remaining, 65536))
        except TimeoutError as error:
            raise ChannelTimeout("no answer in time") from error
        if not chunk:
            raise ChannelClosed("the other side closed the channel")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def message_receive(sock: socket.socket, deadline: float | None = None) -> dict[str, Any]:
    """Read one message; ``deadline`` is a ``time.monotonic()`` instant, None waits forever."""
    (size,) = _HEADER.unpack(_receive_exactly(sock, _HEADER.size, deadline))
    if size > MAX_MESSAGE_BYTES:
        raise ChannelError(f"a message of {size} bytes exceeds the {MAX_MESSAGE_BYTES} limit")
    try:
        message = json.loads(_receive_exactly(sock, size, deadline))
    except ValueError as error:
        raise ChannelError("the message is not JSON") from error
    if not isinstance(message, dict):
        raise ChannelError("the message is not an object")
    return message
