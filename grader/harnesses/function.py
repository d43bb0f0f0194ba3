"""The ``function`` kind: the candidate writes ``f(x: numpy.ndarray) -> numpy.ndarray``.

The problem's oracle (trusted code in the problem's ``oracle.py``) defines
``generate(case, rng) -> ndarray`` and ``expected(x) -> float64 ndarray``. For each call the
trusted side generates a fresh input, lays it out as the test asks (``contiguous``,
``transposed`` or ``strided``), writes it to shared memory, fills the output area with NaN
bytes, and after the call checks the output (dtype, shape, values within the tolerance of the
input's dtype, NaN matching nothing) and that the input bytes were not modified.
"""

from __future__ import annotations

import mmap
import secrets
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from grader.harnesses.base import (
    CandidateFailure,
    Harness,
    ProblemError,
    clock_ns,
    failed_outcome,
    oracle_load,
)
from grader.harnesses.contract import CallTiming, Mismatch, ProblemSpec, TestOutcome, Verdict
from grader.harnesses.registry import register
from grader.harnesses.timing import TimedCall

if TYPE_CHECKING:
    from grader.sandbox import SandboxSession

OUTPUT_DTYPES = ("float32", "float64")
# The output area holds float64 values even for float32 inputs, whichever dtype is returned.
OUTPUT_ITEM_BYTES = 8
# How many mismatched positions a wrong answer lists.
MISMATCHES_SHOWN = 5
# A Run shows the output of an input the candidate wrote up to this many values (more is a
# page of numbers nobody reads; the mismatches are listed either way).
CUSTOM_OUTPUT_SHOWN = 64
# The name of the n-th input a candidate wrote, as its example is reported.
CUSTOM_EXAMPLE_PREFIX = "your-input-"
# How a written input names the infinities JSON cannot carry.
INFINITIES = {"inf": np.inf, "-inf": -np.inf}
# How many output values the trusted side reads the moment a reply arrives, at positions drawn
# then: a value that is still poison (the NaN bytes written before the call) or changes before
# the sandbox is frozen means the call replied before its work was done. A call that leaves a
# fraction f of its output to be written late escapes with probability (1 - f) ** 256 per call.
REPLY_SAMPLES = 256
ALIGN_BYTES = 64


def _align(size: int) -> int:
    return -(-size // ALIGN_BYTES) * ALIGN_BYTES


def layout_base(x: np.ndarray, layout: str, rng: np.random.Generator) -> np.ndarray:
    """The contiguous buffer sent to the sandbox, from which the sandbox takes a view equal to x."""
    if layout == "contiguous":
        return np.ascontiguousarray(x)
    if layout == "transposed":
        return np.ascontiguousarray(x.T)
    if layout == "strided":
        base = rng.standard_normal((x.shape[0], 2 * x.shape[1])).astype(x.dtype)
        base[:, ::2] = x
        return base
    raise ProblemError(f"unknown layout {layout!r}")


def layout_view(base: np.ndarray, layout: str) -> np.ndarray:
    if layout == "transposed":
        return base.T
    if layout == "strided":
        return base[:, ::2]
    return base


def mismatch(got: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> Mismatch | None:
    """None when every value is within atol + rtol*|want| (NaN never is), else the details."""
    got64 = got.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        error = np.abs(got64 - want)
        ok = error <= atol + rtol * np.abs(want)
        if ok.all():
            return None
        relative = np.where(want != 0, error / np.where(want != 0, np.abs(want), 1), np.inf)
    bad = np.argwhere(~ok)
    finite = np.isfinite(error)
    return Mismatch(
        non_finite=int((~np.isfinite(got64)).sum()),
        max_abs_error=float(error[finite].max()) if finite.any() else None,
        max_rel_error=float(relative[finite].max()) if finite.any() else None,
        mismatches=int(bad.shape[0]),
        first_mismatches=[
            {
                "index": [int(i) for i in position],
                "got": float(got64[tuple(position)]),
                "expected": float(want[tuple(position)]),
            }
            for position in bad[:MISMATCHES_SHOWN]
        ],
    )


def _custom_array(item: Any, spec: ProblemSpec, max_values: int, label: str) -> np.ndarray:
    """One written input as an array, or ValueError saying what is wrong with it."""
    if not isinstance(item, dict) or not set(item) <= {"values", "dtype"} or "values" not in item:
        raise ValueError(f'{label}: write {{"values": [[...], ...], "dtype": "float64"}}')
    dtype = item.get("dtype", "float64")
    if dtype not in spec.tolerance:
        raise ValueError(f"{label}: dtype is one of {', '.join(spec.tolerance)}, not {dtype!r}")
    rows = item["values"]
    if not isinstance(rows, list) or not rows or not all(isinstance(r, list) for r in rows):
        raise ValueError(f"{label}: values is a list of rows, each a list of numbers")
    width = len(rows[0])
    if width == 0 or any(len(row) != width for row in rows):
        raise ValueError(f"{label}: every row needs the same number of values, at least one")
    if len(rows) * width > max_values:
        raise ValueError(f"{label}: at most {max_values:,} values (got {len(rows) * width:,})")
    numbers = []
    for row in rows:
        for value in row:
            if isinstance(value, str) and value in INFINITIES:
                numbers.append(INFINITIES[value])
            elif isinstance(value, int | float) and not isinstance(value, bool):
                try:
                    number = float(value)
                except OverflowError:  # an integer past any float
                    number = np.inf
                if not np.isfinite(number) or abs(number) > np.finfo(dtype).max:
                    raise ValueError(f"{label}: {value!r} does not fit {dtype}")
                numbers.append(number)
            else:
                raise ValueError(f'{label}: {value!r} is not a number (or "inf", "-inf")')
    return np.array(numbers, dtype=dtype).reshape(len(rows), width)


@register
class FunctionHarness(Harness):
    kind = "function"
    version = "1"

    def __init__(self, spec: ProblemSpec) -> None:
        super().__init__(spec)
        self.oracle = oracle_load(spec.oracle_code, ("generate", "expected"))
        self.calls = 0
        #: draws the positions sampled at each reply; fresh per grade, never sent anywhere.
        self.sample_rng = np.random.default_rng(secrets.randbits(64))

    @classmethod
    def custom_cases(cls, spec: ProblemSpec, inputs: list[Any]) -> list[dict[str, Any]]:
        """Each written input, ``{"values": [[...], ...], "dtype": "float64"}`` (a 2-D array of
        numbers, or "inf" / "-inf"), as a test case; its expected output is the oracle's."""
        if not inputs:
            return []
        limits = spec.custom_inputs
        if not limits:
            raise ValueError(f"{spec.slug} takes no inputs of your own")
        if not isinstance(inputs, list) or len(inputs) > limits["max_inputs"]:
            raise ValueError(f"at most {limits['max_inputs']} inputs of your own, as a list")
        oracle = oracle_load(spec.oracle_code, ("expected",))
        cases = []
        for number, item in enumerate(inputs, start=1):
            x = _custom_array(item, spec, limits["max_values"], f"input {number}")
            with np.errstate(all="ignore"):
                want = np.asarray(oracle["expected"](x), dtype=np.float64)
            if not np.isfinite(want).all():
                raise ValueError(
                    f"input {number}: the expected output is not finite (NaN or inf) for it, so "
                    "no answer could be judged right; change the values"
                )
            cases.append(
                {
                    "name": f"{CUSTOM_EXAMPLE_PREFIX}{number}",
                    "shape": list(x.shape),
                    "dtype": str(x.dtype),
                    "values": x,
                    "custom": True,
                }
            )
        return cases

    def _cases(self) -> list[dict[str, Any]]:
        return [*self.spec.tests, self.spec.benchmark]

    def shared_bytes(self) -> int:
        largest = 0
        for case in self._cases():
            elements = int(np.prod(case["shape"]))
            # a strided layout sends twice the columns
            input_bytes = 2 * elements * np.dtype(case["dtype"]).itemsize
            largest = max(largest, _align(input_bytes) + elements * OUTPUT_ITEM_BYTES)
        return max(largest, mmap.PAGESIZE)

    def _rng(self, seed: int) -> np.random.Generator:
        """A fresh generator for every call: the secret seed plus this call's nonce."""
        self.calls += 1
        return np.random.default_rng([seed, self.nonce, self.calls])

    def _input(self, case: dict[str, Any], seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = self._rng(seed)
        x = case["values"] if case.get("custom") else self.oracle["generate"](case, rng)
        return x, layout_base(x, case.get("layout", "contiguous"), rng)

    def _tolerance(self, dtype: np.dtype) -> tuple[float, float]:
        tolerance = self.spec.tolerance.get(str(dtype))
        if tolerance is None:
            raise ProblemError(f"no tolerance for dtype {dtype}")
        return float(tolerance["rtol"]), float(tolerance["atol"])

    def _expected(self, x: np.ndarray, strong: bool = True) -> np.ndarray:
        """The oracle's output; ``strong``: a test that zeros would pass is the problem's bug
        (an input the candidate wrote for a Run may be as weak as they like)."""
        want = np.asarray(self.oracle["expected"](x), dtype=np.float64)
        rtol, atol = self._tolerance(x.dtype)
        if strong and mismatch(np.zeros_like(want), want, rtol, atol) is None:
            raise ProblemError("returning zeros would pass this test: its outputs are too small")
        return want

    def _call(
        self,
        session: SandboxSession,
        case: dict[str, Any],
        x: np.ndarray,
        base: np.ndarray,
        timeout_s: float,
    ) -> tuple[np.ndarray, CallTiming]:
        """One call in the sandbox; returns (output, timing) or raises CandidateFailure.

        The input is written while the sandbox is frozen; the trusted clock runs from waking it
        to its reply; at once the output is sampled at positions the sandbox cannot know, and
        the sandbox is frozen again before the whole output is read and compared with the
        sample: work that goes on after the reply cannot finish the output unseen.
        """
        shared = session.shared
        out_offset = _align(base.nbytes)
        out_capacity = x.size * OUTPUT_ITEM_BYTES
        session.freeze()
        shared[: base.nbytes] = base.tobytes()
        shared[out_offset : out_offset + out_capacity] = b"\xff" * out_capacity  # NaN bytes
        reply, outside_ns = session.call(
            {
                "op": "call",
                "dtype": str(base.dtype),
                "base_shape": list(base.shape),
                "layout": case.get("layout", "contiguous"),
                "out_offset": out_offset,
                "out_capacity": out_capacity,
            },
            timeout_s,
        )
        dtype, shape = reply.get("dtype"), reply.get("shape")
        positions = self.sample_rng.integers(0, x.size, min(REPLY_SAMPLES, x.size))
        sampled_dtype = dtype if dtype in OUTPUT_DTYPES else "float64"
        written = np.frombuffer(shared, dtype=sampled_dtype, count=x.size, offset=out_offset)
        at_reply = written[positions].copy()
        session.freeze()
        if shared[: base.nbytes] != base.tobytes():
            raise CandidateFailure(Verdict.WRONG_ANSWER, "the input array was modified")
        elapsed_ns = reply.get("elapsed_ns")
        if not isinstance(elapsed_ns, int) or elapsed_ns < 0:
            raise CandidateFailure(Verdict.POLICY, "the sandbox reported no valid time")
        if dtype not in OUTPUT_DTYPES:
            raise CandidateFailure(
                Verdict.WRONG_ANSWER, f"returned dtype {dtype}; expected float32 or float64"
            )
        if shape != list(x.shape):
            raise CandidateFailure(
                Verdict.WRONG_ANSWER, f"returned shape {shape}; expected {list(x.shape)}"
            )
        got = written.copy()
        if at_reply.tobytes() != got[positions].tobytes():
            raise CandidateFailure(
                Verdict.POLICY,
                "the output was still being written after the call returned: all of the work "
                "must be done before the function returns",
            )
        return got.reshape(x.shape), CallTiming(elapsed_ns, outside_ns)

    def _check(self, got: np.ndarray, want: np.ndarray, dtype: np.dtype) -> None:
        rtol, atol = self._tolerance(dtype)
        wrong = mismatch(got, want, rtol, atol)
        if wrong is not None:
            raise CandidateFailure(Verdict.WRONG_ANSWER, wrong.message(), wrong.as_details())

    def run_test(self, session: SandboxSession, case: dict[str, Any], seed: int) -> TestOutcome:
        timeout_s = float(case.get("time_limit_s", self.spec.limits.test_time_s))
        x, base = self._input(case, seed)
        want = self._expected(x, strong=not case.get("custom"))
        started = time.perf_counter()
        call_ns: int | None = None
        try:
            outputs = []
            for _ in range(int(case.get("repeat", 1))):
                got, timing = self._call(session, case, x, base, timeout_s)
                call_ns = timing.outside_ns
                self._check(got, want, x.dtype)
                outputs.append(got)
            if any(not np.array_equal(outputs[0], other) for other in outputs[1:]):
                return TestOutcome(
                    case["name"],
                    Verdict.NONDETERMINISTIC,
                    call_ns / 1e6,
                    "two calls on the same input returned different outputs",
                )
        except CandidateFailure as failure:
            # the call's time when it returned, else how long we waited for it
            waited_ns = (time.perf_counter() - started) * 1e9
            time_ms = (call_ns if call_ns is not None else waited_ns) / 1e6
            return failed_outcome(session, case, failure, time_ms)
        shown = {}
        if case.get("custom") and x.size <= CUSTOM_OUTPUT_SHOWN:
            shown = {"output": outputs[0].tolist(), "expected": want.tolist()}
        return TestOutcome(case["name"], Verdict.ACCEPTED, call_ns / 1e6, details=shown)

    def timed_call(self, session: SandboxSession, seed: int) -> TimedCall:
        case = self.spec.benchmark
        timeout_s = float(case.get("time_limit_s", self.spec.limits.test_time_s))
        calls = 0

        def call() -> CallTiming:
            nonlocal calls
            calls += 1
            x, base = self._input(case, seed)
            want = self._expected(x)
            got, timing = self._call(session, case, x, base, timeout_s)
            try:
                self._check(got, want, x.dtype)
            except CandidateFailure as failure:
                raise CandidateFailure(
                    failure.verdict, f"timed call {calls} returned a wrong output: {failure}"
                ) from None
            return timing

        return call

    def bytes_moved(self) -> int:
        case = self.spec.benchmark
        return 2 * int(np.prod(case["shape"])) * np.dtype(case["dtype"]).itemsize

    @staticmethod
    def serve(entry: Any, request: dict[str, Any], shared: mmap.mmap) -> dict[str, Any]:
        dtype = np.dtype(request["dtype"])
        base = np.ndarray(tuple(request["base_shape"]), dtype=dtype, buffer=shared, offset=0)
        x = layout_view(base, request["layout"])
        start_ns = clock_ns()
        out = entry(x)
        elapsed_ns = clock_ns() - start_ns
        # Exactly an ndarray: a lazy object would do its work after the clock stopped.
        if type(out) is not np.ndarray:
            return {"ok": True, "elapsed_ns": elapsed_ns, "dtype": type(out).__name__}
        reply = {
            "ok": True,
            "elapsed_ns": elapsed_ns,
            "dtype": str(out.dtype),
            "shape": list(out.shape),
        }
        if str(out.dtype) in OUTPUT_DTYPES and out.nbytes <= request["out_capacity"]:
            target = np.ndarray(out.shape, out.dtype, buffer=shared, offset=request["out_offset"])
            np.copyto(target, out)
        return reply
