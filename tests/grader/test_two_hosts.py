"""The deployment's queues with real workers: a CPU host's worker and a GPU host's worker.

Two ``celery worker`` processes (deploy/'s ``manage.py worker --queues cpu``, and the command
``gpu_worker`` starts for a card) share the
test's PostgreSQL (or SQLite) database and broker, as workers on other hosts share the web
host's: the CPU host's consumes ``cpu``; the GPU host's consumes its card class's queue
``gpu.h100`` and, as a spare, ``cpu`` too. Each job must land on a worker of its queue, and a
job whose worker is killed mid-job must be re-queued and finished by the other one.

The GPU-routed jobs are cpu-softmax's (its harness takes seconds; a kernel's takes minutes
under Triton's interpreter on this card-less machine): routing reads only the submission's
queue, never the harness.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from grader.harnesses.contract import Verdict
from grader.models import Queue, Submission, SubmissionEvent
from grader.selectors import card_classes_live
from grader.services import submission_create
from tests.conftest import REPO, WorkerProcess, child_environment
from tests.grader.conftest import solution, wait_graded

pytestmark = pytest.mark.slow
# A submitted job must be running (claimed by a worker) within this.
CLAIM_TIMEOUT_S = 60
# Long enough to be killed mid-job and to keep its worker busy while another job is routed.
SLOW_SOLUTION = "import time\ntime.sleep(4)  # holds the worker\n" + solution("solutions/fast.py")


def _running(submission_id: int) -> Submission:
    """Wait until a worker has claimed the submission; returns it (with the worker's name)."""
    deadline = time.monotonic() + CLAIM_TIMEOUT_S
    while True:
        submission = Submission.objects.get(pk=submission_id)
        if submission.state == Submission.State.RUNNING and submission.worker_hostname:
            return submission
        assert time.monotonic() < deadline, f"{submission_id} never claimed: {submission.state}"
        time.sleep(0.1)


class ManagePyWorker(WorkerProcess):
    """A worker started as deploy/ starts a CPU host's: ``manage.py worker``."""

    def start(self, **environment: str) -> None:
        command = [sys.executable, "manage.py", "worker", "--queues", self.queues]
        self.process = subprocess.Popen(
            [*command, "--hostname", self.hostname],
            cwd=REPO,
            env=child_environment(**environment),
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.fixture
def users(django_user_model):
    # One job per user is in the broker at a time: each job here is another user's.
    return [django_user_model.objects.create_user(f"candidate{i}") for i in range(3)]


@pytest.fixture
def workers(tmp_path):
    """The CPU host's worker and the GPU host's worker, both alive."""
    tag = uuid.uuid4().hex[:6]
    cpu = ManagePyWorker(f"cpu-{tag}@cpu-host", tmp_path / "cpu.log", "cpu")
    gpu = WorkerProcess(f"gpu.h100-0-{tag}@gpu-host", tmp_path / "gpu.log", "gpu.h100,cpu")
    try:
        cpu.start()
        gpu.start()
        cpu.wait_until_alive()
        gpu.wait_until_alive()
        yield cpu, gpu
    finally:
        cpu.stop()
        gpu.stop()


def test_each_job_lands_on_its_queues_worker_and_a_killed_workers_job_on_the_other(
    softmax_problem, users, workers
):
    cpu, gpu = workers
    softmax_problem.queue = Queue.GPU  # a GPU problem: its jobs go to a card class's queue
    softmax_problem.save()
    assert [card.queue for card in card_classes_live()] == ["gpu.h100"]

    # The card's job can only go to the GPU host; while it holds it (one job per card, none
    # reserved ahead), the cpu job can only go to the CPU host.
    on_card = submission_create(
        user=users[0], problem=softmax_problem, code=SLOW_SOLUTION, queue="gpu.h100"
    )
    assert _running(on_card.pk).worker_hostname == gpu.hostname
    on_cpu = submission_create(
        user=users[1], problem=softmax_problem, code=solution("reference.py"), queue="cpu"
    )
    on_cpu, on_card = wait_graded(on_cpu.pk), wait_graded(on_card.pk)
    assert (on_cpu.queue, on_cpu.worker_hostname, on_cpu.verdict) == (
        "cpu",
        cpu.hostname,
        Verdict.ACCEPTED,
    ), on_cpu.message
    assert (on_card.queue, on_card.worker_hostname, on_card.verdict) == (
        "gpu.h100",
        gpu.hostname,
        Verdict.ACCEPTED,
    ), on_card.message

    # A job on the queue both consume: whichever worker takes it is killed mid-job.
    doomed = submission_create(
        user=users[2], problem=softmax_problem, code=SLOW_SOLUTION, queue="cpu"
    )
    taken_by = _running(doomed.pk).worker_hostname
    victim, rescuer = (cpu, gpu) if taken_by == cpu.hostname else (gpu, cpu)
    assert taken_by == victim.hostname
    time.sleep(1)  # inside the sandbox, sleeping in the solution's import
    os.killpg(victim.process.pid, signal.SIGKILL)
    victim.process.wait()

    graded = wait_graded(doomed.pk)
    rescuer.wait_idle()
    assert graded.verdict == Verdict.ACCEPTED, graded.message
    assert (graded.worker_hostname, graded.attempt) == (rescuer.hostname, 1)
    kinds = list(SubmissionEvent.objects.filter(submission=graded).values_list("kind", flat=True))
    assert (kinds.count("requeued"), kinds.count("done")) == (1, 1)
    requeued = SubmissionEvent.objects.get(submission=graded, kind="requeued")
    assert victim.hostname in requeued.data["reason"]
