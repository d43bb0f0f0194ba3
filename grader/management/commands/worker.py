"""``manage.py worker``: one Celery worker of this project on chosen queues, for a host that
runs workers only (deploy/: the CPU workers beside the web host, or on hosts of their own).

The same worker ``manage.py serve`` supervises (one job at a time, none reserved ahead, acks
late); here the process manager (Compose, systemd) restarts it. It replaces itself with Celery
(exec), so that manager's SIGTERM and SIGKILL reach the worker itself.
"""

from __future__ import annotations

import os
import socket

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from grader.workers import celery_worker_command


class Command(BaseCommand):
    help = "Run one Celery worker on the given queues (default CELERY_QUEUES: cpu,gpu)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--queues",
            default=",".join(settings.CELERY_WORKER_QUEUES),
            help="comma-separated queues, e.g. cpu (default: CELERY_QUEUES)",
        )
        parser.add_argument(
            "--hostname",
            default="",
            help="the worker's name in heartbeats (default: <first queue>-<pid>@<host name>)",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="print the worker it would start, check the database and broker, and exit",
        )

    def handle(self, *args, queues: str, hostname: str, dry_run: bool, **options) -> None:
        # A container's host name is its id, so replicas of one service get distinct names.
        name = hostname or f"{queues.split(',')[0]}-{os.getpid()}@{socket.gethostname()}"
        command = celery_worker_command(queues, name)
        self.stdout.write(f"{name} on queues {queues}")
        if dry_run:
            dry_run_check(self.stdout)
            return
        self.stdout.flush()
        os.execv(command[0], command)


def dry_run_check(stdout) -> None:
    """A worker host's check before its service is enabled: the sandbox starts (Django's start
    checks it) and the web host's database and broker answer; else say what does not."""
    from interview.health import services_problems

    if problems := services_problems():
        raise CommandError("; ".join(problems))
    stdout.write("the database and the broker answer")
