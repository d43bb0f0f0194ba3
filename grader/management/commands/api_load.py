"""``manage.py api_load``: many simulated users on the running stack, then an exactly-once check.

Each user browses problems and questions, answers questions, and submits code once through the
API, as a person practising would; the command reports API latency percentiles and the error
rate, waits for the queue to drain, and checks that every accepted submission reached a final
state with exactly one final event. Start the stack first (``make run``, with DATABASE_URL and
REDIS_URL for the real services); the command talks to it over loopback only.
"""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Q

from grader.access import api_token_create
from grader.bank import PROBLEMS_DIR
from grader.harnesses.timing import percentile
from grader.models import Submission, SubmissionEvent

# A person reads a page for a while before the next click.
THINK_TIME_S = (0.5, 2.0)
REQUEST_TIMEOUT_S = 30
# How long the queue may take to drain after the load stops before the check fails.
DRAIN_TIMEOUT_S = 900
LOADTEST_PREFIX = "loadtest-"


class Command(BaseCommand):
    help = "Simulate many API users on loopback for a while; report latency, errors, exactly-once."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--users", type=int, default=50)
        parser.add_argument("--duration", type=float, default=120.0, help="seconds of load")
        parser.add_argument("--json", type=Path, dest="json_path", help="write the results here")
        parser.add_argument("--seed", type=int, default=0)

    def handle(
        self,
        *args,
        base_url: str,
        users: int,
        duration: float,
        json_path: Path | None,
        seed: int,
        **options,
    ) -> None:
        if not base_url.startswith(("http://127.", "http://localhost", "http://[::1]")):
            raise CommandError("api_load only targets a server on this machine's loopback")
        tokens = [self._token(f"{LOADTEST_PREFIX}{index}") for index in range(users)]
        code = (PROBLEMS_DIR / "cpu-softmax" / "reference.py").read_text()
        stats = Stats()
        started_at = time.time()
        deadline = time.monotonic() + duration
        threads = [
            threading.Thread(
                target=simulate_user,
                args=(base_url, token, code, deadline, random.Random(seed + i), stats),
                daemon=True,
            )
            for i, token in enumerate(tokens)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        load_s = time.time() - started_at
        self.stdout.write(
            f"load done after {load_s:.0f} s; waiting for {len(stats.submission_ids)} submissions to finish"
        )
        drained_s, check = self._drain_and_check(stats.submission_ids)
        result = (
            stats.summary()
            | {"users": users, "duration_s": round(load_s, 1), "drain_s": round(drained_s, 1)}
            | check
        )
        self._print(result)
        if json_path:
            json_path.write_text(json.dumps(result, indent=2))
        if check["not_final"] or check["final_events_not_one"]:
            raise CommandError("exactly-once check failed")

    def _token(self, username: str) -> str:
        user, _ = get_user_model().objects.get_or_create(username=username)
        return api_token_create(user, "api_load")[1]

    def _drain_and_check(self, submission_ids: list[int]) -> tuple[float, dict]:
        started = time.monotonic()
        final = [Submission.State.GRADED, Submission.State.ABORTED]
        while time.monotonic() - started < DRAIN_TIMEOUT_S:
            if (
                not Submission.objects.filter(pk__in=submission_ids)
                .exclude(state__in=final)
                .exists()
            ):
                break
            time.sleep(1)
        rows = Submission.objects.filter(pk__in=submission_ids).annotate(
            final_events=Count(
                "events",
                filter=Q(
                    events__kind__in=[SubmissionEvent.Kind.DONE, SubmissionEvent.Kind.ABORTED]
                ),
            )
        )
        verdicts: dict[str, int] = defaultdict(int)
        for row in rows:
            verdicts[row.verdict or row.state] += 1
        return time.monotonic() - started, {
            "submissions": len(submission_ids),
            "not_final": rows.exclude(state__in=final).count(),
            "final_events_not_one": rows.exclude(final_events=1).count(),
            "verdicts": dict(verdicts),
        }

    def _print(self, result: dict) -> None:
        self.stdout.write(
            f"{'endpoint':34} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8} {'5xx/err':>8} {'429/503':>8}"
        )
        for name, row in result["endpoints"].items():
            self.stdout.write(
                f"{name:34} {row['requests']:>8} {row['p50_ms']:>8.1f} {row['p95_ms']:>8.1f} {row['errors']:>8} {row['limited']:>8}"
            )
        total = result["total"]
        self.stdout.write(
            f"{'all':34} {total['requests']:>8} {total['p50_ms']:>8.1f} {total['p95_ms']:>8.1f} {total['errors']:>8} {total['limited']:>8}"
        )
        self.stdout.write(
            f"users {result['users']}, {result['duration_s']} s of load, error rate {total['error_rate']:.4%}; "
            f"{result['submissions']} submissions, all final: {result['not_final'] == 0}, "
            f"exactly one final event each: {result['final_events_not_one'] == 0}, drained in {result['drain_s']} s, "
            f"verdicts {result['verdicts']}"
        )


class Stats:
    """Thread-safe latency and status counts per endpoint."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency_ms: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.limited: dict[str, int] = defaultdict(int)
        self.submission_ids: list[int] = []

    def record(self, name: str, elapsed_ms: float, status: int) -> None:
        with self.lock:
            self.latency_ms[name].append(elapsed_ms)
            if status in (429, 503):
                self.limited[name] += 1
            elif status >= 500 or status == 0:
                self.errors[name] += 1

    def summary(self) -> dict:
        endpoints = {
            name: self._row(name, values) for name, values in sorted(self.latency_ms.items())
        }
        every = [v for values in self.latency_ms.values() for v in values]
        total = self._row("", every) | {
            "errors": sum(self.errors.values()),
            "limited": sum(self.limited.values()),
        }
        total["error_rate"] = total["errors"] / max(1, total["requests"])
        return {"endpoints": endpoints, "total": total}

    def _row(self, name: str, values: list[float]) -> dict:
        return {
            "requests": len(values),
            "p50_ms": percentile(values, 0.50),
            "p95_ms": percentile(values, 0.95),
            "errors": self.errors.get(name, 0),
            "limited": self.limited.get(name, 0),
        }


def _call(
    base_url: str,
    token: str,
    stats: Stats,
    name: str,
    method: str,
    path: str,
    body: dict | None = None,
    headers: dict | None = None,
):
    request = urllib.request.Request(
        base_url + path, method=method, data=json.dumps(body).encode() if body is not None else None
    )
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    started = time.perf_counter()
    status, payload = 0, None
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
            status, payload = response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        status = error.code
    except (urllib.error.URLError, TimeoutError, ConnectionError):
        status = 0
    stats.record(name, (time.perf_counter() - started) * 1000, status)
    return status, payload


def simulate_user(
    base_url: str, token: str, code: str, deadline: float, rng: random.Random, stats: Stats
) -> None:
    """Browse, answer and submit once, with think time, until the deadline."""
    submit_after = time.monotonic() + rng.uniform(0, max(1.0, deadline - time.monotonic()) * 0.6)
    submitted = False
    call = lambda *args, **kwargs: _call(base_url, token, stats, *args, **kwargs)  # noqa: E731
    while time.monotonic() < deadline:
        call("GET /api/problems", "GET", "/api/problems")
        status, questions = call("GET /api/questions", "GET", "/api/questions")
        if status == 200 and questions:
            question = rng.choice(questions)["id"]
            status, drawn = call("GET /api/questions/{id}", "GET", f"/api/questions/{question}")
            if status == 200:
                answer = {"token": drawn["token"]}
                if drawn["type"] == "single_choice":
                    answer["choice"] = 0
                elif drawn["type"] == "multiple_choice":
                    answer["choices"] = [0]
                elif drawn["type"] in ("numeric", "parametric"):
                    answer["value"] = 1.0
                else:
                    answer["text"] = (
                        "The KV cache keeps keys and values so decode reads them instead of recomputing."
                    )
                call(
                    "POST /api/questions/{id}/answer",
                    "POST",
                    f"/api/questions/{question}/answer",
                    answer,
                )
        if not submitted and time.monotonic() >= submit_after:
            status, created = call(
                "POST /api/submissions",
                "POST",
                "/api/submissions",
                {"problem": "cpu-softmax", "code": code},
                {"Idempotency-Key": str(uuid.uuid4())},
            )
            if status in (200, 201):
                submitted = True
                with stats.lock:
                    stats.submission_ids.append(created["id"])
                call("GET /api/submissions/{id}", "GET", f"/api/submissions/{created['id']}")
        time.sleep(rng.uniform(*THINK_TIME_S))
