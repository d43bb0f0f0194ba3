"""``manage.py grader_bench``: submit-to-verdict latency and throughput through the real queue.

Starts one Celery worker (unless ``--use-running-worker``), submits small submissions one at
a time (latency), each CPU problem's shipped reference as a submission of its own (``--problems``:
the grade a user waits for), then a burst (throughput), and times the sandbox start-up alone.
Prints a table; ``--json`` writes the same figures.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from grader.bank import problems_load
from grader.harnesses import harness_get
from grader.harnesses.timing import percentile
from grader.models import Problem, Submission, Worker
from grader.sandbox import SandboxSession, sandbox_kind
from grader.services import submission_create
from grader.workers import celery_worker_command

BENCH_SLUG = "bench-softmax"
# The small problem: cpu-softmax's first three tests and a five-call benchmark, so the
# latency measured is the grader's (queue, sandbox, checks), not a long timing phase.
SMALL_BENCHMARK = {"warmup": 1, "min_repetitions": 5, "max_repetitions": 5, "budget_s": 0.1}
SMALL_TESTS = 3
TORCH_SOLUTION = """import numpy as np
import torch


def softmax(x):
    return torch.softmax(torch.from_numpy(np.ascontiguousarray(x)), dim=-1).numpy()
"""
WORKER_START_TIMEOUT_S = 90
VERDICT_TIMEOUT_S = 120
# The problems a CPU worker grades; a kernel problem's grade needs a GPU worker.
CPU_PROBLEMS = "cpu-softmax,priority-scheduler,kv-allocator,batched-sampler,spec-verifier"


class Command(BaseCommand):
    help = "Measure submit-to-verdict latency p50/p95, submissions per minute, sandbox start-up."

    def add_arguments(self, parser) -> None:
        parser.add_argument("-n", type=int, default=10, help="submissions per row")
        parser.add_argument("--use-running-worker", action="store_true")
        parser.add_argument(
            "--problems",
            default=CPU_PROBLEMS,
            help="comma-separated slugs whose shipped reference is graded n times each",
        )
        parser.add_argument("--json", dest="json_path", help="also write the figures to this file")

    def handle(
        self,
        *args,
        n: int,
        use_running_worker: bool,
        problems: str,
        json_path: str | None,
        **options,
    ) -> None:
        call_command("migrate", verbosity=0)
        problems_load()
        small = self._small_problem()
        slugs = [slug for slug in problems.split(",") if slug]
        shipped = {problem.slug: problem for problem in Problem.objects.filter(slug__in=slugs)}
        unknown = sorted(set(slugs) - set(shipped))
        if unknown:
            raise CommandError(f"no such problems: {', '.join(unknown)}")
        user, _ = get_user_model().objects.get_or_create(username="grader-bench")
        worker = None if use_running_worker else self._worker_start()
        try:
            rows = [
                ("NumPy, small problem", *self._latency(user, small, small.reference_code, n)),
                ("NumPy + import torch, small", *self._latency(user, small, TORCH_SOLUTION, n)),
            ] + [
                (f"{slug} reference", *self._latency(user, shipped[slug], shipped[slug].reference_code, n))
                for slug in slugs
            ]  # fmt: skip
            burst = self._throughput(user, small, small.reference_code, n)
        finally:
            if worker is not None:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(timeout=30)
        startup = self._sandbox_startup(small, n)
        self.stdout.write(f"sandbox: {sandbox_kind()}, {n} submissions per row, one worker\n")
        self.stdout.write(f"| {'workload':<36} | p50 s | p95 s |")
        self.stdout.write(f"|{'-' * 38}|-------|-------|")
        for name, p50, p95 in rows:
            self.stdout.write(f"| {name:<36} | {p50:5.2f} | {p95:5.2f} |")
        self.stdout.write(
            f"\nthroughput (burst of {n}, small problem): {burst:.1f} submissions/min"
        )
        self.stdout.write(
            f"sandbox start-up alone (bwrap + Python + NumPy + load): p50 {startup[0] * 1e3:.0f} ms,"
            f" p95 {startup[1] * 1e3:.0f} ms"
        )
        if json_path:
            figures = {
                "sandbox": str(sandbox_kind()),
                "n": n,
                "latency_s": {name: {"p50": p50, "p95": p95} for name, p50, p95 in rows},
                "burst_per_min": burst,
                "sandbox_startup_s": {"p50": startup[0], "p95": startup[1]},
            }
            Path(json_path).write_text(json.dumps(figures, indent=1))

    def _small_problem(self) -> Problem:
        source = Problem.objects.get(slug="cpu-softmax")
        spec = source.spec | {
            "tests": source.spec["tests"][:SMALL_TESTS],
            "benchmark": source.spec["benchmark"] | SMALL_BENCHMARK,
        }
        problem, _ = Problem.objects.update_or_create(
            slug=BENCH_SLUG,
            defaults={
                "title": "grader_bench: small softmax",
                "statement_md": source.statement_md,
                "harness": source.harness,
                "entry_point": source.entry_point,
                "queue": source.queue,
                "starter_code": source.starter_code,
                "reference_code": source.reference_code,
                "oracle_code": source.oracle_code,
                "inputs_code": source.inputs_code,
                "spec": spec,
                "published": False,
            },
        )
        return problem

    def _worker_start(self) -> subprocess.Popen:
        hostname = f"bench-{uuid.uuid4().hex[:6]}@localhost"
        worker = subprocess.Popen(
            celery_worker_command("cpu,gpu", hostname, loglevel="WARNING"),
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + WORKER_START_TIMEOUT_S
        while not Worker.objects.filter(hostname=hostname).exists():
            if time.monotonic() > deadline or worker.poll() is not None:
                os.killpg(worker.pid, signal.SIGKILL)
                raise CommandError("the bench worker did not start")
            time.sleep(0.2)
        return worker

    def _submit(self, user, problem: Problem, code: str) -> Submission:
        return submission_create(user=user, problem=problem, code=code, allow_unpublished=True)

    def _wait(self, submission_id: int) -> Submission:
        deadline = time.monotonic() + VERDICT_TIMEOUT_S
        while time.monotonic() < deadline:
            submission = Submission.objects.get(pk=submission_id)
            if submission.state == Submission.State.GRADED:
                return submission
            time.sleep(0.02)
        raise CommandError(f"submission {submission_id} was not graded in {VERDICT_TIMEOUT_S} s")

    def _latency(self, user, problem: Problem, code: str, n: int) -> tuple[float, float]:
        latencies = []
        for _ in range(n):
            started = time.perf_counter()
            graded = self._wait(self._submit(user, problem, code).pk)
            latencies.append(time.perf_counter() - started)
            if graded.verdict != "accepted":
                raise CommandError(
                    f"bench submission {graded.pk}: {graded.verdict} {graded.message}"
                )
        return percentile(latencies, 0.5), percentile(latencies, 0.95)

    def _throughput(self, user, problem: Problem, code: str, n: int) -> float:
        started = time.perf_counter()
        ids = [self._submit(user, problem, code).pk for _ in range(n)]
        for submission_id in ids:
            self._wait(submission_id)
        return n / (time.perf_counter() - started) * 60

    def _sandbox_startup(self, problem: Problem, n: int) -> tuple[float, float]:
        spec = problem.as_spec()
        harness_class = harness_get(spec.harness)
        harness = harness_class(spec)
        durations = []
        for _ in range(n):
            started = time.perf_counter()
            with SandboxSession(
                harness_class, spec.reference_code, spec.entry_point, spec.limits
            ) as session:
                session.start(harness.shared_bytes())
            durations.append(time.perf_counter() - started)
        return percentile(durations, 0.5), percentile(durations, 0.95)
