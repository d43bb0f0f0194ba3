"""The ``kernel`` kind: the candidate writes a GPU kernel (Triton) behind a torch function.

A problem ships two files of torch code beside its reference:

* ``inputs.py`` (public: both halves run it) defines ``generate(case, generator, device) ->
  dict[str, Tensor]`` (the inputs of one call, drawn only from ``generator``, so both halves
  draw the same tensors from the same seed), ``prepare(entry, inputs) -> Callable[[], Tensor]``
  (the untimed set-up, constructing a layer, say, returning the one call to time, which reads
  the input tensors when it runs), ``output_shape(case)`` and ``work(case)`` (FLOPs, fewest
  bytes);
* ``oracle.py`` (trusted: it never leaves the worker) defines ``expected(case, inputs)``, the
  float32 answer.

A call may return several tensors (quantised values, their scales and an updated residual,
say): ``inputs.py`` then defines ``output_parts(case)``, each part's name, shape and dtype in the
order the call returns them as a tuple; ``expected`` returns a dict of float32 answers by part
name, and ``oracle.py`` may define ``observed(case, got, want)`` that turns the returned parts
into what is compared with those answers (fp8 values dequantised by the returned scales, say).
The tolerance may then be given per part (``tolerance: {bfloat16: {scales: {rtol, atol}, ...}}``).

Before anything runs, the worker reads the candidate's source: a call path that does work
outside its own ``@triton.jit`` kernels is ``policy`` (:mod:`grader.harnesses.source_rules`).

Tests: one exchange per call. The trusted side sends a fresh seed; the sandbox draws the
inputs, runs the call (captured in a CUDA graph and replayed where the case says
``cuda_graph``: the benchmark replays graphs, so capture must work) and copies the output to
shared memory; the trusted side draws the same inputs on its own device and checks every value.

Timing: nothing the sandbox says is a number. The benchmark runs in batches of ``batch_calls``
back-to-back calls, timed by the trusted side's wall clock from waking the sandbox to its reply,
and the calls are chained (:mod:`grader.harnesses.chain`): each call's fresh inputs (the
benchmark's ``fresh`` tensors, overwritten in place) are drawn on the device from the digest of
the previous call's output, the first from a nonce sent with the request, and the reply carries
every digest. So no call starts before the previous one has finished its whole output, nothing
can be computed before the batch starts, and the reply cannot come before the last output is
final, whatever streams, threads or graphs the candidate uses. The trusted side then fetches
every output, redraws every call's inputs from the digests it computes itself, and checks
every value: an output that changed after its digest was taken is ``policy``. The batch's
overhead (drawing the fresh inputs, the digests, waking the sandbox, a warm-up that lifts the
GPU clocks) is timed the same way in the reference's sandbox with each call replaced by nothing,
and subtracted: a call's time is (batch - overhead) / ``batch_calls``.

Each call of a batch reads a new input set in turn (``input_sets``: layers, say), so a kernel
whose weights would fit in the L2 does not find them there. The inputs are fresh from the
previous call's kernels, as they are in a model's forward pass. Memory (``memory_allowance``
in ``inputs.py``): the trusted side reads the device memory each sandbox holds from the driver
(NVML); a candidate holding more than the reference plus the allowance (a dense copy of a
weight the statement says to keep in int8) is ``policy``.

Without a GPU the Triton code runs under ``TRITON_INTERPRET=1``: correctness only; tests
marked ``gpu_only`` (bf16: the interpreter miscomputes bf16 arithmetic) are left out and
speed is "not measured: no GPU" (``grader/grading.py``).
"""

from __future__ import annotations

import hashlib
import math
import mmap
import os
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from grader.harnesses.base import CandidateFailure, Harness, ProblemError, failed_outcome
from grader.harnesses.contract import (
    CallTiming,
    Measurement,
    Mismatch,
    ProblemSpec,
    SpeedOfLight,
    TestOutcome,
    Verdict,
)
from grader.harnesses.registry import register
from grader.harnesses.timing import TimedCall, card_peaks, gpu_visible, per_call

if TYPE_CHECKING:
    import torch

    from grader.sandbox import SandboxSession

# A process that sees no GPU can run Triton only through its interpreter; set before any
# candidate module imports triton (the runner imports the harnesses first).
if not gpu_visible():
    os.environ.setdefault("TRITON_INTERPRET", "1")

INPUT_FUNCTIONS = ("generate", "prepare", "output_shape", "work")
DTYPES = ("float16", "bfloat16", "float32")
# How many mismatched positions a wrong answer lists.
MISMATCHES_SHOWN = 5
# About 2 ms of bf16 matmuls (2048^3 each, ~25 us at full clock) before each timed batch: the
# card idles while the trusted side checks the last batch, and an idle H200 reads 345 MHz.
WARM_MATMULS = 80
# How many source-rule breaks a policy message lists.
BREAKS_SHOWN = 5


def device_name() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _generator(seed: int, device: str) -> torch.Generator:
    import torch

    return torch.Generator(device=device).manual_seed(seed)


def _as_bytes(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor's bytes as a flat uint8 tensor on its device (bit-exact, NaN payloads too)."""
    import torch

    return tensor.detach().contiguous().view(-1).view(torch.uint8)


def returned_parts(out: Any) -> list[torch.Tensor] | None:
    """The tensors a call returned (one, or a tuple of them), or None for anything else.

    Exactly ``Tensor``s, in exactly a tuple: a lazy subclass could do its work after the clock
    stopped, and a custom sequence could compute as it is read.
    """
    import torch

    if type(out) is torch.Tensor:
        return [out]
    if type(out) is tuple and out and all(type(part) is torch.Tensor for part in out):
        return list(out)
    return None


def output_parts(code: dict[str, Any], case: dict[str, Any]) -> list[tuple[str, list, str]]:
    """Each returned tensor's (name, shape, dtype): ``output_parts(case)`` in ``inputs.py``, or
    one tensor of ``output_shape(case)`` in the case's dtype."""
    if "output_parts" in code:
        return [(name, list(shape), dtype) for name, shape, dtype in code["output_parts"](case)]
    return [("output", list(code["output_shape"](case)), case["dtype"])]


def problem_code(spec: ProblemSpec, trusted: bool) -> dict[str, Any]:
    """The problem's ``inputs.py`` run as a module; with ``trusted``, its ``oracle.py`` too."""
    namespace: dict[str, Any] = {"__name__": "inputs"}
    exec(compile(spec.inputs_code, "inputs.py", "exec"), namespace)
    required = INPUT_FUNCTIONS
    if trusted:
        exec(compile(spec.oracle_code, "oracle.py", "exec"), namespace)
        required += ("expected",)
    missing = [name for name in required if not callable(namespace.get(name))]
    if missing:
        raise ProblemError(f"the problem defines no {', '.join(f'{n}()' for n in missing)}")
    return namespace


def _compared(
    got: torch.Tensor, want: torch.Tensor, rtol: float, atol: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(per value |got - want| <= atol + rtol*|want|, got, want, |got - want|), all in float64;
    NaN is never within tolerance."""
    got64, want64 = got.double(), want.double()
    error = (got64 - want64).abs()
    return error <= atol + rtol * want64.abs(), got64, want64, error


def mismatch(got: torch.Tensor, want: torch.Tensor, rtol: float, atol: float) -> Mismatch | None:
    """None when every value is within atol + rtol*|want| (NaN never is), else the details."""
    import torch

    ok, got64, want64, error = _compared(got, want, rtol, atol)
    if bool(ok.all()):
        return None
    bad = (~ok).nonzero()
    finite = torch.isfinite(error)
    relative = error / want64.abs().clamp(min=torch.finfo(torch.float64).tiny)
    return Mismatch(
        non_finite=int((~torch.isfinite(got64)).sum()),
        max_abs_error=float(error[finite].max()) if bool(finite.any()) else None,
        max_rel_error=float(relative[finite].max()) if bool(finite.any()) else None,
        mismatches=int(bad.shape[0]),
        first_mismatches=[
            {
                "index": [int(i) for i in position],
                "got": float(got64[tuple(position)]),
                "expected": float(want64[tuple(position)]),
            }
            for position in bad[:MISMATCHES_SHOWN].tolist()
        ],
    )


def sandbox_gpu_bytes(pids: list[int]) -> int | None:
    """Device memory the driver says these host processes hold, or None where it cannot say
    (no NVML, or a driver that does not list processes, as under some virtualisation)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        processes = pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
    except Exception:  # no bindings, no driver, no per-process accounting: not measured
        return None
    wanted = set(pids)
    held = [p.usedGpuMemory for p in processes if p.pid in wanted and p.usedGpuMemory]
    return sum(held) if held else None


class _Benchmark:
    """The trusted side's copy of one chain's inputs: the same sets the sandbox drew."""

    def __init__(self, harness: KernelHarness, seed: int, null: bool) -> None:
        case = harness.spec.benchmark
        self.case = case
        self.calls = int(case.get("batch_calls", 1))
        self.fresh = list(case.get("fresh", []))
        if not self.fresh:
            raise ProblemError("the benchmark names no fresh inputs: its calls could be cached")
        self.set_seeds = [harness._seed(seed) for _ in range(int(case.get("input_sets", 1)))]
        device = harness.device
        # Unchecked outputs (the null chain's, the reference's) need no copy of the inputs here.
        self.checked = not null and harness.checks_timed_outputs
        self.sets = [] if not self.checked else [
            harness.code["generate"](case, _generator(s, device), device) for s in self.set_seeds
        ]  # fmt: skip
        self.batches = 0


@register
class KernelHarness(Harness):
    kind = "kernel"
    version = "2"
    needs_gpu = True

    def __init__(self, spec: ProblemSpec) -> None:
        super().__init__(spec)
        self.code = problem_code(spec, trusted=True)
        self.session_nonce = secrets.randbits(64)
        self.calls = 0
        self.device = device_name()
        self.benchmark: _Benchmark | None = None
        #: device memory the sandbox held once timed (None: not measured here).
        self.gpu_bytes: int | None = None

    @classmethod
    def source_breaks(cls, code: str, entry_point: str) -> list[str]:
        from grader.harnesses.source_rules import triton_only_breaks

        return [str(b) for b in triton_only_breaks(code, entry_point)][:BREAKS_SHOWN]

    # -- sizes ----------------------------------------------------------------------------

    def _out_bytes(self, case: dict[str, Any]) -> int:
        import torch

        return sum(
            math.prod(shape) * torch.empty((), dtype=getattr(torch, dtype)).element_size()
            for _, shape, dtype in output_parts(self.code, case)
        )

    def shared_bytes(self) -> int:
        cases = [*self.test_cases(), self.spec.benchmark]
        return max(mmap.PAGESIZE, *(self._out_bytes(case) for case in cases))

    def test_cases(self) -> list[dict[str, Any]]:
        """The tests this host can run: ``gpu_only`` ones need a GPU."""
        on_gpu = self.device == "cuda"
        return [case for case in self.spec.tests if on_gpu or not case.get("gpu_only")]

    def work(self) -> dict[str, int]:
        """FLOPs and fewest bytes of one benchmark call (for TFLOP/s, GB/s, speed of light)."""
        return self.code["work"](self.spec.benchmark)

    def bytes_moved(self) -> int:
        return int(self.work()["bytes"])

    def speed_of_light(self) -> SpeedOfLight | None:
        """The benchmark's bytes at this card's measured bandwidth (the faster of read and copy)
        or its FLOPs at its measured bf16 matmul peak, whichever takes longer; None without a
        GPU (no timing)."""
        if self.device != "cuda":
            return None
        peaks = card_peaks()
        work = self.work()
        bytes_per_s, which = peaks.memory_ceiling()
        return SpeedOfLight(
            bytes=int(work["bytes"]),
            flops=int(work["flops"]),
            bytes_per_s=bytes_per_s,
            flops_per_s=peaks.matmul_flops_per_s,
            basis=f"measured on {peaks.card}, bytes at its {which} bandwidth (the faster of "
            "read and copy)",
        )

    # -- checking -------------------------------------------------------------------------

    def _seed(self, seed: int) -> int:
        """A fresh 63-bit seed for every draw: the secret seed, this harness's nonce, a count."""
        self.calls += 1
        digest = hashlib.blake2b(f"{seed}:{self.session_nonce}:{self.calls}".encode()).digest()
        return int.from_bytes(digest[:8], "little") >> 1

    def _tolerance(self, dtype: str, part: str = "output") -> tuple[float, float]:
        tolerance = self.spec.tolerance.get(dtype)
        if tolerance is not None and "rtol" not in tolerance:
            tolerance = tolerance.get(part)
        if tolerance is None:
            raise ProblemError(f"no tolerance for dtype {dtype} ({part})")
        return float(tolerance["rtol"]), float(tolerance["atol"])

    def _expected(self, case: dict[str, Any], inputs: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The float32 answer of each part, by name."""
        import torch

        with torch.no_grad():
            want = self.code["expected"](case, inputs)
        if not isinstance(want, dict):
            want = {"output": want}
        want = {name: value.float() for name, value in want.items()}
        for name, value in want.items():
            rtol, atol = self._tolerance(case["dtype"], name)
            # A yes or no: the details of a mismatch list every position (all of them, for zeros).
            if bool(_compared(torch.zeros_like(value), value, rtol, atol)[0].all()):
                raise ProblemError(
                    f"returning zeros would pass this test ({name}): its outputs are too small"
                )
        return want

    def _drawn(self, case: dict[str, Any], call_seed: int) -> dict[str, Any]:
        return self.code["generate"](case, _generator(call_seed, self.device), self.device)

    def _output(
        self,
        session: SandboxSession,
        reply: dict[str, Any],
        case: dict[str, Any],
        want: dict[str, torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        """The tensors the sandbox copied to shared memory, by part name, each checked for
        type, dtype (``output_parts``) and shape (its expected answer's: ``output_shape`` may
        be an upper bound, sizing shared memory), on this side's device."""
        import torch

        parts = output_parts(self.code, case)
        expected_type = "Tensor" if len(parts) == 1 else f"tuple of {len(parts)} tensors"
        replies = reply.get("parts")
        # The reply is the sandbox's to write: a forged one is the candidate's wrong answer.
        if (
            reply.get("type") != expected_type
            or not isinstance(replies, list)
            or len(replies) != len(parts)
            or not all(isinstance(part, dict) for part in replies)
        ):
            raise CandidateFailure(
                Verdict.WRONG_ANSWER, f"returned a {reply.get('type')}; expected a {expected_type}"
            )
        got, offset = {}, 0
        for (name, _, dtype_name), part in zip(parts, replies, strict=True):
            what = "" if len(parts) == 1 else f" for {name}"
            shape = list(want[name].shape)
            if part.get("dtype") != dtype_name:
                raise CandidateFailure(
                    Verdict.WRONG_ANSWER,
                    f"returned dtype {part.get('dtype')}{what}; expected {dtype_name}",
                )
            if part.get("shape") != shape:
                raise CandidateFailure(
                    Verdict.WRONG_ANSWER,
                    f"returned shape {part.get('shape')}{what}; expected {shape}",
                )
            dtype = getattr(torch, dtype_name)
            nbytes = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
            # One copy out of shared memory (an attention output is 134 MB, fetched 48 times a
            # grade): straight to the device, or into a tensor of this process's own.
            shared = torch.frombuffer(
                session.shared, dtype=torch.uint8, count=nbytes, offset=offset
            )
            raw = shared.clone() if self.device == "cpu" else shared.to(self.device)
            got[name] = raw.view(dtype).reshape(shape)
            offset += nbytes
        return got

    def _same_device(self, reply: dict[str, Any]) -> None:
        """Both halves draw the same inputs only on the same kind of device."""
        if reply.get("device") != self.device:
            raise ProblemError(
                f"the sandbox computes on {reply.get('device')} but the grader on "
                f"{self.device}: the sandbox does not see the GPU (bind /dev/nvidia* into it)"
            )

    def _check(
        self,
        case: dict[str, Any],
        got: dict[str, torch.Tensor],
        want: dict[str, torch.Tensor],
    ) -> None:
        """Every part within its tolerance of its answer (after ``observed``, if the oracle
        has one: it sees the returned tensors, the candidate's, so it only reads them)."""
        import torch

        observed = self.code.get("observed")
        with torch.no_grad():
            seen = got if observed is None else observed(case, got, want)
        for name, value in want.items():
            rtol, atol = self._tolerance(case["dtype"], name)
            wrong = mismatch(seen[name], value, rtol, atol)
            if wrong is not None:
                message = wrong.message() if len(want) == 1 else f"{name}: {wrong.message()}"
                raise CandidateFailure(Verdict.WRONG_ANSWER, message, wrong.as_details())

    # -- tests ----------------------------------------------------------------------------------

    def run_test(self, session: SandboxSession, case: dict[str, Any], seed: int) -> TestOutcome:
        started = time.perf_counter()
        call_ns = 0
        try:
            # ``repeat``: more calls on the same shapes with fresh inputs (catches caching).
            for _ in range(int(case.get("repeat", 1))):
                call_seed = self._seed(seed)
                reply, call_ns = session.call(
                    {
                        "op": "call",
                        "inputs": self.spec.inputs_code,
                        "case": case,
                        "seed": call_seed,
                        "cuda_graph": bool(case.get("cuda_graph")),
                    },
                    self._timeout_s(case),
                )
                self._same_device(reply)
                want = self._expected(case, self._drawn(case, call_seed))
                self._check(case, self._output(session, reply, case, want), want)
        except CandidateFailure as failure:
            return failed_outcome(session, case, failure, (time.perf_counter() - started) * 1e3)
        return TestOutcome(case["name"], Verdict.ACCEPTED, call_ns / 1e6)

    def _timeout_s(self, case: dict[str, Any]) -> float:
        return float(case.get("time_limit_s", self.spec.limits.test_time_s))

    # -- timing -----------------------------------------------------------------------------

    def _setup(self, session: SandboxSession, seed: int, null: bool) -> _Benchmark:
        """Draw the benchmark's input sets on both sides and build the sandbox's chain."""
        benchmark = _Benchmark(self, seed, null)
        reply, _ = session.call(
            {
                "op": "setup",
                "chain": "null" if null else "main",
                "inputs": self.spec.inputs_code,
                "case": benchmark.case,
                "set_seeds": benchmark.set_seeds,
                "calls": benchmark.calls,
                "fresh": benchmark.fresh,
                "cuda_graph": bool(benchmark.case.get("cuda_graph")),
            },
            self._timeout_s(benchmark.case),
        )
        self._same_device(reply)
        return benchmark

    def _batch(self, session: SandboxSession, benchmark: _Benchmark, chain: str) -> CallTiming:
        """One timed batch, then every output checked (not for the null chain)."""
        benchmark.batches += 1
        nonce = secrets.randbits(62)
        reply, outside_ns = session.call(
            {"op": "batch", "chain": chain, "nonce": nonce}, self._timeout_s(benchmark.case)
        )
        digests = reply.get("digests")
        if not isinstance(digests, list) or len(digests) != benchmark.calls:
            raise CandidateFailure(Verdict.POLICY, "the sandbox reported no digest of the batch")
        if benchmark.checked:
            self._verify(session, benchmark, nonce, digests)
        elapsed_ns = reply.get("elapsed_ns")
        reported_ns = elapsed_ns if isinstance(elapsed_ns, int) else 0
        return CallTiming(reported_ns, outside_ns)

    def _verify(
        self, session: SandboxSession, benchmark: _Benchmark, nonce: int, digests: list[Any]
    ) -> None:
        """Redraw each call's inputs from the digests this side computes, fetch and check every
        output, and compare each digest with the one the sandbox reported at the reply."""
        import torch

        from grader.harnesses import chain

        case = benchmark.case
        key = torch.tensor([nonce], dtype=torch.int64, device=self.device)
        for index in range(benchmark.calls):
            where = f"timed call {index + 1} of batch {benchmark.batches}"
            inputs = benchmark.sets[index % len(benchmark.sets)]
            for position, name in enumerate(benchmark.fresh):
                chain.fill_normal(inputs[name], key, chain.salt(index, position))
            reply, _ = session.call(
                {"op": "fetch", "chain": "main", "index": index}, self._timeout_s(case)
            )
            try:
                want = self._expected(case, inputs)
                got = self._output(session, reply, case, want)
                self._check(case, got, want)
            except CandidateFailure as failure:
                raise CandidateFailure(
                    failure.verdict, f"{where}: {failure.message}", failure.details
                ) from None
            chain.digest_into(list(got.values()), key)
            if int(key.item()) != digests[index]:
                raise CandidateFailure(
                    Verdict.POLICY,
                    f"{where}: its output changed after the batch reported it finished: work "
                    "was still running (on another stream or thread) when the call returned",
                )

    def timed_call(self, session: SandboxSession, seed: int) -> TimedCall:
        def call() -> CallTiming:
            if self.benchmark is None:
                self.benchmark = self._setup(session, seed, null=False)
            timing = self._batch(session, self.benchmark, "main")
            if self.device == "cuda":
                self.gpu_bytes = sandbox_gpu_bytes(session.pids())
            return timing

        return call

    def overhead_call(self, session: SandboxSession, seed: int) -> TimedCall:
        """The same batches in ``session`` (the reference's) with every call replaced by
        nothing: what drawing inputs, digests and waking the sandbox cost."""
        benchmark: list[_Benchmark] = []

        def call() -> CallTiming:
            if not benchmark:
                benchmark.append(self._setup(session, seed, null=True))
            return self._batch(session, benchmark[0], "null")

        return call

    def per_call(self, batches: Measurement, overhead: Measurement | None) -> Measurement:
        calls = int(self.spec.benchmark.get("batch_calls", 1))
        return per_call(batches, calls, overhead.median_ns if overhead else 0.0)

    def resource_breaks(self, reference: Harness) -> str | None:
        """A candidate that held more device memory than the reference plus the problem's
        allowance (``memory_allowance(case)`` in inputs.py, if it has one)."""
        allowance = self.code.get("memory_allowance")
        if allowance is None or self.gpu_bytes is None:
            return None
        reference_bytes = getattr(reference, "gpu_bytes", None)
        if reference_bytes is None:
            return None
        allowed = reference_bytes + int(allowance(self.spec.benchmark))
        if self.gpu_bytes <= allowed:
            return None
        return (
            f"your solution held {self.gpu_bytes / 2**20:,.0f} MiB of GPU memory while timed, "
            f"the reference {reference_bytes / 2**20:,.0f} MiB; more than "
            f"{allowed / 2**20:,.0f} MiB breaks the problem's memory rule (see the statement)"
        )

    # -- in the sandbox -------------------------------------------------------------------------

    @staticmethod
    def serve(entry: Any, request: dict[str, Any], shared: mmap.mmap) -> dict[str, Any]:
        if os.environ.get("TRITON_INTERPRET") == "1":
            from grader.harnesses import interpreter_fp8

            # Before the first call: the interpreter's own E4M3 rounding is wrong.
            interpreter_fp8.install()
        op = request["op"]
        if op == "call":
            return _sandbox_call(entry, request, shared)
        if op == "setup":
            _CHAINS[request["chain"]] = _Chain(entry, request)
            return {"ok": True, "device": device_name()}
        if op == "batch":
            return _CHAINS[request["chain"]].batch(int(request["nonce"]))
        return _copy_out(_CHAINS[request["chain"]].outputs[int(request["index"])], shared)


# The sandbox's chains by name ("main" for the solution, "null" for the overhead) and its
# problem code by source.
_CHAINS: dict[str, _Chain] = {}
_CODE: dict[str, dict[str, Any]] = {}


def _inputs_module(source: str) -> dict[str, Any]:
    if source not in _CODE:
        namespace: dict[str, Any] = {"__name__": "inputs"}
        exec(compile(source, "inputs.py", "exec"), namespace)
        _CODE[source] = namespace
    return _CODE[source]


def _sandbox_call(entry: Any, request: dict[str, Any], shared: mmap.mmap) -> dict[str, Any]:
    """A test's call: draw, set up, run (replaying a captured graph where asked), copy out."""
    import torch

    code = _inputs_module(request["inputs"])
    device, case = device_name(), request["case"]
    inputs = code["generate"](case, _generator(request["seed"], device), device)
    run = code["prepare"](entry, inputs)
    graph = _capture(run) if device == "cuda" and request.get("cuda_graph") else None
    if graph is None:
        out = run()
    else:
        graph[0].replay()
        out = graph[1]
    if device == "cuda":
        torch.cuda.synchronize()
    return _copy_out(out, shared)


def _copy_out(out: Any, shared: mmap.mmap) -> dict[str, Any]:
    """What a call returned, its bytes copied to shared memory for the trusted side."""
    import torch

    reply: dict[str, Any] = {"ok": True, "type": type(out).__name__, "device": device_name()}
    parts = returned_parts(out)
    if parts is None:
        return reply
    if len(parts) > 1:
        reply["type"] = f"tuple of {len(parts)} tensors"
    reply["parts"] = []
    raws = [_as_bytes(part) for part in parts]
    fits = sum(raw.numel() for raw in raws) <= len(shared)
    offset = 0
    for part, raw in zip(parts, raws, strict=True):
        reply["parts"].append(
            {"dtype": str(part.dtype).removeprefix("torch."), "shape": list(part.shape)}
        )
        if fits and raw.numel():
            # Straight from the device into shared memory: one copy of up to 134 MB, not two.
            shared_part = torch.frombuffer(
                shared, dtype=torch.uint8, count=raw.numel(), offset=offset
            )
            shared_part.copy_(raw)
        offset += raw.numel()
    return reply


def _capture(run: Callable[[], Any]) -> Any:
    """Capture ``run`` in a CUDA graph (after one warm call on a side stream), or None.

    The graph is replayed again and again, so its work must be repeatable (a kernel that
    accumulates into an output it does not clear would be wrong the second time).
    """
    import torch

    try:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        # A call that waits on the host (a .item(), a nonzero()) cannot be captured, and a
        # capture that fails halfway leaves the default CUDA generator in capture mode, where
        # every later draw fails ("Offset increment outside graph capture"): so the warm call
        # refuses host syncs, and such a call is never captured at all.
        mode = torch.cuda.get_sync_debug_mode()
        torch.cuda.set_sync_debug_mode("error")
        try:
            with torch.cuda.stream(stream):
                run()
        finally:
            torch.cuda.set_sync_debug_mode(mode)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = run()
        # The first replay also uploads the graph to the device: keep it out of any batch.
        graph.replay()
        torch.cuda.synchronize()
        return graph, out
    except Exception:  # not capturable (a host sync, say): run eagerly instead
        torch.cuda.synchronize()
        return None


class _Chain:
    """In the sandbox: the benchmark's input sets, its calls and the chain that links them.

    ``batch`` writes the nonce into the first key, then for each call draws its fresh inputs
    from the previous key, runs it and writes its output's digest into the next key (one CUDA
    graph of the whole chain where the case asks for graphs and the calls can be captured).
    """

    def __init__(self, entry: Any, request: dict[str, Any]) -> None:
        import torch

        from grader.harnesses import chain

        code = _inputs_module(request["inputs"])
        device, case = device_name(), request["case"]
        self.chain = chain
        self.device = device
        self.fresh = request["fresh"]
        self.count = int(request["calls"])
        if request["chain"] == "null" and "main" in _CHAINS:
            # Over the solution's own inputs: the sandbox holds no second copy of them, so
            # the memory it is measured to hold is the solution's.
            self.sets = _CHAINS["main"].sets
        else:
            self.sets = [
                code["generate"](case, _generator(seed, device), device)
                for seed in request["set_seeds"]
            ]
        if request["chain"] == "null":
            nothing = tuple(
                torch.zeros(shape, dtype=getattr(torch, dtype), device=device)
                for _, shape, dtype in output_parts(code, case)
            )
            result = nothing[0] if len(nothing) == 1 else nothing
            self.runs = [lambda: result for _ in self.sets]
        else:
            self.runs = [code["prepare"](entry, inputs) for inputs in self.sets]
        self.keys = torch.zeros(self.count + 1, dtype=torch.int64, device=device)
        self.outputs: list[Any] = [None] * self.count
        self.warm = (
            # Its own generator: not the default one that an aborted capture may have left
            # in capture mode.
            torch.randn(
                2048, 2048, dtype=torch.bfloat16, device=device, generator=_generator(0, device)
            )
            if device == "cuda"
            else None
        )
        self.graph = None
        if device == "cuda" and request.get("cuda_graph"):
            captured = _capture(self._run)
            self.graph = captured[0] if captured is not None else None

    def _run(self) -> None:

        chain = self.chain
        for index in range(self.count):
            inputs = self.sets[index % len(self.sets)]
            key = self.keys[index : index + 1]
            for position, name in enumerate(self.fresh):
                chain.fill_normal(inputs[name], key, chain.salt(index, position))
            out = self.runs[index % len(self.runs)]()
            parts = returned_parts(out)
            if parts is None:
                raise TypeError(f"returned a {type(out).__name__}; expected torch.Tensors")
            self.outputs[index] = out
            chain.digest_into(parts, self.keys[index + 1 : index + 2])

    def batch(self, nonce: int) -> dict[str, Any]:
        started_ns = time.perf_counter_ns()
        if self.warm is not None:
            for _ in range(WARM_MATMULS):
                self.warm @ self.warm
        self.keys[0].fill_(nonce)
        if self.graph is None:
            self._run()
        else:
            self.graph.replay()
        digests = self.keys[1:].tolist()
        return {"ok": True, "digests": digests, "elapsed_ns": time.perf_counter_ns() - started_ns}
