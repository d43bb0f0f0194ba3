"""The GPU half of the site, end to end, on one host: the web app on its embedded defaults
(SQLite, the filesystem broker) with `manage.py gpu_worker`, driven through the API only.

It signs in, submits each kernel problem's reference and one wrong solution for the card
class the GPU worker advertises, waits for the verdicts, and prints a table (problem,
solution, verdict, TFLOP/s or GB/s, % of the card's measured peak, card, leaderboard row);
everything it read is written to $OUT/gpu_site_proof.json. Standard library only: the app's
own dependencies come from the carried wheels (benchmarks/gpu_site_proof.sh).

    benchmarks/gpu_site_proof.sh            # on the GPU host (one device command)
    benchmarks/gpu_site_proof.sh --no-gpu   # anywhere: correctness only on the CPU worker
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROBLEMS = REPO / "grader" / "problems"
# The web app answers within this after its start (Django, Daphne, the bank loaded).
WEB_START_S = 180
# A GPU worker has imported torch and sent its first heartbeat within this.
CARD_LIVE_S = 240
# How often the script looks at the site while it waits.
POLL_S = 1.0
FINAL_STATES = ("graded", "aborted")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Site:
    """The API of the site under test, with the token once signed in."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.token = ""

    def call(self, method: str, path: str, body: dict | None = None, headers=None):
        """(status, parsed JSON body, headers); network errors raise."""
        request = urllib.request.Request(
            self.base + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json", "Accept": "application/json"}
            | ({"Authorization": f"Bearer {self.token}"} if self.token else {})
            | (headers or {}),
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null"), response.headers
        except urllib.error.HTTPError as error:
            text = error.read()
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = {"detail": text.decode(errors="replace")[:500]}
            return error.code, parsed, error.headers


def wait_for(what: str, check, timeout_s: float, fatal: bool = True):
    """``check()``'s first truthy answer, polled; after ``timeout_s`` exits naming ``what``
    (or, not ``fatal``, says so and returns None)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            answer = check()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            answer = None
        if answer:
            return answer
        time.sleep(POLL_S)
    if not fatal:
        print(f"gave up after {timeout_s:.0f} s waiting for {what}")
        return None
    sys.exit(f"gave up after {timeout_s:.0f} s waiting for {what}")


def solutions_of(slug: str) -> list[tuple[str, str]]:
    """(name, code): the problem's reference and its first wrong solution."""
    wrong = sorted((PROBLEMS / slug / "wrong").glob("*.py"))[:1]
    files = [PROBLEMS / slug / "reference.py", *wrong]
    return [(str(f.relative_to(PROBLEMS / slug)), f.read_text()) for f in files]


def submit(site: Site, slug: str, name: str, code: str, card: str, deadline: float) -> dict:
    """POST one submission, waiting out the per-user limits (429 and 503 say when)."""
    body = {"problem": slug, "code": code, "card": card}
    key = f"proof-{slug}-{name}-{os.getpid()}"
    while True:
        status, answer, headers = site.call(
            "POST", "/api/submissions", body, {"Idempotency-Key": key}
        )
        if status in (200, 201):
            return answer
        if status in (429, 503) and time.monotonic() < deadline:
            time.sleep(float(headers.get("Retry-After") or 5))
            continue
        sys.exit(f"submitting {slug}/{name} answered {status}: {answer}")


def speed_text(result: dict) -> tuple[str, str]:
    """(speed, % of peak) as the table prints them; no number that was not measured."""
    speed = result["speed"]
    if not speed:
        return ("correctness only: no GPU" if result["verdict"] == "accepted" else "-"), "-"
    if speed["bound"] == "compute" and speed["tflop_per_s"]:
        figure = f"{speed['tflop_per_s']:,.1f} TFLOP/s"
    elif speed["gb_per_s"]:
        figure = f"{speed['gb_per_s']:,.0f} GB/s"
    else:
        figure = f"{speed['median_ms']:.4f} ms"
    peak = f"{speed['peak_pct']:.1f}" if speed["peak_pct"] is not None else "-"
    return figure, peak


def board_row(boards: list[dict], submission_id: int) -> str:
    for board in boards:
        for entry in board["entries"]:
            if entry["submission"] == submission_id:
                return f"#{entry['rank']} of {len(board['entries'])} on {board['hardware']}"
    return "not ranked"


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "-|-".join("-" * width for width in widths))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-gpu", action="store_true", help="no GPU worker: correctness only")
    parser.add_argument("--out", default=os.environ.get("OUT", "var/gpu-site"))
    parser.add_argument(
        "--deadline-s",
        type=float,
        default=480,
        help="stop waiting after this (a device command has 600 s)",
    )
    args = parser.parse_args()
    started = time.monotonic()
    deadline = started + args.deadline_s
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    var = Path(tempfile.mkdtemp(prefix="inferprep-proof-"))
    port = free_port()
    # The embedded defaults (no DATABASE_URL, no REDIS_URL): SQLite and the filesystem broker
    # under a fresh var/. The site's own worker takes the cpu queue; the GPU worker its card's.
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")} | {
        "INFERPREP_VAR_DIR": str(var),
        "JUDGE_WARM_UP": "0",
        "CELERY_QUEUES": "cpu",
        "WORKER_HEARTBEAT_S": "2",
        "PYTHONUNBUFFERED": "1",
    }
    manage = [sys.executable, str(REPO / "manage.py")]
    children: dict[str, subprocess.Popen] = {}

    def start(name: str, command: list[str]) -> None:
        log = (out / f"{name}.log").open("w")
        children[name] = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    report: dict = {"port": port, "var": str(var), "no_gpu": args.no_gpu}
    try:
        start("serve", [*manage, "serve", "--prepare", "--port", str(port)])
        if not args.no_gpu:
            start("gpu_worker", [*manage, "gpu_worker"])
        site = Site(f"http://127.0.0.1:{port}")

        def web_up():
            for name, child in children.items():
                if child.poll() is not None:
                    sys.exit(f"{name} exited with {child.returncode}: see {out / (name + '.log')}")
            return site.call("GET", "/healthz")[0] in (200, 503)

        wait_for("the web app", web_up, WEB_START_S)
        password = (var / "demo-password.txt").read_text().strip()
        status, token, _ = site.call(
            "POST", "/api/auth/token", {"username": "demo", "password": password, "name": "proof"}
        )
        if status != 201:
            sys.exit(f"signing in answered {status}: {token}")
        site.token = token["token"]
        kernels = [
            p["slug"] for p in site.call("GET", "/api/problems")[1] if p["harness"] == "kernel"
        ]
        if args.no_gpu:
            card = "cpu"
        else:

            def card_live():
                web_up()
                return site.call("GET", f"/api/problems/{kernels[0]}")[1]["cards"]

            cards = wait_for("a GPU worker's heartbeat", card_live, CARD_LIVE_S)
            card = cards[0]["queue"]
            report["cards"] = cards
        print(f"signed in as demo; kernel problems {', '.join(kernels)}; grading on {card}")
        submitted = [
            (slug, name, submit(site, slug, name, code, card, deadline))
            for slug in kernels
            for name, code in solutions_of(slug)
        ]
        results = []
        for slug, name, first in submitted:

            def graded(submission_id=first["id"]):
                answer = site.call("GET", f"/api/submissions/{submission_id}")[1]
                return answer if answer["state"] in FINAL_STATES else None

            left_s = max(1.0, deadline - time.monotonic())
            result = wait_for(f"{slug}/{name}'s verdict", graded, left_s, fatal=False)
            if result is None:  # out of time: the table shows where it stood
                result = site.call("GET", f"/api/submissions/{first['id']}")[1]
            results.append((slug, name, result))
            elapsed_s = time.monotonic() - started
            print(f"{slug}/{name}: {result['verdict'] or result['state']} at {elapsed_s:.0f} s")
            print(f"  {result['message'][:300]}")
        boards = {slug: site.call("GET", f"/api/leaderboards/{slug}")[1] for slug in kernels}
        report["health"] = site.call("GET", "/healthz")[1]
        rows = [["problem", "solution", "verdict", "speed", "% of peak", "card", "leaderboard row"]]
        for slug, name, result in results:
            figure, peak = speed_text(result)
            rows.append(
                [
                    slug,
                    name,
                    result["verdict"] or f"({result['state']})",
                    figure,
                    peak,
                    result["hardware"] or "-",
                    board_row(boards[slug], result["id"]),
                ]
            )
        print(table(rows))
        for slug, slug_boards in boards.items():
            for board in slug_boards:
                peaks = board["peaks"] or {}
                print(
                    f"board {slug} on {board['hardware']} ({board['card']}): "
                    f"peaks {peaks.get('flops_per_s', 0) / 1e12:,.0f} TFLOP/s, "
                    f"{peaks.get('bytes_per_s', 0) / 1e9:,.0f} GB/s; "
                    + ", ".join(
                        f"#{e['rank']} {e['username']} {e['score']:.3f}x" for e in board["entries"]
                    )
                )
        report |= {
            "card": card,
            "results": [{"problem": s, "solution": n, "submission": r} for s, n, r in results],
            "leaderboards": boards,
            "table": rows,
            "wall_s": round(time.monotonic() - started, 1),
        }
    finally:
        for child in children.values():
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        for child in children.values():
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
        (out / "gpu_site_proof.json").write_text(json.dumps(report, indent=1, default=str))
    print(f"wrote {out / 'gpu_site_proof.json'} after {report.get('wall_s', '?')} s")


if __name__ == "__main__":
    main()
