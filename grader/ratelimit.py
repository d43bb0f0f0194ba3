"""Per-user limits that every web process agrees on: a token bucket kept in Redis.

Without Redis (the embedded single-process default) the bucket lives in this process, which is
exact there because there is only one web process.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings

# Refill and take in one atomic step, so two web processes never both spend the last token.
# Returns the seconds to wait before a token is available (0 when one was taken).
_TAKE_SCRIPT = """
local capacity = tonumber(ARGV[1])
local refill_per_s = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + (now - at) * refill_per_s)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / refill_per_s
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / refill_per_s) + 60)
return tostring(wait)
"""


# A limiter that does not answer within this is reported unavailable, not waited for.
REDIS_TIMEOUT_S = 1.0


class LimiterUnavailable(Exception):
    """The shared limiter (Redis) did not answer: nothing may be decided on this request."""


@dataclass(frozen=True)
class Bucket:
    """A token bucket: ``capacity`` tokens at most, refilled at ``refill_per_s``."""

    name: str
    capacity: int
    refill_per_s: float


class _LocalBuckets:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, tuple[float, float]] = {}

    def take(self, key: str, bucket: Bucket) -> float:
        now = time.monotonic()
        with self._lock:
            tokens, at = self._state.get(key, (float(bucket.capacity), now))
            tokens = min(bucket.capacity, tokens + (now - at) * bucket.refill_per_s)
            if tokens >= 1:
                self._state[key] = (tokens - 1, now)
                return 0.0
            self._state[key] = (tokens, now)
            return (1 - tokens) / bucket.refill_per_s

    def reset(self) -> None:
        with self._lock:
            self._state.clear()


class _RedisBuckets:
    def __init__(self, url: str) -> None:
        import redis

        self._errors = redis.RedisError
        self._client = redis.Redis.from_url(
            url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S
        )
        self._take = self._client.register_script(_TAKE_SCRIPT)

    def take(self, key: str, bucket: Bucket) -> float:
        try:
            return float(
                self._take(keys=[key], args=[bucket.capacity, bucket.refill_per_s, time.time()])
            )
        except self._errors as error:
            raise LimiterUnavailable(f"Redis did not answer: {error}") from error

    def reset(self) -> None:
        for key in self._client.scan_iter("inferprep:bucket:*"):
            self._client.delete(key)


@lru_cache(maxsize=1)
def _buckets() -> _LocalBuckets | _RedisBuckets:
    return _RedisBuckets(settings.REDIS_URL) if settings.REDIS_URL else _LocalBuckets()


def bucket_take(bucket: Bucket, owner: int | str) -> float:
    """Take one token from the owner's bucket (a user id, or a hashed user name before log-in):
    0.0 when allowed, else the seconds until a token will be there. LimiterUnavailable when
    Redis does not answer."""
    return _buckets().take(f"inferprep:bucket:{bucket.name}:{owner}", bucket)


def buckets_reset() -> None:
    """Forget every bucket (tests and operators)."""
    _buckets().reset()
