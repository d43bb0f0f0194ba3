"""What the coding pages show: a submission's results as chart-ready data, and leaderboards.

Selectors in the HackSoft sense (they only read). Everything a chart draws is computed here,
so the templates and the JavaScript only lay it out.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from engine.capacity import GPUS
from engine.hardware import card_class
from engine.metrics import percentiles
from grader.models import Problem, Submission, TestResult, card_queue
from grader.selectors import submissions_accepted_of, submissions_on_leaderboard

# Detail keys that are bookkeeping, not measurements.
IGNORED_DETAILS = ("fatal", "index")
# How many samples the speed chart plots per solution; more only blurs the strip.
MAX_SAMPLES_PLOTTED = 400
# A p10-p90 half-spread above this share of the median says the host was too busy to rank a
# ratio (a quiet host times the same solution within a few per cent).
NOISY_SPREAD_PCT = 25.0


@dataclass
class Speed:
    """One solution's measured time per call: median, p10 to p90 spread, the samples."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    samples_ms: list[float]
    bytes_moved: int = 0

    @classmethod
    def from_timing(cls, timing: dict[str, Any] | None) -> Speed | None:
        if not timing or "median_ns" not in timing:
            return None
        samples = [float(ns) / 1e6 for ns in timing.get("samples_ns", [])][:MAX_SAMPLES_PLOTTED]
        return cls(
            median_ms=float(timing["median_ns"]) / 1e6,
            p10_ms=float(timing.get("p10_ns", timing["median_ns"])) / 1e6,
            p90_ms=float(timing.get("p90_ns", timing["median_ns"])) / 1e6,
            samples_ms=samples,
            bytes_moved=int(timing.get("bytes_moved") or 0),
        )

    @property
    def spread_pct(self) -> float:
        """Half the p10-p90 range as a share of the median: ±% a reader can compare."""
        return 50.0 * (self.p90_ms - self.p10_ms) / self.median_ms if self.median_ms else 0.0


@dataclass
class Roofline:
    """Where a kernel sits against the card's memory and compute ceilings (datasheet peaks)."""

    card: str
    peak_bytes_per_s: float
    peak_flops_per_s: float
    flops: float
    bytes: float
    points: dict[str, float] = field(default_factory=dict)  # solution -> achieved FLOP/s

    @property
    def peak_gb_per_s(self) -> float:
        return self.peak_bytes_per_s / 1e9

    @property
    def peak_tflops_per_s(self) -> float:
        return self.peak_flops_per_s / 1e12

    def bandwidth(self) -> list[dict[str, Any]]:
        """Per solution: bytes per second achieved, and its share of the card's peak."""
        rows = []
        for name, flops_per_s in self.points.items():
            bytes_per_s = flops_per_s / self.intensity if self.intensity else 0.0
            rows.append(
                {
                    "solution": name,
                    "gb_per_s": bytes_per_s / 1e9,
                    "peak_pct": 100 * bytes_per_s / self.peak_bytes_per_s,
                }
            )
        return rows

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes if self.bytes else 0.0


@dataclass
class Results:
    """Everything the results section of a submission page draws."""

    submission: Submission
    tests: list[TestResult]
    candidate: Speed | None
    reference: Speed | None
    roofline: Roofline | None
    figures: list[dict[str, Any]]
    measures: dict[str, Any] | None
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def shows_score(self) -> bool:
        """A score means something only when the solution was correct and timed (a kernel
        checked on a CPU worker has no speed: no ratio is shown for it)."""
        return self.submission.speed_measured and self.submission.verdict in ("accepted", "suspect")

    @property
    def correctness_only(self) -> bool:
        """Accepted, but no card timed it: the page says so instead of a ratio."""
        return speed_unmeasured(self.submission)

    @property
    def within_noise(self) -> bool:
        """The candidate's p10-p90 time range overlaps the reference's: the two are not told
        apart on this host, whatever the ratio of the medians says."""
        if not (self.candidate and self.reference):
            return False
        return (
            self.candidate.p10_ms <= self.reference.p90_ms
            and self.reference.p10_ms <= self.candidate.p90_ms
        )

    @property
    def too_noisy(self) -> bool:
        """The host's timings spread too widely to rank by (the grader's flag where it sets one,
        else a spread over NOISY_SPREAD_PCT on either side)."""
        timing = self.submission.timing or {}
        if "too_noisy" in timing:
            return bool(timing["too_noisy"])
        speeds = [speed for speed in (self.candidate, self.reference) if speed]
        return any(speed.spread_pct > NOISY_SPREAD_PCT for speed in speeds)

    @property
    def message(self) -> str:
        """The verdict's message, unless it only repeats the score the banner already shows."""
        message, score = self.submission.message, self.submission.score
        if score is not None and message == f"{score:.3f}x the reference's speed":
            return ""
        return message

    def chart_data(self) -> dict[str, Any]:
        """The JSON the page's charts read (json_script)."""
        speed = None
        if self.candidate and self.reference:
            speed = {
                name: vars(value)
                for name, value in (("yours", self.candidate), ("reference", self.reference))
            }
        return {
            "speed": speed,
            "roofline": vars(self.roofline) | {"intensity": self.roofline.intensity}
            if self.roofline
            else None,
            "figures": self.figures,
            "measures": self.measures,
            "runs": self.runs,
        }


def speed_unmeasured(submission: Submission) -> bool:
    """An accepted solution no card timed (a GPU problem checked on a CPU worker): correct,
    with no speed to show, rank or count."""
    return submission.verdict == "accepted" and not submission.speed_measured


def results_of(submission: Submission) -> Results:
    """A graded (or still running) submission's results, whatever its harness stored."""
    timing = submission.timing or {}
    candidate = Speed.from_timing(timing.get("candidate"))
    reference = Speed.from_timing(timing.get("reference"))
    tests = list(submission.tests.all())
    return Results(
        submission=submission,
        tests=tests,
        candidate=candidate,
        reference=reference,
        roofline=_roofline(submission, candidate, reference),
        figures=[figure for test in tests if (figure := _figure(test))],
        measures=_measures(tests),
        runs=[run for test in tests if (run := _run(test))],
    )


def _run(test: TestResult) -> dict[str, Any] | None:
    """The picture of the candidate's own run that an engine harness stored with a passed test
    (``grader/harnesses/engine_scheduler.py``'s ``run_picture``, the allocator's
    ``usage_picture``), with the per-priority latency summary its table shows."""
    picture = (test.details or {}).get("trace")
    if test.verdict != "accepted" or not isinstance(picture, dict):
        return None
    run = {"test": test.name} | picture
    if picture.get("kind") == "schedule":
        run["classes"] = _latency_classes(picture["requests"])
    elif picture.get("kind") == "kv_blocks":
        run["peak_used"] = max(picture["used"], default=0)
        run["peak_shared"] = max(picture["shared"], default=0)
    return run


def _latency_classes(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per priority class, most urgent first: requests, TTFT and end-to-end p50/p90 in steps."""
    rows = []
    for priority in sorted({r["priority"] for r in requests}):
        members = [r for r in requests if r["priority"] == priority]
        ttft = percentiles([r["ttft"] for r in members if r["ttft"] is not None])
        e2e = percentiles([r["e2e"] for r in members if r["e2e"] is not None])
        rows.append(
            {
                "priority": priority,
                "requests": len(members),
                "ttft_p50": ttft["p50"],
                "ttft_p90": ttft["p90"],
                "e2e_p50": e2e["p50"],
                "e2e_p90": e2e["p90"],
                "preemptions": sum(r["preemptions"] for r in members),
            }
        )
    return rows


def _measures(tests: list[TestResult]) -> dict[str, Any] | None:
    """Every number the harness recorded per passed test (steps, tokens per step, p99 TTFT,
    ops/s…), as a tests x measures table; None when it recorded none. A failed test's numbers
    describe the failure, which its message already says."""
    tests = [test for test in tests if test.verdict == "accepted"]
    metrics: list[str] = []
    for test in tests:
        for key, value in (test.details or {}).items():
            if _number(value) and key not in metrics and key not in IGNORED_DETAILS:
                metrics.append(key)
    if not metrics:
        return None
    return {
        "metrics": metrics,
        "labels": [key.replace("_", " ") for key in metrics],
        "rows": [
            {
                "test": test.name,
                "values": [
                    (test.details or {}).get(key)
                    if _number((test.details or {}).get(key))
                    else None
                    for key in metrics
                ],
            }
            for test in tests
        ],
    }


def _figure(test: TestResult) -> dict[str, Any] | None:
    """A test's numeric details beside the reference's, when the harness stored both."""
    details = test.details or {}
    reference = details.get("reference")
    if not isinstance(reference, dict):
        return None
    keys = [
        key
        for key, value in details.items()
        if _number(value) and _number(reference.get(key)) and key != "fatal"
    ]
    if not keys:
        return None
    return {
        "test": test.name,
        "rows": [
            {"metric": key.replace("_", " "), "yours": details[key], "reference": reference[key]}
            for key in keys
        ],
    }


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def card_of(hardware: dict[str, Any]) -> Any:
    """The datasheet entry of the card a submission ran on, or None when unsure (a PCIe H100,
    a card we have no datasheet for): no roofline beats one drawn against the wrong ceilings."""
    label = (hardware.get("label") or "").lower()
    words = set(re.split(r"[^a-z0-9]+", label))
    if "pcie" in words:
        return None
    gpus = hardware.get("gpus") or [{}]
    memory_gib = (gpus[0].get("memory_bytes") or 0) / 2**30
    matches = [spec for spec in GPUS.values() if spec.name.split("-")[0] in words]
    if len(matches) > 1 and memory_gib:
        # Same model, two memory sizes (A100 40GB / 80GB): the closer size is the card.
        matches = [min(matches, key=lambda spec: abs(spec.memory_bytes / 2**30 - memory_gib))]
    return matches[0] if len(matches) == 1 else None


def _roofline(
    submission: Submission, candidate: Speed | None, reference: Speed | None
) -> Roofline | None:
    if submission.problem.harness != "kernel" or not candidate or not candidate.bytes_moved:
        return None
    card = card_of(submission.hardware or {})
    problem = submission.problem
    work = _benchmark_work(
        problem.slug, problem.inputs_code, json.dumps(problem.spec.get("benchmark"))
    )
    if card is None or not work.get("flops"):
        return None
    points = {
        name: float(work["flops"]) / (speed.median_ms / 1e3)
        for name, speed in (("yours", candidate), ("reference", reference))
        if speed and speed.median_ms
    }
    return Roofline(
        card=card.title,
        peak_bytes_per_s=card.hbm_bytes_per_s,
        peak_flops_per_s=card.bf16_flops_per_s,
        flops=float(work["flops"]),
        bytes=float(work.get("bytes") or candidate.bytes_moved),
        points=points,
    )


@functools.lru_cache(maxsize=32)
def _benchmark_work(slug: str, inputs_code: str, benchmark_json: str) -> dict[str, float]:
    """FLOPs and bytes of the problem's benchmark call, from its public ``inputs.py``'s ``work``
    (keyed by the code and the benchmark's arguments, so an edited problem is read anew)."""
    namespace: dict[str, Any] = {"__name__": f"inputs_{slug}"}
    try:
        exec(compile(inputs_code, "inputs.py", "exec"), namespace)
        return dict(namespace["work"](json.loads(benchmark_json)))
    except Exception:  # an oracle without work(): the page shows no roofline, nothing more
        return {}


@dataclass
class Entry:
    rank: int
    username: str
    submission: Submission
    speed: Speed | None


@dataclass
class Board:
    """One problem on one class of hardware (a card class such as ``gpu.h100``, else the CPU
    model): best accepted submission per user, fastest first."""

    problem: Problem
    hardware: str
    entries: list[Entry]
    card: str = ""  # the name of the card that graded the newest entry, on a card class's board
    #: the card's peaks as measured by the grade of the board's newest entry (the kernel
    #: kind times the card it runs on): ``speed_of_light`` of ``Submission.timing``.
    peaks: dict[str, Any] | None = None

    @property
    def peak_tflops(self) -> float:
        return (self.peaks or {}).get("flops_per_s", 0.0) / 1e12

    @property
    def peak_gb_per_s(self) -> float:
        return (self.peaks or {}).get("bytes_per_s", 0.0) / 1e9


def board_class(hardware: dict[str, Any] | None) -> tuple[str, str]:
    """(board key, card name) of a submission's hardware record: the card class's queue for a
    GPU (every H100 variant on one board), else the hardware label."""
    hardware = hardware or {}
    gpus = hardware.get("gpus") or []
    if gpus:
        return card_queue(hardware.get("card_class") or card_class(gpus[0]["name"])), gpus[0][
            "name"
        ]
    return hardware.get("label") or "unknown hardware", ""


SOLVED = "solved"
SOLVED_SPEED_NOT_MEASURED = "correct (speed not measured)"


def problems_solved_by(user) -> dict[str, str]:
    """Per problem ``user`` has an accepted submission of: SOLVED, or, when none of them
    was timed (a kernel checked on a CPU worker only), SOLVED_SPEED_NOT_MEASURED."""
    status: dict[str, str] = {}
    for submission in submissions_accepted_of(user):
        measured = submission.speed_measured
        if measured or submission.problem.slug not in status:
            status[submission.problem.slug] = SOLVED if measured else SOLVED_SPEED_NOT_MEASURED
    return status


def leaderboards(problem: Problem | None = None, hardware: str | None = None) -> list[Board]:
    """Boards per (problem, hardware label): a CPU score is never ranked against an H100's."""
    best: dict[tuple[int, str], dict[int, Submission]] = {}
    problems: dict[int, Problem] = {}
    newest: dict[tuple[int, str], Submission] = {}
    for submission in submissions_on_leaderboard(problem).order_by("-score", "created_at"):
        label, _ = board_class(submission.hardware)
        if hardware and label != hardware:
            continue
        problems[submission.problem_id] = submission.problem
        key = (submission.problem_id, label)
        best.setdefault(key, {}).setdefault(submission.user_id, submission)
        if key not in newest or submission.graded_at > newest[key].graded_at:
            newest[key] = submission
    boards = []
    for (problem_id, label), by_user in sorted(
        best.items(), key=lambda item: (problems[item[0][0]].slug, item[0][1])
    ):
        latest = newest[problem_id, label]
        card = board_class(latest.hardware)[1]
        entries = [
            Entry(
                rank=rank,
                username=submission.user.username,
                submission=submission,
                speed=Speed.from_timing((submission.timing or {}).get("candidate")),
            )
            for rank, submission in enumerate(by_user.values(), start=1)
        ]
        boards.append(
            Board(
                problem=problems[problem_id],
                hardware=label,
                entries=entries,
                card=card,
                peaks=(latest.timing or {}).get("speed_of_light") if card else None,
            )
        )
    return boards


def hardware_labels() -> list[str]:
    """Every board class (a card class's queue, else a CPU label) a board has entries on."""
    labels = {
        board_class(hardware)[0]
        for hardware in submissions_on_leaderboard().values_list("hardware", flat=True)
    }
    return sorted(labels)
