"""The results contract every harness kind fills: verdicts, limits, problem specs, reports.

Django-free on purpose: the same harness runs on a bare GPU host, and the in-sandbox half
imports this module too.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    """The outcome of one test or of a whole submission."""

    ACCEPTED = "accepted"
    WRONG_ANSWER = "wrong_answer"
    TIME_LIMIT = "time_limit"
    MEMORY_LIMIT = "memory_limit"
    GPU_OOM = "gpu_oom"
    OUTPUT_LIMIT = "output_limit"
    RUNTIME_ERROR = "runtime_error"
    COMPILE_ERROR = "compile_error"
    NONDETERMINISTIC = "nondeterministic"
    POLICY = "policy"
    SUSPECT = "suspect"
    INTERNAL_ERROR = "internal_error"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


class SandboxKind(StrEnum):
    """How candidate code was isolated; every verdict carries it."""

    BUBBLEWRAP = "bubblewrap"
    UNSANDBOXED = "unsandboxed"


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed run (the whole run, not one test)."""

    wall_time_s: float = 60.0
    cpu_time_s: int = 60
    test_time_s: float = 10.0
    memory_bytes: int = 2 * 1024**3
    processes: int = 64
    file_size_bytes: int = 16 * 1024**2
    output_bytes: int = 64 * 1024
    source_bytes: int = 256 * 1024

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Limits:
        return cls(**(data or {}))


@dataclass(frozen=True)
class ProblemSpec:
    """Everything a harness needs to grade one problem; built from a Problem row or its folder."""

    slug: str
    harness: str
    entry_point: str
    reference_code: str
    oracle_code: str
    tests: list[dict[str, Any]]
    benchmark: dict[str, Any]
    limits: Limits = field(default_factory=Limits)
    tolerance: dict[str, dict[str, float]] = field(default_factory=dict)
    speed_of_light_bytes_per_s: float = 0.0
    queue: str = "cpu"
    #: public code both halves run (a kernel problem's input drawing), "" where there is none.
    inputs_code: str = ""
    #: project paths the reference's sandbox sees besides the kind's own: a baseline that
    #: builds on the engine (gpu_check), never a candidate.
    reference_paths: tuple[str, ...] = ()
    #: what a Run accepts of inputs the candidate writes (``max_inputs``, ``max_values``);
    #: empty where the problem takes none.
    custom_inputs: dict[str, int] = field(default_factory=dict)

    def examples(self) -> list[dict[str, Any]]:
        """The public tests a Run tries, in order: those marked ``public: true`` in
        problem.yaml, or the first test where none is."""
        marked = [case for case in self.tests if case.get("public")]
        return marked or self.tests[:1]


def problem_spec_from(problem: Any) -> ProblemSpec:
    """The spec of a problem read from its bank folder or loaded from its database row: both
    carry the same fields (slug, harness, entry_point, reference_code, oracle_code, inputs_code,
    queue and the ``spec`` data with tests, benchmark, limits and tolerance)."""
    data = problem.spec
    return ProblemSpec(
        slug=problem.slug,
        harness=problem.harness,
        entry_point=problem.entry_point,
        reference_code=problem.reference_code,
        oracle_code=problem.oracle_code,
        tests=data["tests"],
        benchmark=data["benchmark"],
        limits=Limits.from_dict(data.get("limits")),
        tolerance=data.get("tolerance", {}),
        speed_of_light_bytes_per_s=float(data.get("speed_of_light_bytes_per_s", 0)),
        queue=problem.queue,
        inputs_code=problem.inputs_code,
        custom_inputs=dict(data.get("custom_inputs", {})),
    )


# A live progress event carries this much of a test's message; the results table has it all.
EVENT_MESSAGE_CHARS = 400


@dataclass(frozen=True)
class Mismatch:
    """An output's values out of tolerance (``atol + rtol * |want|``; NaN never is): how many,
    how many are NaN or inf, the worst errors among the finite ones, and the first positions
    (``index``, ``got``, ``expected``). ``as_details()`` is a wrong answer's details."""

    non_finite: int
    max_abs_error: float | None
    max_rel_error: float | None
    mismatches: int
    first_mismatches: list[dict[str, Any]]

    def message(self) -> str:
        first = self.first_mismatches[0]
        return (
            f"{self.mismatches} values out of tolerance; first at {first['index']}: "
            f"got {first['got']!r}, expected {first['expected']!r}; "
            f"max abs error {self.max_abs_error}, max rel error {self.max_rel_error}"
            + (f"; {self.non_finite} values are NaN or inf" if self.non_finite else "")
        )

    def as_details(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TestOutcome:
    """One test's verdict, time and message, in the order the tests ran."""

    name: str
    verdict: Verdict
    time_ms: float | None = None
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return json_safe(asdict(self) | {"verdict": str(self.verdict)})

    def event_data(self) -> dict[str, Any]:
        """What the live progress event says of this test: verdict, time, a capped message."""
        message = self.message
        if len(message) > EVENT_MESSAGE_CHARS:
            message = message[: EVENT_MESSAGE_CHARS - 1] + "…"
        time_ms = None if self.time_ms is None else round(self.time_ms, 3)
        return json_safe({"verdict": str(self.verdict), "time_ms": time_ms, "message": message})


@dataclass(frozen=True)
class CallTiming:
    """One timed call, as the trusted side measured it.

    ``outside_ns`` is the trusted side's wall clock around the call's exchange with the sandbox:
    the only time that scores. It holds whatever the call caused (other threads, child
    processes, other CUDA streams: a reply that must carry the finished output cannot come
    earlier) and the channel's cost, which is the same for every solution of a problem.
    ``inside_ns`` is what the sandbox said of itself: shown, never believed.
    """

    inside_ns: int
    outside_ns: int


@dataclass
class Measurement:
    """Timed repetitions of one solution: the trusted samples and what the sandbox reported."""

    samples_ns: list[int]
    reported_ns: list[int]
    median_ns: float
    p10_ns: float
    p90_ns: float
    relative_standard_error: float
    warmup: int
    bytes_moved: int = 0
    device_state: dict[str, Any] = field(default_factory=dict)
    #: each trusted sample timed this many back-to-back calls, less ``overhead_ns`` of the
    #: batch's own cost, and is divided down to one call (kernel problems; 1 elsewhere).
    calls_per_sample: int = 1
    overhead_ns: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return json_safe(asdict(self))


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float as its name ("nan", "inf"): valid JSON for storage."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


@dataclass(frozen=True)
class SpeedOfLight:
    """The fastest one timed call could be: its bytes at the bandwidth (the kernel kind's: the
    faster of the card's read and copy) or its FLOPs at the matmul peak, whichever takes longer.
    A time below it is ``suspect``, never celebrated.

    ``basis`` says where the ceilings come from: "measured on NVIDIA H100 80GB HBM3" (the
    kernel kind measures the card that times it) or "the problem's bound" (its YAML).
    """

    bytes: int
    flops: int
    bytes_per_s: float
    flops_per_s: float = 0.0
    basis: str = ""

    def _seconds(self) -> tuple[float, float]:
        """(memory time, compute time) at the ceilings; 0 where a ceiling is not given."""
        memory_s = self.bytes / self.bytes_per_s if self.bytes_per_s else 0.0
        compute_s = self.flops / self.flops_per_s if self.flops_per_s else 0.0
        return memory_s, compute_s

    @property
    def time_ns(self) -> float:
        return max(self._seconds()) * 1e9

    @property
    def bound(self) -> str:
        """Which ceiling sets the time: "memory" or "compute"."""
        memory_s, compute_s = self._seconds()
        return "compute" if compute_s > memory_s else "memory"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"time_ns": self.time_ns, "bound": self.bound}


@dataclass(frozen=True)
class PolicyScore:
    """A score that measures what the candidate's policy decided, not how fast its code ran.

    Engine-plugged kinds (a scheduler, an allocator) are scored on figures of the trusted
    engine's own run of the benchmark workload, in engine steps and blocks (tokens per step,
    steps to drain, TTFT in steps, prefix hits), against the reference policy on the same
    workload: deterministic, so the same policy gets the same score on any host under any load.
    ``score`` is the candidate's figure of merit over the reference's (above 1 is better);
    wall time is reported beside it, never instead of it.
    """

    score: float
    message: str
    figures: dict[str, Any]
    reference: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return json_safe(asdict(self))


@dataclass
class GradeReport:
    """The graded outcome of one submission: what `manage.py grade --json` prints."""

    verdict: Verdict
    #: the speed ratio to the reference (or the policy's score); None when nothing was timed
    #: (a GPU problem checked on a CPU worker).
    score: float | None
    message: str
    tests: list[TestOutcome]
    hardware: dict[str, Any]
    sandbox: SandboxKind
    harness_version: str
    candidate: Measurement | None = None
    reference: Measurement | None = None
    stdout: str = ""
    stderr: str = ""
    #: per-run nonces: with the secret seed they regenerate every input of the job.
    nonces: dict[str, int] = field(default_factory=dict)
    #: the timed call's floor on the card that timed it (None: the problem has no bound).
    speed_of_light: SpeedOfLight | None = None
    #: the policy's own score, for kinds scored on what they decide (None: scored on speed).
    policy: PolicyScore | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": str(self.verdict),
            "score": self.score,
            "message": self.message,
            "tests": [t.as_dict() for t in self.tests],
            "hardware": self.hardware,
            "sandbox": str(self.sandbox),
            "harness_version": self.harness_version,
            "candidate": self.candidate.as_dict() if self.candidate else None,
            "reference": self.reference.as_dict() if self.reference else None,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "nonces": self.nonces,
            "speed_of_light": self.speed_of_light.as_dict() if self.speed_of_light else None,
            "policy": self.policy.as_dict() if self.policy else None,
        }
