import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

# How long each child gets to finish its current request or job after Ctrl-C before it is
# killed; a grading job in flight is redelivered (acks_late), so nothing is lost by the kill.
STOP_GRACE_S = 10


class Command(BaseCommand):
    help = "Run the ASGI server and one Celery worker together; Ctrl-C stops both."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument(
            "--prepare",
            action="store_true",
            help="first migrate, load the bank and ensure the demo account, in this process "
            "(one start of Django instead of four: make run's warm start)",
        )

    def handle(self, *args, host: str, port: int, prepare: bool, **options) -> None:
        if prepare:
            call_command("migrate", interactive=False)
            call_command("load_bank")
            call_command("ensure_demo_user")
        python = sys.executable
        queues = ",".join(settings.CELERY_WORKER_QUEUES)
        commands = {
            "web": [
                python,
                "-m",
                "daphne",
                "-b",
                host,
                "-p",
                str(port),
                "interview.asgi:application",
            ],
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "interview",
                "worker",
                "--queues",
                queues,
                "--concurrency",
                "1",
                "--loglevel",
                "INFO",
                "--hostname",
                f"worker-{os.getpid()}@%h",
            ],
        }
        # Own sessions, so a Ctrl-C in the terminal reaches only this command, which then
        # stops the children in order instead of both racing to shut down.
        children = {
            name: subprocess.Popen(cmd, start_new_session=True) for name, cmd in commands.items()
        }
        self.stdout.write(
            f"InferPrep on http://{host}:{port}/ (worker on queues {queues}); Ctrl-C stops"
        )

        stopping = False

        def request_stop(signum, frame) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        exit_code = 0
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    self.stderr.write(f"{name} exited with code {child.returncode}; stopping")
                    exit_code = child.returncode or 1
                    stopping = True
            time.sleep(0.5)
        self._stop(children)
        if exit_code:
            sys.exit(exit_code)

    def _stop(self, children: dict[str, subprocess.Popen]) -> None:
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for name, child in children.items():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"{name} did not stop in {STOP_GRACE_S} s; killing it")
                child.kill()
                child.wait()
        self.stdout.write("stopped")
