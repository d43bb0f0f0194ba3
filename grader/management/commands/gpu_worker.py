"""``manage.py gpu_worker``: one Celery worker per GPU of this host, each on its card's queue.

A GPU host may hold nothing but the code: the workers connect to the web host's database and
broker (``DATABASE_URL``, ``REDIS_URL``, or the options below; unset, the embedded defaults
for a one-host trial). Each card gets its own worker process pinned to it with
``CUDA_VISIBLE_DEVICES``, consuming its card class's queue (``gpu.h100``), one job at a time
(concurrency 1, prefetch 1, acks late: a job of a worker that dies is delivered again), and
advertising the card (name, memory, driver, CUDA, torch, Triton) in its heartbeat.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass

from django.core.management.base import BaseCommand, CommandError

from engine.hardware import Hardware, card_class, hardware_probe
from grader.management.commands.worker import dry_run_check
from grader.models import card_queue
from grader.workers import (
    POLL_S,
    WORKER_HEALTHY_RUN_S,
    celery_worker_command,
    children_stop,
    restart_wait_s,
    stop_on_signals,
)


@dataclass(frozen=True)
class GpuWorkerPlan:
    """One worker to start: the card it is pinned to and the queue it consumes."""

    device: str  # the CUDA_VISIBLE_DEVICES value that shows it this card alone
    card: str
    queue: str
    hostname: str


def gpu_workers_plan(
    hardware: Hardware, devices: list[int] | None, host: str, visible: str | None
) -> list[GpuWorkerPlan]:
    """A worker per card of ``hardware`` (or of the ``devices`` indices among them).

    ``visible`` is this process's own ``CUDA_VISIBLE_DEVICES``, whose entries the indices
    count in. No card (torch.cuda unavailable) plans no worker: a GPU worker with no card
    would advertise none and serve no card class.
    """
    entries = [entry.strip() for entry in visible.split(",")] if visible else None
    indices = range(len(hardware.gpus)) if devices is None else devices
    plans = []
    for index in indices:
        if not 0 <= index < len(hardware.gpus):
            raise ValueError(f"device {index}: this host shows {len(hardware.gpus)} GPU(s)")
        card = hardware.gpus[index].name
        queue = card_queue(card_class(card))
        plans.append(
            GpuWorkerPlan(
                device=entries[index] if entries else str(index),
                card=card,
                queue=queue,
                hostname=f"{queue}-{index}@{host}",
            )
        )
    return plans


class Command(BaseCommand):
    help = "Start one Celery worker per GPU (pinned with CUDA_VISIBLE_DEVICES) on its card's queue."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--devices", default="all", help="card indices to serve, e.g. 0,1 (default: all)"
        )
        parser.add_argument("--database-url", default=None, help="the web host's database")
        parser.add_argument("--redis-url", default=None, help="the web host's broker")
        parser.add_argument(
            "--dry-run", action="store_true", help="print the workers it would start and exit"
        )

    def handle(self, *args, devices: str, database_url, redis_url, dry_run: bool, **options):
        hardware = hardware_probe()
        indices = None if devices == "all" else [int(d) for d in devices.split(",") if d]
        try:
            plans = gpu_workers_plan(
                hardware, indices, socket.gethostname(), os.environ.get("CUDA_VISIBLE_DEVICES")
            )
        except ValueError as error:
            raise CommandError(str(error)) from None
        if not plans:
            raise CommandError(
                "no GPU is visible to torch here (torch.cuda is not available): a GPU worker "
                "would advertise no card; kernel problems are checked for correctness only "
                "by the cpu queue's workers (manage.py worker --queues cpu, or serve)"
            )
        env = os.environ.copy()
        if database_url:
            env["DATABASE_URL"] = database_url
        if redis_url:
            env["REDIS_URL"] = redis_url
        for plan in plans:
            self.stdout.write(
                f"{plan.hostname}: {plan.card} (CUDA_VISIBLE_DEVICES={plan.device}) on {plan.queue}"
            )
        if dry_run:
            if database_url or redis_url:
                self.stdout.write("--database-url/--redis-url: not checked by the dry run")
            else:
                dry_run_check(self.stdout)
            return
        self._supervise(plans, env)

    def _supervise(self, plans: list[GpuWorkerPlan], env: dict[str, str]) -> None:
        """Run every card's worker; one that exits starts again after a back-off."""

        def start(plan: GpuWorkerPlan) -> tuple[subprocess.Popen, float]:
            child_env = env | {"CUDA_VISIBLE_DEVICES": plan.device}
            command = celery_worker_command(plan.queue, plan.hostname)
            return subprocess.Popen(
                command, env=child_env, start_new_session=True
            ), time.monotonic()

        running = {plan: start(plan) for plan in plans}
        exits = dict.fromkeys(plans, 0)
        restart_at: dict[GpuWorkerPlan, float] = {}
        stop = stop_on_signals()
        while not stop.is_set():
            for plan, (child, started) in list(running.items()):
                if child.poll() is None:
                    continue
                del running[plan]
                if time.monotonic() - started >= WORKER_HEALTHY_RUN_S:
                    exits[plan] = 0
                wait_s = restart_wait_s(exits[plan])
                exits[plan] += 1
                restart_at[plan] = time.monotonic() + wait_s
                self.stderr.write(
                    f"{plan.hostname} exited ({child.returncode}); again in {wait_s} s"
                )
            for plan, at in list(restart_at.items()):
                if time.monotonic() >= at:
                    del restart_at[plan]
                    running[plan] = start(plan)
            time.sleep(POLL_S)
        children_stop(
            {plan.hostname: child for plan, (child, _) in running.items()}, self.stderr.write
        )
