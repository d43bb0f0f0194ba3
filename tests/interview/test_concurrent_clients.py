"""Many clients at once against the database as configured (SQLite by default): no 500, no
duplicate, every request answered."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable

import pytest
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import Client
from django.utils import timezone

from grader.access import api_token_create
from grader.bank import problems_load
from grader.models import Submission, SubmissionEvent, Worker
from lab.models import LabRun
from tests.grader.conftest import solution

API_CLIENTS = 20
LAB_CLIENTS = 8
LAB_FORM = {"batching": "both", "policy": "fcfs", "block_size": 8, "num_kv_blocks": 48,
            "max_num_seqs": 8, "requests": 4, "arrival_rate_per_s": 0, "seed": 0}  # fmt: skip


def _all_at_once(requests: list[Callable[[], int]]) -> list[int]:
    """Run each request on its own thread, released together; their HTTP statuses in order."""
    start = threading.Barrier(len(requests))
    statuses: list[int] = [0] * len(requests)

    def run(index: int) -> None:
        try:
            start.wait()
            statuses[index] = requests[index]()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


pytestmark = pytest.mark.usefixtures("fresh_buckets")


@pytest.mark.django_db(transaction=True)
def test_concurrent_api_submits_are_each_stored_once_without_a_500():
    problems_load()
    users = [get_user_model().objects.create_user(f"api-{i}") for i in range(API_CLIENTS)]
    keys = [str(uuid.uuid4()) for _ in users]
    code = solution("reference.py")

    def submit(token: str, key: str) -> Callable[[], int]:
        client = Client(
            raise_request_exception=False,
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
        )
        body = json.dumps({"problem": "cpu-softmax", "code": code})
        return lambda: (
            client.post("/api/submissions", data=body, content_type="application/json").status_code
        )

    tokens = [api_token_create(user, "load")[1] for user in users]
    statuses = _all_at_once([submit(t, k) for t, k in zip(tokens, keys, strict=True)])
    assert statuses == [201] * API_CLIENTS
    rows = Submission.objects.filter(user__in=users)
    assert sorted(rows.values_list("idempotency_key", flat=True)) == sorted(keys)
    assert SubmissionEvent.objects.filter(submission__in=rows, kind="queued").count() == API_CLIENTS
    assert rows.filter(dispatched=True).count() == API_CLIENTS  # each user's one job is in


@pytest.mark.django_db(transaction=True)
def test_concurrent_lab_posts_each_start_one_experiment_without_a_500():
    now = timezone.now()
    Worker.objects.create(hostname="cpu@test", queues=["cpu"], started_at=now, last_seen_at=now)
    users = [get_user_model().objects.create_user(f"lab-{i}") for i in range(LAB_CLIENTS)]

    def post(user) -> Callable[[], int]:
        client = Client(raise_request_exception=False)
        client.force_login(user)
        return lambda: client.post("/lab/", LAB_FORM).status_code

    statuses = _all_at_once([post(user) for user in users])
    assert statuses == [302] * LAB_CLIENTS
    assert sorted(LabRun.objects.values_list("user_id", flat=True)) == sorted(u.pk for u in users)
