"""``manage.py serve``: the ASGI server and one Celery worker, supervised together.

The web server is the site: when it exits, serve stops. The worker may die (killed, out of
memory, its broker's disk gone) without taking the site down: serve says so at once (it
forgets the worker's heartbeat, so pages and /healthz tell users no worker is running, and
writes ``SERVE_WORKER_STATE_PATH`` for /healthz) and starts it again after a back-off.
"""

import json
import os
import socket
import subprocess
import sys
import time
from datetime import timedelta

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.utils import timezone

from grader import workers


def worker_state_write(state: str, **fields) -> None:
    """Tell /healthz how the supervised worker is (``running`` or ``restarting``)."""
    path = settings.SERVE_WORKER_STATE_PATH
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps({"state": state, "serve_pid": os.getpid()} | fields))
    partial.replace(path)


def prepare_steps() -> None:
    """What ``serve --prepare`` (``make run``) does before serving: migrate, load the shipped
    bank (which keeps every author's edit) and ensure the demo account (unless
    ``DEMO_ACCOUNT=0``)."""
    call_command("migrate", interactive=False)
    call_command("load_bank")
    if settings.DEMO_ACCOUNT:
        call_command("ensure_demo_user")


class Command(BaseCommand):
    help = "Run the ASGI server and one Celery worker (restarted if it dies); Ctrl-C stops both."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument(
            "--prepare",
            action="store_true",
            help="first migrate, load the bank and ensure the demo account, in this process "
            "(one start of Django instead of four: make run's warm start)",
        )
        parser.add_argument(
            "--proxy-headers",
            action="store_true",
            help="take the client's address from the proxy's X-Forwarded-For (log-in limits "
            "count per client): only where the proxy is the one way in",
        )
        parser.add_argument(
            "--no-worker",
            action="store_true",
            help="serve the site alone: its workers run elsewhere (manage.py worker, "
            "gpu_worker), as in deploy/",
        )

    def handle(
        self,
        *args,
        host: str,
        port: int,
        prepare: bool,
        no_worker: bool = False,
        proxy_headers: bool = False,
        **options,
    ) -> None:
        if prepare:
            prepare_steps()
        python = sys.executable
        queues = ",".join(settings.CELERY_WORKER_QUEUES)
        self.worker_hostname = f"worker-{os.getpid()}@{socket.gethostname()}"
        web = [python, "-m", "daphne", "-b", host, "-p", str(port)]
        web += ["--proxy-headers"] if proxy_headers else []
        web += ["interview.asgi:application"]
        self.worker_command = workers.celery_worker_command(queues, self.worker_hostname)
        # Own sessions, so a Ctrl-C in the terminal reaches only this command, which then
        # stops the children in order instead of both racing to shut down.
        children = {"web": subprocess.Popen(web, start_new_session=True)}
        if not no_worker:
            children["worker"] = self._worker_start()
        if settings.JUDGE_WARM_UP:
            # Embeds the rubric texts the next start's server reads (none after the first
            # start, unless the bank changed), at a low priority beside the site.
            warm = ["nice", "-n", "10", python, str(settings.BASE_DIR / "manage.py"), "warm_judge"]
            children["judge"] = subprocess.Popen(warm, start_new_session=True)
        where = "workers elsewhere" if no_worker else f"worker on queues {queues}"
        self.stdout.write(f"InferPrep on http://{host}:{port}/ ({where}); Ctrl-C stops")

        stop = workers.stop_on_signals()
        exit_code = 0
        exits = 0  # the worker's exits in a row, each waited for longer
        restart_at = 0.0
        while not stop.is_set():
            if children["web"].poll() is not None:
                exit_code = children["web"].returncode or 1
                self.stderr.write(f"web exited with code {exit_code}; stopping")
                break
            worker = children.get("worker")
            if worker is not None and worker.poll() is not None:
                del children["worker"]
                if time.monotonic() - self.worker_started >= workers.WORKER_HEALTHY_RUN_S:
                    exits = 0
                wait_s = workers.restart_wait_s(exits)
                exits += 1
                restart_at = time.monotonic() + wait_s
                self._worker_exited(worker.returncode, exits, wait_s)
            if not no_worker and "worker" not in children and time.monotonic() >= restart_at:
                children["worker"] = self._worker_start()
            time.sleep(workers.POLL_S)
        self._stop(children)
        settings.SERVE_WORKER_STATE_PATH.unlink(missing_ok=True)
        if exit_code:
            sys.exit(exit_code)

    def _worker_start(self) -> subprocess.Popen:
        worker = subprocess.Popen(self.worker_command, start_new_session=True)
        self.worker_started = time.monotonic()
        worker_state_write("running", hostname=self.worker_hostname, pid=worker.pid)
        return worker

    def _worker_exited(self, code: int, exits: int, wait_s: float) -> None:
        from grader.services import worker_gone

        self.stderr.write(f"worker exited with code {code}; starting it again in {wait_s} s")
        worker_state_write(
            "restarting",
            hostname=self.worker_hostname,
            exit_code=code,
            restarts=exits,
            restart_at=(timezone.now() + timedelta(seconds=wait_s)).isoformat(),
        )
        try:
            # A killed worker could not say goodbye: without this it would look alive for
            # WORKER_ALIVE_S more, and pages would promise grading that is not coming.
            worker_gone(self.worker_hostname)
        except Exception as error:  # the database may be what killed it; /healthz says so
            self.stderr.write(f"could not mark the worker gone: {error}")

    def _stop(self, children: dict[str, subprocess.Popen]) -> None:
        workers.children_stop(children, self.stderr.write)
        self.stdout.write("stopped")
