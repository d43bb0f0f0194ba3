"""``manage.py api_load``: many simulated users on the running stack, a broker outage in the
middle, then an exactly-once check.

Each user browses, answers practice questions through the API, submits code through the API
and through the problem page (as the page's script does, with an idempotency key), and runs a
mock interview through its pages (concept answers, a coding round's submit, finish), with
think time. Halfway through, the broker goes away for a while: the command stops and starts
it with the given shell commands (a Redis of your own: never a shared one), or, for the
filesystem broker, puts a file where its folder was (every write to it fails) and puts the
folder back. After the load it waits for the queue to drain and checks, against the
database: no 5xx answer, no submission lost (accepted but not stored) or duplicated (stored
twice, or stored without being accepted), and every submission final with exactly one final
event. Prints a table, writes JSON, and exits non-zero when a check fails.

Start the stack first (``manage.py serve``, with DATABASE_URL and REDIS_URL for the real
services) and run this with the same settings; it talks to it over loopback only.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from http.cookiejar import CookieJar
from pathlib import Path

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Q
from django.utils import timezone

from grader.access import api_token_create
from grader.bank import PROBLEMS_DIR
from grader.harnesses.timing import percentile
from grader.models import Submission, SubmissionEvent

# A person reads a page for a while before the next click.
THINK_TIME_S = (0.5, 2.0)
REQUEST_TIMEOUT_S = 30
# A submit that got no answer, or a 5xx, is sent again (a 503 after its Retry-After) with the
# same idempotency key.
SUBMIT_TRIES = 4
# The longest a client waits on a 503's Retry-After before trying again.
MAX_RETRY_AFTER_S = 30
# A 503 this soon after the broker came back still counts as the outage's.
OUTAGE_SETTLE_S = 5
# How long the queue may take to drain after the load stops before the check fails.
DRAIN_TIMEOUT_S = 1200
LOADTEST_PREFIX = "loadtest-"
PROBLEM = "cpu-softmax"
# What users submit, in turn: most fail fast (as most tries do), some are graded in full.
CODES = {
    "reference": (PROBLEMS_DIR / PROBLEM / "reference.py").read_text(),
    "wrong": (PROBLEMS_DIR / PROBLEM / "wrong" / "wrong_axis.py").read_text(),
    "syntax-error": "def softmax(x):\n    return x.sum(\n",
}
CODE_MIX = ["syntax-error", "wrong", "syntax-error", "reference"]
FORM_ACTION = re.compile(r'action="(/loops/\d+/items/\d+/answer/)"')


class Command(BaseCommand):
    help = "Simulate many users on loopback with a broker outage; check exactly-once grading."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--users", type=int, default=50)
        parser.add_argument("--duration", type=float, default=120.0, help="seconds of load")
        parser.add_argument(
            "--submits-per-user", type=int, default=2, help="API and page submits, alternating"
        )
        parser.add_argument("--outage-s", type=float, default=20.0, help="0: no outage")
        parser.add_argument("--broker-stop-cmd", default="", help="stops the broker (Redis)")
        parser.add_argument("--broker-start-cmd", default="", help="starts it again")
        parser.add_argument("--json", type=Path, dest="json_path", help="write the results here")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, base_url: str, users: int, duration: float, **options) -> None:
        if not base_url.startswith(("http://127.", "http://localhost", "http://[::1]")):
            raise CommandError("api_load only targets a server on this machine's loopback")
        outage = _outage(options)
        stats = Stats()
        clients = [self._client(base_url, index, stats) for index in range(users)]
        started_at, since = time.time(), timezone.now()
        deadline = time.monotonic() + duration
        threads = [
            threading.Thread(
                target=simulate_user,
                args=(client, options["submits_per_user"], deadline, random.Random(seed)),
                daemon=True,
            )
            for seed, client in enumerate(clients, start=options["seed"])
        ]
        if outage:
            threads.append(threading.Thread(target=outage.run, args=(duration, stats), daemon=True))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        load_s = time.time() - started_at
        self.stdout.write(f"load done after {load_s:.0f} s; waiting for the queue to drain")
        drained_s, check = _drain_and_check(clients, since)
        result = (
            stats.summary()
            | {
                "users": users,
                "duration_s": round(load_s, 1),
                "drain_s": round(drained_s, 1),
                "broker": settings.CELERY_BROKER_URL.split(":")[0],
                "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
                "outage": stats.outage,
            }
            | check
        )
        self._print(result)
        if options["json_path"]:
            options["json_path"].write_text(json.dumps(result, indent=2))
        failed = [
            name
            for name in ("lost", "duplicated", "not_final", "final_events_not_one")
            if result[name]
        ]
        if result["total"]["errors"]:
            failed.append("5xx or no answer")
        if result["unavailable_outside_outage"]:
            failed.append("503 outside the outage")
        if failed:
            raise CommandError(f"checks failed: {', '.join(failed)}")

    def _client(self, base_url: str, index: int, stats: Stats) -> UserClient:
        user, _ = get_user_model().objects.get_or_create(username=f"{LOADTEST_PREFIX}{index}")
        # A session made here, as a log-in would make it: the load is on the site, not on
        # password hashing.
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        return UserClient(
            base_url=base_url,
            user_id=user.pk,
            token=api_token_create(user, "api_load")[1],
            session_key=session.session_key,
            stats=stats,
        )

    def _print(self, result: dict) -> None:
        self.stdout.write(
            f"{'request':36} {'count':>6} {'p50 ms':>8} {'p95 ms':>8} {'5xx/err':>7} {'429/503':>7}"
        )
        for name, row in [*result["endpoints"].items(), ("all", result["total"])]:
            self.stdout.write(
                f"{name:36} {row['requests']:>6} {row['p50_ms']:>8.1f} {row['p95_ms']:>8.1f} "
                f"{row['errors']:>7} {row['limited']:>7}"
            )
        self.stdout.write(
            f"{result['database']} + {result['broker']}: {result['users']} users, "
            f"{result['duration_s']} s of load, broker outage {result['outage']} "
            f"({result['unavailable']} 503s, {result['unavailable_outside_outage']} outside it); "
            f"{result['submissions']} submissions ({result['by_path']}), lost {result['lost']}, "
            f"duplicated {result['duplicated']}, not final {result['not_final']}, final events "
            f"not one {result['final_events_not_one']}; drained in {result['drain_s']} s; "
            f"verdicts {result['verdicts']}"
        )


class Stats:
    """Thread-safe latency and status counts per request kind."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency_ms: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.limited: dict[str, int] = defaultdict(int)
        self.outage: dict = {}
        self.started = time.monotonic()
        self.unavailable_at_s: list[float] = []  # when each 503 came, from the start

    def record(self, name: str, elapsed_ms: float, status: int) -> None:
        with self.lock:
            self.latency_ms[name].append(elapsed_ms)
            if status == 503:
                self.unavailable_at_s.append(time.monotonic() - self.started)
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
        begin = self.outage.get("from_s", 0.0)
        end = begin + self.outage.get("seconds", 0.0) + OUTAGE_SETTLE_S
        outside = [at for at in self.unavailable_at_s if not begin <= at <= end]
        return {
            "endpoints": endpoints,
            "total": total,
            "unavailable": len(self.unavailable_at_s),
            "unavailable_outside_outage": len(outside),
        }

    def _row(self, name: str, values: list[float]) -> dict:
        return {
            "requests": len(values),
            "p50_ms": percentile(values, 0.50) if values else 0.0,
            "p95_ms": percentile(values, 0.95) if values else 0.0,
            "errors": self.errors.get(name, 0),
            "limited": self.limited.get(name, 0),
        }


@dataclass
class UserClient:
    """One simulated person: an API token and a signed-in browser session."""

    base_url: str
    user_id: int
    token: str
    session_key: str
    stats: Stats
    submitted: set[int] = field(default_factory=set)  # ids the API or the page answered with
    loop_submits: int = 0  # coding-round submits the page confirmed
    unsure: int = 0  # submits that never got an answer: stored or not, nobody knows
    retry_after_s: float = 1.0  # the last Retry-After this client was given

    def __post_init__(self) -> None:
        self.cookies = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))
        host = urllib.parse.urlsplit(self.base_url).hostname
        self.cookies.set_cookie(_cookie(host, settings.SESSION_COOKIE_NAME, self.session_key))

    def csrf(self) -> str:
        return next((c.value for c in self.cookies if c.name == settings.CSRF_COOKIE_NAME), "")

    def call(
        self,
        name: str,
        method: str,
        path: str,
        body: dict | None = None,
        form: dict | None = None,
        headers: dict | None = None,
        api: bool = False,
    ) -> tuple[int, str]:
        """One request, timed and counted under ``name``: (status, body); status 0 when no
        answer came."""
        data = None
        request_headers = dict(headers or {})
        if body is not None:
            data = json.dumps(body).encode()
            request_headers["Content-Type"] = "application/json"
        elif form is not None:
            data = urllib.parse.urlencode(form | {"csrfmiddlewaretoken": self.csrf()}).encode()
            request_headers["Content-Type"] = "application/x-www-form-urlencoded"
        if api:
            request_headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers=request_headers
        )
        opener = urllib.request.build_opener() if api else self.opener
        started = time.perf_counter()
        status, text = 0, ""
        try:
            with opener.open(request, timeout=REQUEST_TIMEOUT_S) as response:
                status, text = response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode(errors="replace")
            self.retry_after_s = float(error.headers.get("Retry-After") or 1)
        except (urllib.error.URLError, TimeoutError, ConnectionError):
            status = 0
        self.stats.record(name, (time.perf_counter() - started) * 1000, status)
        return status, text


def _cookie(host: str, name: str, value: str):
    from http.cookiejar import Cookie

    return Cookie(
        0, name, value, None, False, host, False, False, "/", True, False, None, False, None,
        None, {},
    )  # fmt: skip


def _submit_until_answered(client: UserClient, send) -> int | None:
    """Send a submit (``send()`` -> (status, body)) as a careful client does: again after
    Retry-After on a 503 (nothing was stored), again at once with the same idempotency key
    when no answer or another 5xx came; the submission's id when it was accepted."""
    unanswered = False
    for _ in range(SUBMIT_TRIES):
        status, text = send()
        if status in (200, 201):
            return json.loads(text)["id"]
        if status == 503:
            time.sleep(min(client.retry_after_s, MAX_RETRY_AFTER_S))
        elif 0 < status < 500:
            return None  # refused by a limit or a rule: nothing stored
        else:
            unanswered = True
    client.unsure += unanswered
    return None


def practice_answer(client: UserClient, rng: random.Random) -> None:
    status, text = client.call("GET /api/questions", "GET", "/api/questions", api=True)
    if status != 200 or not json.loads(text):
        return
    question = rng.choice(json.loads(text))["id"]
    status, text = client.call(
        "GET /api/questions/{id}", "GET", f"/api/questions/{question}", api=True
    )
    if status != 200:
        return
    drawn = json.loads(text)
    answer = {"token": drawn["token"]}
    if drawn["type"] == "single_choice":
        answer["choice"] = 0
    elif drawn["type"] == "multiple_choice":
        answer["choices"] = [0]
    elif drawn["type"] in ("numeric", "parametric"):
        answer["value"] = 1.0
    else:
        answer["text"] = "The KV cache keeps keys and values so decode reads them, not recomputes."
    client.call(
        "POST /api/questions/{id}/answer",
        "POST",
        f"/api/questions/{question}/answer",
        body=answer,
        api=True,
    )


def api_submit(client: UserClient, code: str) -> None:
    key = str(uuid.uuid4())
    submission_id = _submit_until_answered(
        client,
        lambda: client.call(
            "POST /api/submissions",
            "POST",
            "/api/submissions",
            body={"problem": PROBLEM, "code": code},
            headers={"Idempotency-Key": key},
            api=True,
        ),
    )
    if submission_id is not None:
        client.submitted.add(submission_id)
        client.call(
            "GET /api/submissions/{id}", "GET", f"/api/submissions/{submission_id}", api=True
        )


def page_submit(client: UserClient, code: str) -> None:
    client.call("GET /problems/{slug}/", "GET", f"/problems/{PROBLEM}/")
    key = str(uuid.uuid4())
    submission_id = _submit_until_answered(
        client,
        lambda: client.call(
            "POST /problems/{slug}/submit/",
            "POST",
            f"/problems/{PROBLEM}/submit/",
            form={"code": code, "idempotency_key": key},
            headers={"Accept": "application/json"},
        ),
    )
    if submission_id is not None:
        client.submitted.add(submission_id)
        client.call("GET /submissions/{id}/", "GET", f"/submissions/{submission_id}/")


def loop_run(client: UserClient, code: str, rng: random.Random) -> None:
    """A 30-minute mock interview, hurried: every concept answered, one coding submit, finish."""
    client.call("GET /loops/", "GET", "/loops/")
    status, page = client.call(
        "POST /loops/start/", "POST", "/loops/start/", form={"level": "mid", "length_min": "30"}
    )
    match = re.search(r"/loops/(\d+)/", page)
    if status != 200 or match is None:
        return
    loop = match.group(1)
    for position in range(3):
        status, page = client.call(
            "GET /loops/{id}/rounds/{n}/", "GET", f"/loops/{loop}/rounds/{position}/"
        )
        if status != 200:
            continue
        for action in FORM_ACTION.findall(page):
            client.call(
                "POST /loops/{id}/items/{id}/answer/",
                "POST",
                action,
                form={"position": str(position), "choice": "0", "choices": "0", "value": "1",
                      "text": "Batching amortises the weight reads over more tokens."},
            )  # fmt: skip
        if 'id="round-code-form"' in page:
            for _ in range(SUBMIT_TRIES):
                status, page = client.call(
                    "POST /loops/{id}/rounds/{n}/submit/",
                    "POST",
                    f"/loops/{loop}/rounds/{position}/submit/",
                    form={"code": code},
                )
                if status != 503:
                    break
                time.sleep(min(client.retry_after_s, MAX_RETRY_AFTER_S))
            if status == 200 and "Submitted." in page:
                client.loop_submits += 1
            elif status == 0 or status > 503:
                client.unsure += 1
        time.sleep(rng.uniform(*THINK_TIME_S))
    client.call("POST /loops/{id}/finish/", "POST", f"/loops/{loop}/finish/", form={})


def simulate_user(client: UserClient, submits: int, deadline: float, rng: random.Random) -> None:
    """Browse, answer, submit through the API and the page, run one loop, until the deadline."""
    codes = [CODES[CODE_MIX[(client.user_id + i) % len(CODE_MIX)]] for i in range(submits + 1)]
    plan = ["api" if i % 2 == 0 else "page" for i in range(submits)] + ["loop"]
    rng.shuffle(plan)
    # Spread each user's steps over the run, so some land during the outage.
    at = sorted(
        time.monotonic() + rng.uniform(0, 0.8) * (deadline - time.monotonic()) for _ in plan
    )
    while time.monotonic() < deadline:
        client.call("GET /api/problems", "GET", "/api/problems", api=True)
        practice_answer(client, rng)
        if plan and time.monotonic() >= at[0]:
            step, code = plan.pop(), codes.pop()
            at.pop(0)
            if step == "api":
                api_submit(client, code)
            elif step == "page":
                page_submit(client, code)
            else:
                loop_run(client, code, rng)
        time.sleep(rng.uniform(*THINK_TIME_S))


class FolderOutage:
    """The filesystem broker's folder replaced by a file (every write fails), then put back."""

    def __init__(self) -> None:
        self.folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_out"])
        self.aside = self.folder.with_name(self.folder.name + ".outage")

    def stop(self) -> None:
        self.folder.rename(self.aside)
        self.folder.write_text("the broker's disk is gone (api_load outage)\n")

    def start(self) -> None:
        self.folder.unlink()
        self.aside.rename(self.folder)


class CommandOutage:
    """A broker stopped and started by shell commands (a Redis of your own)."""

    def __init__(self, stop_cmd: str, start_cmd: str) -> None:
        self.stop_cmd, self.start_cmd = stop_cmd, start_cmd

    def stop(self) -> None:
        subprocess.run(self.stop_cmd, shell=True, check=True)

    def start(self) -> None:
        subprocess.run(self.start_cmd, shell=True, check=True)


@dataclass
class Outage:
    """The broker away for ``seconds`` in the middle of the load."""

    broker: FolderOutage | CommandOutage
    seconds: float

    def run(self, duration_s: float, stats: Stats) -> None:
        begin_s = max(0.0, duration_s / 2 - self.seconds / 2)
        time.sleep(max(0.0, begin_s - (time.monotonic() - stats.started)))
        self.broker.stop()
        stopped_s = time.monotonic() - stats.started
        time.sleep(self.seconds)
        self.broker.start()
        down_s = time.monotonic() - stats.started - stopped_s
        stats.outage = {"from_s": round(stopped_s, 1), "seconds": round(down_s, 1)}


def _outage(options: dict) -> Outage | None:
    if not options["outage_s"]:
        return None
    if options["broker_stop_cmd"] and options["broker_start_cmd"]:
        broker = CommandOutage(options["broker_stop_cmd"], options["broker_start_cmd"])
    elif settings.CELERY_BROKER_URL == "filesystem://":
        broker = FolderOutage()
    else:
        raise CommandError(
            "to stop this broker, give --broker-stop-cmd and --broker-start-cmd (for a Redis "
            "of your own: never one others use), or --outage-s 0"
        )
    return Outage(broker, options["outage_s"])


def _drain_and_check(clients: list[UserClient], since: datetime) -> tuple[float, dict]:
    """Wait until every submission the load users made since ``since`` is final; compare the
    database with what the clients were told."""
    started = time.monotonic()
    final = [Submission.State.GRADED, Submission.State.ABORTED]
    mine = Submission.objects.filter(
        user_id__in=[c.user_id for c in clients], created_at__gte=since
    )
    while time.monotonic() - started < DRAIN_TIMEOUT_S:
        if not mine.exclude(state__in=final).exists():
            break
        time.sleep(1)
    rows = mine.annotate(
        final_events=Count(
            "events",
            filter=Q(events__kind__in=[SubmissionEvent.Kind.DONE, SubmissionEvent.Kind.ABORTED]),
        )
    )
    lost = duplicated = 0
    stored = defaultdict(lambda: {"ids": set(), "interview": 0})
    for row in rows.values("pk", "user_id", "purpose"):
        if row["purpose"] == Submission.Purpose.INTERVIEW:
            stored[row["user_id"]]["interview"] += 1
        else:
            stored[row["user_id"]]["ids"].add(row["pk"])
    for client in clients:
        mine_stored = stored[client.user_id]
        lost += len(client.submitted - mine_stored["ids"])
        lost += max(0, client.loop_submits - mine_stored["interview"])
        extra = len(mine_stored["ids"] - client.submitted)
        extra += max(0, mine_stored["interview"] - client.loop_submits)
        # A submit that got no answer may have been stored once: that one is not a duplicate.
        duplicated += max(0, extra - client.unsure)
    verdicts: dict[str, int] = defaultdict(int)
    for verdict, state in rows.values_list("verdict", "state"):
        verdicts[verdict or state] += 1
    return time.monotonic() - started, {
        "submissions": rows.count(),
        "by_path": {
            "api_and_page": sum(len(c.submitted) for c in clients),
            "loop_round": sum(c.loop_submits for c in clients),
        },
        "unanswered_submits": sum(c.unsure for c in clients),
        "lost": lost,
        "duplicated": duplicated,
        "not_final": rows.exclude(state__in=final).count(),
        "final_events_not_one": rows.exclude(final_events=1).count(),
        "verdicts": dict(verdicts),
    }
