"""The harness base class: how one family of problems drives and judges candidate code.

A harness kind has two halves in one class, because they speak one private protocol:

* the **trusted half** runs in the grading worker. It generates every input from a secret
  seed and a fresh nonce per call, keeps the expected outputs, poisons output buffers before
  each call, checks every output (timed ones included), and times each call from outside the
  sandbox. It imports no Django, so the same harness runs on a bare GPU host.
* the **in-sandbox half** (:meth:`Harness.serve`) runs inside bubblewrap in the same process
  as the candidate's code, so nothing it says is believed: it only computes and reports what
  it computed, through the channel of ``grader/harnesses/channel.py``.

Later kinds plug in the same way: an engine-driven kind (scheduler, allocator, sampler,
verifier) lists in ``sandbox_paths`` the engine files bound read-only into the sandbox (the
interfaces and data types, never the engine's implementations), runs the engine on the
trusted side and asks the candidate's object in the sandbox for each decision (its
:meth:`serve` may ask questions back over :attr:`Harness.channel` before it replies); a
kernel kind sets ``needs_gpu = True`` and times with
:class:`grader.harnesses.timing.CudaTimer` inside :meth:`serve`.

Example (a new kind is a file in this package)::

    @register
    class SamplerHarness(Harness):
        kind = "sampler"
        version = "1"
        sandbox_paths = ("engine",)

        def run_test(self, session, case, seed): ...
        def timed_call(self, session, seed): ...
        def bytes_moved(self): ...

        @staticmethod
        def serve(entry, request, shared): ...
"""

from __future__ import annotations

import mmap
import secrets
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from grader.harnesses.contract import (
    Measurement,
    PolicyScore,
    ProblemSpec,
    SpeedOfLight,
    TestOutcome,
    Verdict,
)
from grader.harnesses.timing import MeasureSettings, TimedCall

if TYPE_CHECKING:
    from grader.sandbox import SandboxSession

# Captured when the harness is imported, before any candidate code exists in the process, so a
# candidate who replaces ``time.perf_counter_ns`` does not replace the harness's clock (and one
# who patches deeper is caught by the outside wall clock).
clock_ns = time.perf_counter_ns

#: progress(step, data): called by the trusted half before each test ("test") and with its
#: verdict once the trusted half has judged it ("test_done"); may raise to cancel.
Progress = Callable[[str, dict[str, Any]], None]


class CandidateFailure(Exception):
    """The candidate's run ended with a non-accepted verdict (never retried, never ours)."""

    def __init__(self, verdict: Verdict, message: str, details: dict | None = None) -> None:
        super().__init__(message)
        self.verdict = verdict
        self.message = message
        self.details = details or {}


def failed_outcome(
    session: SandboxSession, case: dict[str, Any], failure: CandidateFailure, time_ms: float
) -> TestOutcome:
    """A test's failure as its outcome; ``fatal`` in its details when the sandbox died of it
    (the tests after it cannot run)."""
    fatal = {"fatal": True} if not session.alive() else {}
    return TestOutcome(
        case["name"], failure.verdict, time_ms, failure.message, failure.details | fatal
    )


class ProblemError(Exception):
    """The problem itself is broken (a too-weak test, a failing reference): an internal error."""


def oracle_load(code: str, required: tuple[str, ...]) -> dict[str, Any]:
    """Run a problem's trusted oracle source; it must define each function in `required`."""
    namespace: dict[str, Any] = {"__name__": "oracle"}
    exec(compile(code, "oracle.py", "exec"), namespace)
    missing = [name for name in required if not callable(namespace.get(name))]
    if missing:
        raise ProblemError(f"oracle.py defines no {', '.join(f'{name}()' for name in missing)}")
    return namespace


class Harness(ABC):
    """A harness kind. Subclasses set ``kind`` and ``version`` and implement the four methods."""

    kind: ClassVar[str]
    version: ClassVar[str]
    #: project files and folders (relative to the project root) bound read-only into the
    #: sandbox besides ``grader/harnesses``: the interfaces and data types a candidate needs,
    #: never the engine's own implementations or a problem's oracle.
    sandbox_paths: ClassVar[tuple[str, ...]] = ()
    #: whether submissions go to the ``gpu`` queue.
    needs_gpu: ClassVar[bool] = False
    #: in the sandbox: the control channel, set by the runner, for kinds whose :meth:`serve`
    #: asks the trusted side questions before its reply (the engine kinds' decisions).
    channel: ClassVar[socket.socket | None] = None

    def __init__(self, spec: ProblemSpec) -> None:
        self.spec = spec
        #: fresh per run; with the secret seed it regenerates this run's inputs (stored).
        self.nonce = secrets.randbits(63)
        #: whether each timed call's output is checked (kinds whose checks cost time of their
        #: own read it): grade() turns it off for the problem's reference, our code, whose
        #: outputs score nothing; a candidate's are always checked.
        self.checks_timed_outputs = True

    @classmethod
    def custom_cases(cls, spec: ProblemSpec, inputs: list[Any]) -> list[dict[str, Any]]:
        """Test cases for a Run from inputs the candidate wrote, checked here (the trusted
        side: the web process when the Run is made, the worker again before it runs).

        Raises ValueError saying what is wrong. Kinds whose inputs a person cannot write (an
        engine's workload, a GPU kernel's tensors) take none: their Run tries the public
        examples only.
        """
        if inputs:
            raise ValueError(
                f"the {cls.kind} kind takes no inputs of your own; Run tries the public examples"
            )
        return []

    @abstractmethod
    def shared_bytes(self) -> int:
        """How large the shared memory between the two halves must be for this problem."""

    def test_cases(self) -> list[dict[str, Any]]:
        """The correctness tests this host runs, in order: all of the problem's by default."""
        return self.spec.tests

    @abstractmethod
    def run_test(self, session: SandboxSession, case: dict[str, Any], seed: int) -> TestOutcome:
        """Run and judge one correctness test; a sandbox that died sets ``details["fatal"]``."""

    def check_tests(
        self, session: SandboxSession, seed: int, progress: Progress
    ) -> list[TestOutcome]:
        """Run every correctness test in order, stopping after a fatal one.

        Each test is announced before it runs and reported with its verdict, time and message
        once this (trusted) side has judged it: the live page shows what the grader decided,
        never what the sandbox claimed.
        """
        outcomes = []
        cases = self.test_cases()
        for index, case in enumerate(cases, start=1):
            test = {"index": index, "total": len(cases), "name": case["name"]}
            progress("test", test)
            outcome = self.run_test(session, case, seed)
            outcomes.append(outcome)
            progress("test_done", test | outcome.event_data())
            if outcome.details.get("fatal"):
                break
        return outcomes

    @abstractmethod
    def timed_call(self, session: SandboxSession, seed: int) -> TimedCall:
        """One timed call on fresh inputs whose output is checked: returns (inside_ns, outside_ns).

        Raises :class:`CandidateFailure` when the output is wrong. The measurement module
        (``grader/harnesses/timing.py``) decides how often to call it.
        """

    @classmethod
    def source_breaks(cls, code: str, entry_point: str) -> list[str]:
        """Where the candidate's source breaks a rule the statement makes (read here, in the
        trusted process, before it runs); none by default."""
        return []

    def overhead_call(self, session: SandboxSession, seed: int) -> TimedCall | None:
        """A timed call that does everything but the solution's work, in ``session`` (the
        reference's), when a timed call holds costs that are not the solution's; else None."""
        return None

    def per_call(self, timed: Measurement, overhead: Measurement | None) -> Measurement:
        """One call's time from what the timed calls measured (and the overhead, if any)."""
        return timed

    def resource_breaks(self, reference: Harness) -> str | None:
        """Why the candidate's use of a resource (measured by this side while timed) breaks the
        problem's rules, judged against the reference's; None when it does not."""
        return None

    def policy_score(self, session: SandboxSession, seed: int) -> PolicyScore | None:
        """The score of what the candidate decided, for kinds scored on policy, else None.

        Called once the candidate and the reference have passed every test. The figures must
        come from the trusted side's own run (the engine in this process, calling the
        candidate's object in ``session`` for each decision), never from what the sandbox says.
        """
        return None

    def measure_settings(self) -> MeasureSettings:
        """Warm-up, repetitions and budget, from the problem's ``benchmark`` section."""
        return MeasureSettings.from_dict(self.spec.benchmark)

    def bytes_moved(self) -> int:
        """Bytes one timed call must read and write at least (for the speed-of-light check)."""
        return 0

    def speed_of_light(self) -> SpeedOfLight | None:
        """The fastest a timed call could be: by default its bytes at the problem's bound."""
        if not self.spec.speed_of_light_bytes_per_s or not self.bytes_moved():
            return None
        return SpeedOfLight(
            bytes=self.bytes_moved(),
            flops=0,
            bytes_per_s=self.spec.speed_of_light_bytes_per_s,
            basis="the problem's bound",
        )

    @staticmethod
    @abstractmethod
    def serve(entry: Any, request: dict[str, Any], shared: mmap.mmap) -> dict[str, Any]:
        """In the sandbox: run the candidate's ``entry`` on one request and report the result.

        Returns ``{"ok": True, "elapsed_ns": ..., ...}``; exceptions are reported by the runner.
        """
