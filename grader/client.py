"""`inferprep`: the command-line client of the grader API, for people who prefer their own editor.

It needs nothing but the standard library, so it runs anywhere Python does. The server address
and token come from flags, then the environment (INFERPREP_SERVER, INFERPREP_TOKEN), then the
config file written by `inferprep login` (~/.config/inferprep/config.json).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SERVER = "http://127.0.0.1:8000"
CONFIG_PATH = (
    Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "inferprep" / "config.json"
)
# A request that gets no answer in this time is retried (submissions with the same
# Idempotency-Key, so a retry never makes a duplicate).
REQUEST_TIMEOUT_S = 30
RETRIES = 3
# The event stream reconnects after a dropped connection, resuming from the last event seen.
STREAM_RECONNECTS = 20
FINAL_EVENTS = {"done", "aborted"}


class ClientError(Exception):
    """An error to show the user as it is, without a traceback."""


@dataclass
class Config:
    server: str
    token: str


def config_load(args: argparse.Namespace) -> Config:
    saved = json.loads(CONFIG_PATH.read_text()) if CONFIG_PATH.exists() else {}
    server = (
        args.server or os.environ.get("INFERPREP_SERVER") or saved.get("server") or DEFAULT_SERVER
    )
    token = args.token or os.environ.get("INFERPREP_TOKEN") or saved.get("token") or ""
    return Config(server=server.rstrip("/"), token=token)


def config_save(config: Config) -> None:
    CONFIG_PATH.parent.mkdir(parents=True, exist_ok=True)
    CONFIG_PATH.write_text(json.dumps({"server": config.server, "token": config.token}, indent=2))
    CONFIG_PATH.chmod(0o600)


class Api:
    def __init__(self, config: Config) -> None:
        self.config = config

    def _request(
        self, method: str, path: str, body: dict | None = None, headers: dict | None = None
    ):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.config.server + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.config.token:
            request.add_header("Authorization", f"Bearer {self.config.token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        return request

    def call(self, method: str, path: str, body: dict | None = None, headers: dict | None = None):
        """Send one request, retrying on timeouts, refused connections and 503s."""
        for attempt in range(1, RETRIES + 1):
            try:
                with urllib.request.urlopen(
                    self._request(method, path, body, headers), timeout=REQUEST_TIMEOUT_S
                ) as response:
                    payload = response.read()
                    return json.loads(payload) if payload else None
            except urllib.error.HTTPError as error:
                detail = _error_detail(error)
                if error.code in (429, 503) and attempt < RETRIES:
                    time.sleep(float(error.headers.get("Retry-After") or 2))
                    continue
                if error.code == 401:
                    # The server says why: no token, an unknown one, or one revoked.
                    hint = "" if "inferprep login" in detail else "; run `inferprep login`"
                    raise ClientError(f"{detail}{hint}") from None
                raise ClientError(f"{method} {path}: HTTP {error.code}: {detail}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
                if attempt == RETRIES:
                    raise ClientError(f"cannot reach {self.config.server}: {error}") from None
                time.sleep(attempt)
        raise AssertionError("unreachable")

    def events(self, submission_id: int) -> Iterator[dict]:
        """Yield a submission's progress events, reconnecting with Last-Event-ID when cut off."""
        last_id = ""
        for _ in range(STREAM_RECONNECTS):
            headers = {"Accept": "text/event-stream"}
            if last_id:
                headers["Last-Event-ID"] = last_id
            request = self._request(
                "GET", f"/api/submissions/{submission_id}/events", headers=headers
            )
            try:
                with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
                    for event in _parse_sse(response):
                        last_id = event.get("id", last_id)
                        yield event
                        if event.get("event") in FINAL_EVENTS:
                            return
            except (urllib.error.URLError, TimeoutError, ConnectionError):
                time.sleep(1)
        raise ClientError(
            "lost the event stream too many times; `inferprep status ID` shows the result"
        )


def _error_detail(error: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(error.read() or b"{}")
    except ValueError:
        return error.reason
    return body.get("detail") or body.get("message") or json.dumps(body)


def _parse_sse(response) -> Iterator[dict]:
    event: dict = {}
    for raw in response:
        line = raw.decode("utf-8").rstrip("\n").rstrip("\r")
        if not line:
            if "data" in event:
                event["data"] = json.loads(event["data"])
                yield event
            event = {}
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            event[field] = value[1:] if value.startswith(" ") else value


def progress_bar(done: int, total: int, width: int = 30) -> str:
    filled = int(width * done / total) if total else 0
    return "[" + "#" * filled + "." * (width - filled) + f"] {done}/{total}"


def print_table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print(
            "  ".join(
                str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )


def outcomes_table(outcomes: list[dict], noun: str) -> None:
    """A submission's tests or a Run's examples: name, verdict, time, the message's start."""
    rows = [
        [o["name"], o["verdict"], "" if o["time_ms"] is None else f"{o['time_ms']:.2f}"]
        + [o["message"][:80]]
        for o in outcomes
    ]
    if rows:
        print_table(rows, [noun, "verdict", "time ms", "message"])


def cmd_login(api: Api, args: argparse.Namespace) -> int:
    username = args.username or input("username: ")
    password = os.environ.get("INFERPREP_PASSWORD") or getpass.getpass("password: ")
    api.config.token = ""
    reply = api.call(
        "POST",
        "/api/auth/token",
        {"username": username, "password": password, "name": f"cli on {socket.gethostname()}"},
    )
    api.config.token = reply["token"]
    config_save(api.config)
    print(f"logged in to {api.config.server} as {username}; token saved to {CONFIG_PATH}")
    return 0


def cmd_problems(api: Api, args: argparse.Namespace) -> int:
    problems = api.call("GET", "/api/problems")
    print_table(
        [
            [
                p["slug"],
                p["title"],
                p["difficulty"],
                f"{p['expected_min']} min",
                p["harness"],
                p["queue"],
            ]
            for p in problems
        ],
        ["slug", "title", "difficulty", "time", "kind", "runs on"],
    )
    return 0


def cmd_show(api: Api, args: argparse.Namespace) -> int:
    problem = api.call("GET", f"/api/problems/{args.slug}")
    statement = problem["statement_md"]
    # Statements open with their own "# title" heading; only a bare one needs the title added.
    if not statement.lstrip().startswith("# "):
        statement = f"# {problem['title']}\n\n{statement}"
    print(statement)
    target = Path(args.output or f"{args.slug}.py")
    if target.exists() and not args.force:
        raise ClientError(
            f"{target} exists; use --force to overwrite it or -o to pick another file"
        )
    target.write_text(problem["starter_code"])
    print(f"\nstarter code written to {target}")
    return 0


def _read_code(file: str) -> str:
    path = Path(file)
    if not path.is_file():
        raise ClientError(f"{path}: no such file")
    return path.read_text(encoding="utf-8", errors="strict")


def _follow(api: Api, job_id: int) -> None:
    """Print a submission's or a Run's progress events until it is done."""
    for event in api.events(job_id):
        step = event["data"].get("data", {})
        if event.get("event") == "test" and step.get("total"):
            line = (
                f"{progress_bar(step['index'] - 1, step['total'])} running {step.get('name', '')}"
            )
        elif event.get("event") == "test_done" and step.get("total"):
            time_ms = "" if step.get("time_ms") is None else f" ({step['time_ms']:.2f} ms)"
            line = (
                f"{progress_bar(step['index'], step['total'])} {step.get('name', '')}: "
                f"{str(step.get('verdict', '')).replace('_', ' ')}{time_ms}"
            )
        else:
            line = str(event.get("event"))
        print(line, flush=True)


def cmd_submit(api: Api, args: argparse.Namespace) -> int:
    submission = api.call(
        "POST",
        "/api/submissions",
        {"problem": args.slug, "code": _read_code(args.file)},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    print(f"submission {submission['id']} queued")
    _follow(api, submission["id"])
    return show_result(api.call("GET", f"/api/submissions/{submission['id']}"))


def _custom_input(text: str, dtype: str) -> dict:
    """``--input``: rows as JSON (or @FILE holding them)."""
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as error:
            raise ClientError(f"--input {text}: {error}") from None
    try:
        values = json.loads(text)
    except ValueError as error:
        raise ClientError(f"--input: not JSON ({error}): write rows, e.g. [[1, 2, 3]]") from None
    return {"values": values, "dtype": dtype}


def cmd_run(api: Api, args: argparse.Namespace) -> int:
    inputs = [_custom_input(text, args.dtype) for text in args.input]
    run = api.call(
        "POST",
        "/api/runs",
        {"problem": args.slug, "code": _read_code(args.file), "inputs": inputs},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    print(f"run {run['id']} queued (the public examples only: no score)")
    _follow(api, run["id"])
    return show_run(api.call("GET", f"/api/runs/{run['id']}"))


def show_run(run: dict) -> int:
    """Each example's outcome, a wrong one's first mismatches, what the code printed; 0 only
    when every example passed."""
    outcomes_table(run.get("examples", []), "example")
    for example in run.get("examples", []):
        mismatches = example.get("details", {}).get("first_mismatches", [])
        if mismatches:
            print(f"\n{example['name']}: first values out of tolerance")
            print_table(
                [[str(m["index"]), repr(m["got"]), repr(m["expected"])] for m in mismatches],
                ["index", "yours", "expected"],
            )
        elif "output" in example.get("details", {}):
            print(f"\n{example['name']}: your output {example['details']['output']}")
    for stream in ("stdout", "stderr"):
        if run.get(stream):
            print(f"\n{stream}:\n{run[stream].rstrip()}")
    print(
        f"\nrun: {run['verdict'] or run['state']}"
        + (f"\n{run['message']}" if run.get("message") else "")
    )
    return 0 if run.get("verdict") == "accepted" else 1


def cmd_status(api: Api, args: argparse.Namespace) -> int:
    return show_result(api.call("GET", f"/api/submissions/{args.id}"))


def show_result(submission: dict) -> int:
    outcomes_table(submission.get("tests", []), "test")
    score = submission.get("score")
    print(
        f"\nverdict: {submission['verdict'] or submission['state']}"
        + (f"   score: {score:.3f}" if score is not None else "")
        + (f"\n{submission['message']}" if submission.get("message") else "")
    )
    return 0 if submission.get("verdict") == "accepted" else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inferprep", description=__doc__.splitlines()[0])
    parser.add_argument("--server", help=f"server address (default {DEFAULT_SERVER})")
    parser.add_argument("--token", help="API token (default: from `inferprep login`)")
    commands = parser.add_subparsers(dest="command", required=True)
    login = commands.add_parser("login", help="create an API token with your password and save it")
    login.add_argument("--username")
    login.set_defaults(handler=cmd_login)
    commands.add_parser("problems", help="list the coding problems").set_defaults(
        handler=cmd_problems
    )
    show = commands.add_parser("show", help="print a problem and write its starter code")
    show.add_argument("slug")
    show.add_argument("-o", "--output", help="file for the starter code (default SLUG.py)")
    show.add_argument("--force", action="store_true", help="overwrite the file if it exists")
    show.set_defaults(handler=cmd_show)
    submit = commands.add_parser("submit", help="submit a file and follow its grading")
    submit.add_argument("slug")
    submit.add_argument("file")
    submit.set_defaults(handler=cmd_submit)
    run = commands.add_parser(
        "run",
        help="run a file on the problem's public examples (and your own inputs): no grade, no "
        "score; the submission limits apply",
    )
    run.add_argument("slug")
    run.add_argument("file")
    run.add_argument(
        "--input",
        action="append",
        default=[],
        help="function problems: an input of your own, rows as JSON ('[[1, 2, 3]]', '\"-inf\"' "
        "for infinities) or @FILE; repeat for more",
    )
    run.add_argument("--dtype", default="float64", help="the inputs' dtype (default float64)")
    run.set_defaults(handler=cmd_run)
    status = commands.add_parser("status", help="show a submission's result")
    status.add_argument("id", type=int)
    status.set_defaults(handler=cmd_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(Api(config_load(args)), args)
    except ClientError as error:
        print(f"inferprep: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # A reader that stopped early (`inferprep show ... | head`): stop quietly, as `cat`
        # does; point stdout at /dev/null so the interpreter's final flush cannot raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
