"""Redis or the broker down: every submit answers a clear 503 at once and stores nothing;
/healthz answers within its probes' bound; its details are for operators only. (Log-ins go on
with Redis down, their limits counted in the process: tests/grader/test_api_login.py.)"""

from __future__ import annotations

import json
import random
import socket
from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from grader import ratelimit
from grader.access import api_token_create
from grader.bank import problems_load
from grader.models import Submission, Worker
from interview import health
from interview import services as interview_services
from interview.celery import app as celery_app
from interview.models import RoundKind
from tests.grader.conftest import solution

PASSWORD = "pw-candidate-1"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def redis_down(settings) -> Iterator[None]:
    """The limiter's Redis refuses connections (stopped, or its host down)."""
    settings.REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    ratelimit._buckets.cache_clear()
    yield
    ratelimit._buckets.cache_clear()


@pytest.fixture
def silent_broker(monkeypatch) -> Iterator[None]:
    """A broker host that takes connections and never answers (a hung Redis)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        url = f"redis://127.0.0.1:{server.getsockname()[1]}/0"
        monkeypatch.setitem(celery_app.conf, "broker_write_url", url)
        yield


@pytest.fixture
def candidate(transactional_db):
    problems_load()
    return get_user_model().objects.create_user("candidate", password=PASSWORD)


def _refused_with_503(reply) -> dict:
    assert reply.status_code == 503, reply.content
    assert int(reply["Retry-After"]) > 0
    body = reply.json()
    assert "rate limiter (Redis) is not answering" in body["detail"]
    assert body["errors"][0]["rule"] == "unavailable"
    return body


def test_api_submit_with_redis_down_is_a_503_and_stores_nothing(candidate, redis_down):
    token = api_token_create(candidate, "t")[1]
    reply = Client(headers={"Authorization": f"Bearer {token}"}).post(
        "/api/submissions",
        data=json.dumps({"problem": "cpu-softmax", "code": solution("reference.py")}),
        content_type="application/json",
    )
    _refused_with_503(reply)
    assert not Submission.objects.exists()


def test_page_submit_with_redis_down_is_a_503_and_stores_nothing(candidate, redis_down):
    client = Client()
    client.force_login(candidate)
    reply = client.post(
        "/problems/cpu-softmax/submit/",
        {"code": solution("reference.py")},
        HTTP_ACCEPT="application/json",
    )
    assert reply.status_code == 503
    assert int(reply["Retry-After"]) > 0
    assert "rate limiter (Redis) is not answering" in reply.json()["error"]
    assert not Submission.objects.exists()


def test_loop_submit_with_redis_down_is_a_503_and_stores_nothing(candidate, redis_down):
    from interview.question_bank import questions_load

    questions_load()
    loop = interview_services.loop_start(
        user=candidate, level="mid", length_min=30, rng=random.Random(4)
    )
    coding = loop.rounds.get(kind=RoundKind.CODING)
    client = Client()
    client.force_login(candidate)
    reply = client.post(
        f"/loops/{loop.pk}/rounds/{coding.position}/submit/", {"code": solution("reference.py")}
    )
    assert reply.status_code == 503
    assert int(reply["Retry-After"]) > 0
    assert "rate limiter (Redis) is not answering" in reply.content.decode()
    assert not Submission.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_healthz_reports_a_silent_broker_within_its_probe_bound(client, silent_broker):
    body = client.get("/healthz").json()
    assert body["broker"] is False
    assert f"broker unreachable: no answer within {health.PROBE_TIMEOUT_S:g} s" in body["problems"]
    assert body["database"] is True


@pytest.mark.django_db(transaction=True)
def test_healthz_shows_hosts_and_versions_only_to_staff_or_this_machine(client):
    Worker.objects.create(
        hostname="gpu-7.internal",
        queues=["cpu"],
        hardware={"cpu_model": "EPYC"},
        started_at=health.timezone.now(),
        last_seen_at=health.timezone.now(),
    )
    remote = {"REMOTE_ADDR": "203.0.113.9"}
    public = client.get("/healthz", **remote)
    assert public.status_code == 200, public.content
    assert public.json() == {
        "status": "ok",
        "database": True,
        "broker": True,
        "workers_alive": 1,
        "problems": [],
    }
    assert "gpu-7.internal" not in public.content.decode()
    forwarded = client.get("/healthz", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert "gpu-7.internal" not in forwarded.content.decode()  # a local proxy's client
    local = client.get("/healthz").json()
    assert [w["hostname"] for w in local["workers"]] == ["gpu-7.internal"]
    assert local["version"]
    staff = get_user_model().objects.create_user("ops", password="pw-ops-12345", is_staff=True)
    client.force_login(staff)
    assert client.get("/healthz", **remote).json()["workers"][0]["hardware"] == {
        "cpu_model": "EPYC"
    }


def _raises(error: BaseException):
    def probe() -> None:
        raise error

    return probe


def test_a_probe_whose_own_socket_times_out_first_is_reported_as_silent():
    """On a busy machine the probe's socket timeout can fire before the join returns: the same
    silence, reported the same way, whether raised bare or wrapped as redis and kombu do."""
    import redis
    from kombu.exceptions import OperationalError

    wrapped = OperationalError("Timeout reading from socket")
    wrapped.__cause__ = redis.exceptions.TimeoutError("Timeout reading from socket")
    silent = f"no answer within {health.PROBE_TIMEOUT_S:g} s"
    for error in (TimeoutError("timed out"), redis.exceptions.TimeoutError("x"), wrapped):
        result, problem = health._bounded(_raises(error), "broker")
        assert result is None and problem.text(True) == f"broker unreachable: {silent}"
    _, refused = health._bounded(_raises(ConnectionRefusedError("Connection refused")), "broker")
    assert refused.text(True) == "broker unreachable: Connection refused"
