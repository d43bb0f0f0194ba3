"""The engine lab: settings validation, what an experiment records, running it exactly once."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from grader.conf import grader_settings
from grader.models import Worker
from lab.models import LabRun
from lab.runner import LabSettings, experiment_run, workload
from lab.selectors import labrun_summary
from lab.services import (
    MAX_PENDING_PER_USER,
    UNSERVED_WAIT_S,
    LabQueueUnserved,
    LabRunRefused,
    labrun_create,
    labrun_execute,
    labrun_fail_if_unserved,
)

# All at once (rate 0) into one batch: the step counts do not depend on the clock.
ONE_BATCH = LabSettings(arrival_rate_per_s=0, requests=6, max_num_seqs=8, num_kv_blocks=128)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"block_size": 5}, "block_size must be one of (4, 8, 16, 32)"),
        ({"modes": ()}, "modes must be some of"),
        ({"policy": "lifo"}, "policy must be one of ['fcfs', 'priority']"),
        ({"requests": 33}, "requests must be between 1 and 32, got 33"),
        ({"block_size": 4, "num_kv_blocks": 20}, "num_kv_blocks must be at least 28"),
    ],
    ids=["block-size", "no-modes", "policy", "too-many-requests", "cache-too-small"],
)
def test_settings_refuse_what_the_engine_cannot_run(changes, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        LabSettings(**changes)


def test_the_workload_is_the_same_for_the_same_seed():
    first, again = workload(ONE_BATCH), workload(ONE_BATCH)
    assert [r.prompt_token_ids for r in first] == [r.prompt_token_ids for r in again]
    assert [r.params.max_tokens for r in first] == [r.params.max_tokens for r in again]
    assert {r.arrival_s for r in first} == {0.0}


def test_static_batching_pads_and_continuous_does_not():
    results = experiment_run(ONE_BATCH)
    longest = max(r["output_tokens"] for r in results["requests"])
    wanted = sum(r["output_tokens"] for r in results["requests"])
    continuous, static = results["modes"]["continuous"], results["modes"]["static"]
    # One batch either way: as many steps as the longest output.
    assert continuous["metrics"]["steps"] == static["metrics"]["steps"] == longest
    assert continuous["padding_tokens"] == 0
    # Static keeps every member decoding until the longest is done.
    assert static["padding_tokens"] == sum(
        longest - r["output_tokens"] for r in results["requests"]
    )
    assert continuous["metrics"]["output_tokens"] == static["metrics"]["output_tokens"] == wanted
    for step in continuous["steps"] + static["steps"]:
        held = [block for blocks in step["blocks"].values() for block in blocks]
        assert len(held) == len(set(held))  # no block belongs to two requests
    assert [r["id"] for r in continuous["latency"]] == [str(i) for i in range(6)]


def worker_seen(hostname: str, queues: list[str], seconds_ago: float = 0) -> Worker:
    seen = timezone.now() - timedelta(seconds=seconds_ago)
    return Worker.objects.create(
        hostname=hostname, queues=queues, started_at=seen, last_seen_at=seen
    )


@pytest.fixture
def cpu_worker(db) -> Worker:
    return worker_seen("w1@test", ["cpu", "gpu"])


@pytest.mark.django_db
def test_an_experiment_runs_once_and_a_user_has_at_most_two_in_flight(cpu_worker):
    user = get_user_model().objects.create_user("lab-user")
    run = labrun_create(user=user, settings=ONE_BATCH)
    assert run.state == LabRun.State.QUEUED and run.settings["modes"] == ["continuous", "static"]

    done = labrun_execute(run.pk, hostname="w1")
    assert done.state == LabRun.State.DONE and done.worker_hostname == "w1"
    assert set(done.results["modes"]) == {"continuous", "static"}
    assert labrun_execute(run.pk, hostname="w2") is None  # a redelivered message does nothing
    assert LabRun.objects.get(pk=run.pk).worker_hostname == "w1"

    for _ in range(MAX_PENDING_PER_USER):
        labrun_create(user=user, settings=ONE_BATCH)
    with pytest.raises(LabRunRefused):
        labrun_create(user=user, settings=ONE_BATCH)
    assert LabRun.objects.filter(user=user).count() == 1 + MAX_PENDING_PER_USER


@pytest.mark.django_db
def test_without_a_worker_on_the_cpu_queue_an_experiment_is_refused_at_once(client):
    user = get_user_model().objects.create_user("alone")
    worker_seen("gpu-only@test", ["gpu"])
    worker_seen("gone@test", ["cpu"], seconds_ago=grader_settings.WORKER_ALIVE_S + 1)
    with pytest.raises(LabQueueUnserved, match="No worker is serving the cpu queue right now"):
        labrun_create(user=user, settings=ONE_BATCH)
    assert LabRun.objects.count() == 0

    client.force_login(user)
    page = client.post("/lab/", {"batching": "both", "policy": "fcfs", "block_size": 8,
                                 "num_kv_blocks": 48, "max_num_seqs": 8, "requests": 4,
                                 "arrival_rate_per_s": 0, "seed": 0}).content.decode()  # fmt: skip
    assert '<p class="error" role="alert" id="no-worker">No worker is serving' in page
    assert LabRun.objects.count() == 0


@pytest.mark.django_db
def test_a_queued_experiment_no_worker_serves_fails_after_a_bounded_wait(cpu_worker):
    run = labrun_create(user=get_user_model().objects.create_user("waiter"), settings=ONE_BATCH)
    cpu_worker.delete()  # the worker died after the experiment was queued
    created = run.created_at
    soon = created + timedelta(seconds=UNSERVED_WAIT_S - 1)
    assert labrun_fail_if_unserved(run, now=soon).state == LabRun.State.QUEUED
    late = created + timedelta(seconds=UNSERVED_WAIT_S + 1)
    worker_seen("busy@test", ["cpu"])  # a live worker, busy with other jobs: keep waiting
    assert labrun_fail_if_unserved(run, now=late).state == LabRun.State.QUEUED
    Worker.objects.all().delete()

    failed = labrun_fail_if_unserved(run, now=late)
    assert (failed.state, failed.finished_at) == (LabRun.State.FAILED, late)
    assert failed.error == (
        f"no worker started it within {UNSERVED_WAIT_S} s: none is serving the cpu queue"
    )
    assert labrun_execute(run.pk, hostname="late@test") is None  # a worker that comes later
    assert LabRun.objects.get(pk=run.pk).state == LabRun.State.FAILED


@pytest.mark.django_db
def test_a_link_presets_the_lab_form(client):
    client.force_login(get_user_model().objects.create_user("linked"))
    page = client.get("/lab/?policy=priority&num_kv_blocks=32&unknown=1").content.decode()
    assert '<option value="priority" selected>' in page
    assert 'name="num_kv_blocks" value="32"' in page


def test_the_summary_lists_modes_in_a_fixed_order_whatever_the_stored_order():
    metrics = {
        "output_tokens_per_s": 1.0, "requests_per_s": 1.0, "wall_s": 1.0, "steps": 2,
        "ttft_ms": {"p50": 1.0, "p90": 2.0}, "tpot_ms": {"p50": 1.0},
        "kv_utilization": {"mean": 0.5, "peak": 1.0}, "preemptions": 0,
    }  # fmt: skip
    result = {"metrics": metrics, "computed_tokens": 10, "padding_tokens": 0}
    run = LabRun(settings={}, results={"modes": {"static": result, "continuous": result}})
    assert [row["mode"] for row in labrun_summary(run)] == ["continuous", "static"]
