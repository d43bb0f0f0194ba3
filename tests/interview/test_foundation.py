"""The skeleton a user meets first: the home page, /healthz, a real Celery round trip, settings."""

from __future__ import annotations

import os

import pytest
from django.conf import settings

from interview.celery import app as celery_app

# A task round trip through a real worker and broker must finish within this. The ping waits
# its turn behind jobs that earlier tests queued for rows their flush removed, about a second
# each on the filesystem broker (it polls once a second): 30 of them in one whole-suite run.
ROUND_TRIP_TIMEOUT_S = 120


@pytest.mark.django_db
def test_home_page_renders(client):
    response = client.get("/")
    assert response.status_code == 200
    assert "Practise the inference-engineer interview" in response.content.decode()


@pytest.mark.django_db
def test_healthz_is_503_and_names_the_missing_worker_when_none_runs(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["database"] is True
    assert body["broker"] is True
    assert body["workers"] == []
    assert any("no Celery worker" in problem for problem in body["problems"])


def test_healthz_reports_a_live_worker_with_queues_and_hardware(client, celery_worker_process):
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    [worker] = [w for w in body["workers"] if w["hostname"] == celery_worker_process.hostname]
    assert worker["queues"] == ["cpu", "gpu"]
    assert worker["hardware"]["cpu_count"] >= 1
    assert worker["hardware"]["cpu_model"]
    assert body["version"] == "0.1.0"


def test_task_round_trip_through_a_real_worker(celery_worker_process):
    result = celery_app.send_task("grader.ping", args=["hello"], queue="cpu")
    reply = result.get(timeout=ROUND_TRIP_TIMEOUT_S)
    assert reply["echo"] == "hello"
    assert reply["hardware"]


def test_worker_shutdown_removes_it_from_health(client, celery_worker_process):
    celery_worker_process.stop()
    body = client.get("/healthz").json()
    assert celery_worker_process.hostname not in [w["hostname"] for w in body["workers"]]


def test_broker_and_channel_layer_follow_redis_url():
    if os.environ.get("REDIS_URL"):
        assert settings.CELERY_BROKER_URL == os.environ["REDIS_URL"]
        assert settings.CHANNEL_LAYERS["default"]["BACKEND"].endswith("RedisChannelLayer")
    else:
        assert settings.CELERY_BROKER_URL == "filesystem://"
        assert settings.CHANNEL_LAYERS["default"]["BACKEND"].endswith("InMemoryChannelLayer")


def test_the_asgi_server_loads_the_judge_and_its_kept_embeddings_as_it_starts(tmp_path):
    """The first written answer after a start must not wait for the model or for the rubric
    texts that warm_judge kept: the server's start loads both in the background (in a fresh
    process, so nothing in this one loaded them first)."""
    import subprocess
    import sys

    import numpy as np

    from interview import rubric
    from tests.conftest import REPO, child_environment

    kept = tmp_path / "judge-embeddings.npz"
    np.savez(
        kept,
        model=np.array(rubric.EMBEDDINGS_MODEL),
        sentences=np.array(["A kept rubric sentence."]),
        vectors=np.ones((1, 384), dtype=np.float32),
    )
    probe = (
        "import threading, interview.asgi\n"
        "from interview import rubric\n"
        "loads = [t for t in threading.enumerate() if t.name == 'judge-warm-up']\n"
        "for t in loads: t.join()\n"
        "print(len(loads), rubric._EMBEDDER._model is not None,\n"
        "      'A kept rubric sentence.' in rubric.embedded_sentences())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        env=child_environment(INFERPREP_VAR_DIR=str(tmp_path), JUDGE_WARM_UP="1"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.split() == ["1", "True", "True"], result.stderr[-2000:]


def test_no_template_comment_spans_lines():
    """Django's {# #} comment ends on its own line; one that does not is printed on the page."""
    from tests.conftest import REPO

    broken = [
        f"{path.relative_to(REPO)}:{number}"
        for path in (REPO / "templates").rglob("*.html")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "{#" in line and "#}" not in line.split("{#", 1)[1]
    ]
    assert broken == []
