"""GPU workers as first-class processes, and kernel problems routed by card class (CPU only).

The card probe is injected: this machine has no GPU, so a fake ``torch.cuda`` stands for the
cards, and the real probe shows what a worker here advertises (no card).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from engine.hardware import GpuInfo, Hardware, card_class, gpus_probe, hardware_probe
from grader import access, services
from grader.bank import PROBLEMS_DIR, problems_load
from grader.conf import grader_settings
from grader.harnesses.timing import gpu_available
from grader.management.commands.gpu_worker import gpu_workers_plan
from grader.models import Submission, Worker
from grader.selectors import card_classes_live
from grader.tasks import grade_submission
from grader.workers import celery_worker_command
from interview.coding_selectors import leaderboards

KERNEL = "paged-decode-attention"
H100 = "NVIDIA H100 80GB HBM3"
H200 = "NVIDIA H200"


@dataclass
class FakeProps:
    name: str
    total_memory: int
    major: int = 9
    minor: int = 0


class FakeCuda:
    """What the probe reads of ``torch.cuda``."""

    def __init__(self, names: list[str]) -> None:
        self.names = names

    def is_available(self) -> bool:
        return bool(self.names)

    def device_count(self) -> int:
        return len(self.names)

    def get_device_properties(self, index: int) -> FakeProps:
        return FakeProps(self.names[index], 80 * 2**30)


def host_with(*names: str) -> Hardware:
    return Hardware(
        cpu_model="AMD EPYC",
        cpu_count=16,
        memory_bytes=2**37,
        gpus=gpus_probe(FakeCuda(list(names)), "13.0", "580.159.04"),
        torch="2.11.0+cu130",
        triton="3.6.0",
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (H100, "h100"),
        ("NVIDIA H100 PCIe", "h100"),
        (H200, "h200"),
        ("NVIDIA A100-SXM4-80GB", "a100"),
        ("NVIDIA L40S", "l40s"),
        ("NVIDIA GeForce RTX 4090", "rtx4090"),
        ("Tesla V100-SXM2-16GB", "v100"),
    ],
)
def test_a_card_class_is_the_model_without_vendor_or_memory_words(name, expected):
    assert card_class(name) == expected


def test_the_probe_reads_each_card_and_none_without_cuda():
    assert gpus_probe(FakeCuda([]), "13.0", "580") == []
    assert gpus_probe(FakeCuda([H100, H200]), "13.0", "580.159.04") == [
        GpuInfo(H100, 80 * 2**30, "580.159.04", "13.0", "9.0"),
        GpuInfo(H200, 80 * 2**30, "580.159.04", "13.0", "9.0"),
    ]


@pytest.mark.skipif(gpu_available(), reason="what a CPU-only host advertises")
def test_this_cpu_only_host_advertises_no_card():
    hardware = hardware_probe()
    assert hardware.gpus == [] and hardware.card_class == ""
    assert hardware.torch and hardware.triton  # the versions are there all the same


@pytest.mark.django_db
def test_a_gpu_workers_heartbeat_advertises_its_card_and_a_cpu_ones_none():
    started = timezone.now()
    services.worker_heartbeat("gpu.h100-0@gpuhost", ["gpu.h100"], started, lambda: host_with(H100))
    services.worker_heartbeat("cpu@webhost", ["cpu"], started, hardware_probe)

    card = Worker.objects.get(hostname="gpu.h100-0@gpuhost").hardware
    assert card["gpus"] == [
        {
            "name": H100,
            "memory_bytes": 80 * 2**30,
            "driver": "580.159.04",
            "cuda": "13.0",
            "capability": "9.0",
        }
    ]
    assert (card["torch"], card["triton"], card["card_class"]) == ("2.11.0+cu130", "3.6.0", "h100")
    if not gpu_available():
        cpu = Worker.objects.get(hostname="cpu@webhost").hardware
        assert cpu["gpus"] == [] and cpu["card_class"] == ""


def test_each_card_gets_its_own_pinned_worker_on_its_class_queue():
    plans = gpu_workers_plan(host_with(H100, H100), None, "gpuhost", None)
    assert [(p.device, p.queue, p.hostname) for p in plans] == [
        ("0", "gpu.h100", "gpu.h100-0@gpuhost"),
        ("1", "gpu.h100", "gpu.h100-1@gpuhost"),
    ]
    # Indices count in the host's own CUDA_VISIBLE_DEVICES.
    pinned = gpu_workers_plan(host_with(H100, H200), [1], "gpuhost", "2,3")
    assert [(p.device, p.queue) for p in pinned] == [("3", "gpu.h200")]
    assert gpu_workers_plan(host_with(), None, "cpuhost", None) == []
    with pytest.raises(ValueError, match="shows 1 GPU"):
        gpu_workers_plan(host_with(H100), [1], "gpuhost", None)


def test_a_gpu_worker_takes_one_job_at_a_time_and_acknowledges_it_late():
    command = celery_worker_command("gpu.h100", "gpu.h100-0@gpuhost")
    assert command[command.index("--queues") + 1] == "gpu.h100"
    assert command[command.index("--concurrency") + 1] == "1"
    assert command[command.index("--prefetch-multiplier") + 1] == "1"
    assert settings.CELERY_TASK_ACKS_LATE and settings.CELERY_TASK_REJECT_ON_WORKER_LOST


@pytest.mark.skipif(gpu_available(), reason="the refusal of a host without a card")
def test_the_gpu_worker_command_refuses_to_start_without_a_card():
    with pytest.raises(CommandError, match="no GPU is visible"):
        call_command("gpu_worker", "--dry-run")


def _live(hostname: str, queue: str, *names: str) -> None:
    services.worker_heartbeat(hostname, [queue], timezone.now(), lambda: host_with(*names))


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob")


@pytest.fixture
def published(transactional_db):
    problems_load()


@pytest.fixture
def published_queues(monkeypatch) -> list[str]:
    """The queues the broker was handed jobs for (no worker runs in these tests)."""
    queues: list[str] = []
    monkeypatch.setattr(
        grade_submission, "apply_async", lambda *a, queue, **kw: queues.append(queue)
    )
    return queues


@pytest.fixture
def api(alice) -> Client:
    _, token = access.api_token_create(alice, "test")
    return Client(headers={"authorization": f"Bearer {token}"})


def _submit(api: Client, **fields):
    code = (PROBLEMS_DIR / KERNEL / "reference.py").read_text()
    return api.post(
        "/api/submissions",
        {"problem": KERNEL, "code": code} | fields,
        content_type="application/json",
    )


@pytest.mark.usefixtures("fresh_buckets", "published")
@pytest.mark.django_db(transaction=True)
def test_the_api_lists_live_card_classes_and_routes_to_the_one_chosen(api, published_queues):
    _live("gpu.h100-0@a", "gpu.h100", H100)
    _live("gpu.h100-1@a", "gpu.h100", H100)
    _live("gpu.h200-0@b", "gpu.h200", H200)
    _live("old@c", "gpu.a100", "NVIDIA A100-SXM4-80GB")
    Worker.objects.filter(hostname="old@c").update(
        last_seen_at=timezone.now() - timedelta(seconds=grader_settings.WORKER_ALIVE_S + 1)
    )

    chosen = _submit(api, card="gpu.h200")
    assert chosen.status_code == 201, chosen.content
    assert chosen.json()["queue"] == "gpu.h200"
    assert published_queues == ["gpu.h200"]

    detail = api.get(f"/api/problems/{KERNEL}").json()
    assert detail["cards"] == [
        {"queue": "gpu.h100", "card": H100, "workers": 2, "waiting": 0, "running": 0},
        {"queue": "gpu.h200", "card": H200, "workers": 1, "waiting": 1, "running": 0},
    ]
    assert detail["correctness_only"] == "cpu"

    before = Submission.objects.count()
    dead = _submit(api, card="gpu.a100")  # its only worker stopped beating
    assert dead.status_code == 422
    assert (
        "no live worker serves 'gpu.a100'; choose one of gpu.h100, gpu.h200, cpu"
        in dead.json()["detail"]
    )
    assert Submission.objects.count() == before


@pytest.mark.usefixtures("fresh_buckets", "published")
@pytest.mark.django_db(transaction=True)
def test_without_a_choice_the_shortest_live_queue_takes_it(alice, published_queues):
    _live("gpu.h100-0@a", "gpu.h100", H100)
    _live("gpu.h200-0@b", "gpu.h200", H200)
    code = (PROBLEMS_DIR / KERNEL / "reference.py").read_text()
    from grader.models import Problem

    problem = Problem.objects.get(slug=KERNEL)
    busy = services.submission_create(user=alice, problem=problem, code=code, queue="gpu.h100")
    assert busy.queue == "gpu.h100"
    assert services.submission_queue_choose(problem) == "gpu.h200"
    with pytest.raises(services.SubmissionRejected, match="runs on cpu workers only"):
        services.submission_queue_choose(Problem.objects.get(slug="cpu-softmax"), "gpu.h100")


@pytest.mark.usefixtures("fresh_buckets", "published")
@pytest.mark.django_db(transaction=True)
def test_the_problem_page_offers_the_live_cards_with_their_queue_lengths(client, alice):
    _live("gpu.h100-0@a", "gpu.h100", H100)
    client.force_login(alice)
    page = client.get(f"/problems/{KERNEL}/").content.decode()
    assert 'value="gpu.h100" checked' in page
    assert f"<strong>gpu.h100</strong> ({H100}): 1 worker, 0 waiting, 0 running" in page
    assert 'value="cpu">' in page  # correctness only stays on offer
    assert "No GPU worker is running" not in page


@pytest.mark.usefixtures("fresh_buckets", "published")
@pytest.mark.django_db(transaction=True)
def test_with_no_card_live_the_page_says_so_and_offers_correctness_only(
    client, alice, published_queues
):
    client.force_login(alice)
    page = client.get(f"/problems/{KERNEL}/").content.decode()
    assert "No GPU worker is running" in page
    assert 'value="cpu" checked' in page
    assert "Correctness only: no GPU" in page and "TRITON_INTERPRET=1" in page

    code = (PROBLEMS_DIR / KERNEL / "reference.py").read_text()
    client.post(f"/problems/{KERNEL}/submit/", {"code": code, "card": "cpu"})
    assert Submission.objects.get().queue == "cpu"
    assert published_queues == ["cpu"]


@pytest.mark.slow
@pytest.mark.usefixtures("fresh_buckets", "published")
@pytest.mark.django_db(transaction=True)
def test_a_card_class_worker_takes_the_jobs_routed_to_its_class(alice, tmp_path):
    from grader.models import Problem
    from tests.conftest import WorkerProcess
    from tests.grader.conftest import wait_graded

    # A worker on the gpu.h100 queue only, as gpu_worker starts it (no card here, so the
    # kernel is checked under the interpreter: correct, no speed).
    worker = WorkerProcess(f"gpu.h100-0@{tmp_path.name}", tmp_path / "worker.log", "gpu.h100")
    worker.start()
    try:
        worker.wait_until_alive()
        assert [card.queue for card in card_classes_live()] == ["gpu.h100"]
        code = (PROBLEMS_DIR / KERNEL / "reference.py").read_text()
        problem = Problem.objects.get(slug=KERNEL)
        submitted = services.submission_create(user=alice, problem=problem, code=code)
        assert submitted.queue == "gpu.h100"  # the only live class
        graded = wait_graded(submitted.pk, timeout_s=240)
        worker.wait_idle()
    finally:
        worker.stop()
    assert graded.worker_hostname == worker.hostname
    assert (graded.verdict, graded.score, graded.speed_measured) == ("accepted", None, False)


def _graded_on(user, card: str, score: float, peaks: dict) -> Submission:
    from grader.models import Problem

    return Submission.objects.create(
        user=user,
        problem=Problem.objects.get(slug=KERNEL),
        code="pass\n",
        seed=1,
        queue="gpu.h100",
        state=Submission.State.GRADED,
        verdict="accepted",
        score=score,
        graded_at=timezone.now(),
        hardware=host_with(card).as_dict(),
        timing={"candidate": {"median_ns": 2e6}, "speed_of_light": peaks},
    )


@pytest.mark.usefixtures("published")
@pytest.mark.django_db(transaction=True)
def test_leaderboards_are_per_card_class_with_the_cards_measured_peaks(client, alice, bob):
    peaks = {
        "bytes_per_s": 3.2e12,
        "flops_per_s": 7.95e14,
        "basis": f"measured on {H100}",
        "bytes": 3_200_000_000,  # the timed call's: 2 ms at 1,600 GB/s, half the peak
        "flops": 0,
        "bound": "memory",
    }
    best = _graded_on(alice, H100, 1.05, peaks)
    _graded_on(bob, "NVIDIA H100 PCIe", 0.9, peaks)
    _graded_on(bob, H200, 1.2, peaks | {"basis": f"measured on {H200}"})

    boards = leaderboards()
    assert [(b.hardware, [e.username for e in b.entries]) for b in boards] == [
        ("gpu.h100", ["alice", "bob"]),
        ("gpu.h200", ["bob"]),
    ]
    page = client.get(f"/leaderboards/{KERNEL}/").content.decode()
    assert "gpu.h100 (NVIDIA H100 PCIe)" in page  # the card of the board's newest entry
    assert "The card's measured peaks: 795 TFLOP/s bf16 matmul, 3200 GB/s" in page
    _, token = access.api_token_create(alice, "test")
    api = Client(headers={"authorization": f"Bearer {token}"})
    rows = api.get(f"/api/leaderboards/{KERNEL}").json()
    assert [
        (b["hardware"], b["peaks"]["flops_per_s"], [e["rank"] for e in b["entries"]]) for b in rows
    ] == [
        ("gpu.h100", 7.95e14, [1, 2]),
        ("gpu.h200", 7.95e14, [1]),
    ]
    speed = api.get(f"/api/submissions/{best.pk}").json()["speed"]
    assert (speed["median_ms"], speed["gb_per_s"], speed["peak_pct"]) == (2.0, 1600.0, 50.0)
    assert (speed["bound"], speed["card"]) == ("memory", H100)


@pytest.mark.usefixtures("fresh_buckets", "published")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "slug", ["priority-scheduler", "kv-allocator", "batched-sampler", "spec-verifier"]
)
def test_an_engine_problem_with_the_gpu_tier_goes_to_the_card_chosen_else_to_cpu(
    api, published_queues, slug
):
    code = (PROBLEMS_DIR / slug / "reference.py").read_text()

    def submit(**fields):
        body = {"problem": slug, "code": code} | fields
        return api.post("/api/submissions", body, content_type="application/json")

    assert api.get(f"/api/problems/{slug}").json()["cards"] == []
    _live("gpu.h100-0@a", "gpu.h100", H100)
    detail = api.get(f"/api/problems/{slug}").json()
    assert [card["queue"] for card in detail["cards"]] == ["gpu.h100"]
    assert detail["correctness_only"] == ""  # the cpu queue grades it whole: no label

    on_card = submit(card="gpu.h100")
    assert on_card.status_code == 201, on_card.content
    assert on_card.json()["queue"] == "gpu.h100"
    refused = submit(card="gpu.h200")
    assert refused.status_code == 422
    assert (
        "no live worker serves 'gpu.h200'; choose one of gpu.h100, cpu"
        in (refused.json()["detail"])
    )
    assert published_queues == ["gpu.h100"]  # the default (cpu) waits behind alice's first job
    default = submit()
    assert default.status_code == 201 and default.json()["queue"] == "cpu"
    softmax = api.post(
        "/api/submissions",
        {"problem": "cpu-softmax", "code": "x = 1", "card": "gpu.h100"},
        content_type="application/json",
    )
    assert softmax.status_code == 422 and "runs on cpu workers only" in str(softmax.json())


@pytest.mark.usefixtures("fresh_buckets", "published")
@pytest.mark.django_db(transaction=True)
def test_an_engine_problems_page_offers_its_throughput_test_on_the_live_cards(client, alice):
    client.force_login(alice)
    page = client.get("/problems/priority-scheduler/").content.decode()
    assert 'id="tier-choice"' not in page  # no card live: the cpu queue, nothing to choose
    _live("gpu.h100-0@a", "gpu.h100", H100)
    page = client.get("/problems/priority-scheduler/").content.decode()
    assert 'id="tier-choice"' in page
    assert 'value="cpu" checked' in page and 'value="gpu.h100">' in page
    assert f"<strong>gpu.h100</strong> ({H100}): SmolLM2-135M's shape on the card" in page
    assert 'id="tier-choice"' not in client.get("/problems/cpu-softmax/").content.decode()
