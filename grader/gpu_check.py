"""Every kernel problem through the grader on a GPU: verdicts, speed, ten-grade stability, one table.

    python -m grader.gpu_check --part 1 --json $OUT/kernels-1.json   # int8, 4 attention grades
    python -m grader.gpu_check --part 2 --json $OUT/kernels-2.json   # sweep, paged, the rest
    python -m grader.gpu_check --part 3 --json $OUT/kernels-3.json   # 6 more attention grades
    python -m grader.gpu_check --part 4 --json $OUT/kernels-4.json   # issue 22's: verdicts, baselines
    python -m grader.gpu_check --part 5 --json $OUT/kernels-5.json   # lora stability, attacks
    python -m grader.gpu_check --part 6 --json $OUT/kernels-6.json   # moe stability
    python -m grader.gpu_check --merge kernels-?.json --json kernels.json
    python -m grader.gpu_check --dry-run   # the whole flow on a CPU: one test each, Triton's interpreter

Each problem's work comes in stages, every grade through :func:`grader.grading.grade` (fresh
sandboxes, the harness's own timing, the speed of light on the card that timed it):

* ``stability``: the reference graded against itself ``--repeats`` times (ten): the CV of the
  score (reference median over candidate median) and of the candidate's median, pooled over
  every part that ran some of the ten (triton-attention's: parts 1 and 3);
* ``baseline``: the reference against the baseline (``torch`` SDPA, the engine's decode kernel,
  the unfused torch norm and quantisation, the per-adapter and per-expert torch loops);
  int8-matmul's baseline is the sweep's;
* ``failing``: every wrong and cheating solution, each with the verdict it must get (the cheats
  break the statement's rule, read in their source before they run);
* ``runtime``: the attacks of :mod:`grader.attacks` with that rule off, each timed straight
  through the harness on the card (a real side stream among them), each of which the chained
  timing must reject on its own;
* ``sweep`` (int8-matmul): the W8A16 reference against bf16 ``torch.matmul`` at m = 1, 16, 32,
  64, 2048, timed in this process with the harness's :class:`~grader.harnesses.timing.CudaTimer`.

A part is a list of stages sized for one device command; each grade is written to the JSON file
as soon as it ends, and no grade starts past ``--deadline-s``, so a part cut short still says
what it measured and what it skipped. ``--merge`` turns the parts' files into one table. The
card's peaks (bf16 matmul, device copy, device read) and whether a sandboxed child sees the GPU
are recorded with every part. No Django: this runs on a bare GPU host.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from grader.attacks import RUNTIME_ATTACKS, RuntimeAttack
from grader.bank import PROBLEMS_DIR, problem_read
from grader.grading import grade, timing_verdict
from grader.harnesses.base import CandidateFailure
from grader.harnesses.contract import GradeReport, ProblemSpec, SandboxKind, Verdict
from grader.harnesses.kernel import KernelHarness
from grader.harnesses.timing import CudaTimer, card_peaks, device_state, gpu_available
from grader.sandbox import SandboxSession, gpu_sandbox_check, sandbox_kind, session_kind

SEED = 20261127
PROBLEMS = (
    "int8-matmul",
    "triton-attention",
    "paged-decode-attention",
    "fused-rmsnorm-fp8",
    "lora-bgmv",
    "moe-dispatch",
)
STAGES = ("stability", "sweep", "baseline", "failing", "runtime")


class Item(NamedTuple):
    """One stage of one problem in a part. A stability stage runs the grades numbered ``first``
    to ``last`` (None: the last) of ``--repeats``, so one problem's ten grades may be split over
    two parts and pooled again by ``--merge``."""

    stage: str
    problem: str
    first: int = 1
    last: int | None = None


# Three device commands of under 440 s each, by what the H200 run of 2026-12-02 took (sandboxed,
# startup and peaks ~11 s a part): int8 stability 146 s for ten grades, a triton-attention grade
# 52-58 s (part 1 fitted five of its ten), part 2 346 s. So part 1 is int8's ten and four
# attention grades (~375 s), part 3 the other six (~350 s); the deadline holds each part under
# the limit whatever a grade costs. The wrong and cheating verdicts are also checked in CI.
PARTS: dict[int, tuple[Item, ...]] = {
    1: (Item("stability", "int8-matmul"), Item("stability", "triton-attention", 1, 4)),
    2: (
        Item("sweep", "int8-matmul"),
        Item("stability", "paged-decode-attention"),
        Item("baseline", "triton-attention"),
        Item("baseline", "paged-decode-attention"),
        Item("failing", "int8-matmul"),
        Item("failing", "triton-attention"),
        Item("failing", "paged-decode-attention"),
        Item("runtime", "triton-attention"),
        Item("runtime", "paged-decode-attention"),
        Item("runtime", "int8-matmul"),
    ),
    3: (Item("stability", "triton-attention", 5),),
    # Issue 22's three, not yet timed on a card: sized by guess (a grade of ~25 s, as int8's),
    # the deadline keeps each part inside its command and lists what it skipped.
    4: (
        Item("failing", "fused-rmsnorm-fp8"),
        Item("failing", "lora-bgmv"),
        Item("failing", "moe-dispatch"),
        Item("baseline", "fused-rmsnorm-fp8"),
        Item("baseline", "lora-bgmv"),
        Item("baseline", "moe-dispatch"),
        Item("stability", "fused-rmsnorm-fp8"),
    ),
    5: (
        Item("stability", "lora-bgmv"),
        Item("runtime", "fused-rmsnorm-fp8"),
        Item("runtime", "lora-bgmv"),
        Item("runtime", "moe-dispatch"),
    ),
    6: (Item("stability", "moe-dispatch"),),
}
# What the ratio column compares the reference with; int8's baseline is the sweep's bf16 matmul.
BASELINES = {
    "triton-attention": "solutions/torch_sdpa.py",
    "paged-decode-attention": "solutions/engine_kernel.py",
    "fused-rmsnorm-fp8": "solutions/torch_unfused.py",
    "lora-bgmv": "solutions/per_adapter_loop.py",
    "moe-dispatch": "solutions/per_expert_loop.py",
}
# What a baseline's sandbox sees besides the kind's own paths (a candidate never does).
BASELINE_PATHS = {"solutions/engine_kernel.py": ("engine",)}
# Batches an attack past the source rule is timed for before it counts as not caught.
RUNTIME_BATCHES = 3
# A runtime error rejects too: on a GPU a late writer's copy, launched from its own thread while
# the batch's CUDA graph is captured, breaks the capture and the call raises (H100, 2026-12-07).
REJECTED = (str(Verdict.POLICY), str(Verdict.WRONG_ANSWER), str(Verdict.RUNTIME_ERROR))
# The verdict each kind of solution must get.
EXPECTED = {"wrong": Verdict.WRONG_ANSWER, "cheats": Verdict.POLICY}
STABILITY_GOAL_CV_PCT = 2.0
# No new grade starts after this many seconds of a part: a device command may run 600 s, and
# the last grade, the table and copying the results back need the rest.
DEADLINE_S = 440.0
# A grade whose time is not yet known in this part is assumed to take this long.
FIRST_GRADE_S = 30.0


@dataclasses.dataclass(frozen=True)
class SweepSettings:
    """The W8A16-against-bf16 sweep: shapes, dtype, input sets rotated, timed calls per m."""

    ms: tuple[int, ...] = (1, 16, 32, 64, 2048)
    k: int = 4096
    n: int = 14336
    dtype: str = "bfloat16"
    # Rotated input sets: no call finds its weights (58.7 MB at this shape) in the L2.
    sets: int = 4
    calls: int = 30


# The dry run: shapes the Triton interpreter finishes in seconds, fp16 (it miscomputes bf16).
DRY_SWEEP = SweepSettings(ms=(1, 3), k=64, n=96, dtype="float16", sets=2, calls=2)
DRY_REPEATS = 2


def card_record() -> dict[str, Any]:
    """The card, driver and software every number was measured with ("cpu" without a GPU)."""
    import torch
    import triton

    record = {
        "card": "cpu (no GPU)",
        "driver": "",
        "torch": torch.__version__,
        "triton": triton.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "host": platform.node(),
    }
    if gpu_available():
        properties = torch.cuda.get_device_properties(0)
        driver = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        record |= {
            "card": torch.cuda.get_device_name(0),
            "driver": driver,
            "sms": properties.multi_processor_count,
            "l2_bytes": int(getattr(properties, "L2_cache_size", 0)),
        }
    return record


def _spec(slug: str, dry_run: bool) -> ProblemSpec:
    """The problem as the bank ships it; in a dry run, only its first CPU test."""
    spec = problem_read(PROBLEMS_DIR / slug).as_spec()
    if dry_run:
        spec = dataclasses.replace(
            spec, tests=[test for test in spec.tests if not test.get("gpu_only")][:1]
        )
    return spec


def speed_fields(
    bound: dict[str, Any] | None, median_ns: float | None, peaks: dict[str, float] | None
) -> dict[str, Any]:
    """TFLOP/s (compute-bound) or GB/s (memory-bound) of one median, its share of the measured
    peak and of the speed of light (``bound``: a :class:`SpeedOfLight` as a dict).

    The peak of GB/s is the copy bandwidth (the issue's column), though the speed of light of
    bytes is at the faster of read and copy: a read-mostly kernel can pass 100% of the copy.
    """
    if not (bound and median_ns and peaks):
        return {}
    seconds = median_ns / 1e9
    sol_pct = 100 * bound["time_ns"] / median_ns
    if bound["bound"] == "compute":
        rate = bound["flops"] / seconds
        peak_pct = 100 * rate / peaks["matmul_flops_per_s"]
        return {"unit": "TFLOP/s", "rate": rate / 1e12, "peak_pct": peak_pct, "sol_pct": sol_pct}
    rate = bound["bytes"] / seconds
    peak_pct = 100 * rate / peaks["copy_bytes_per_s"]
    return {"unit": "GB/s", "rate": rate / 1e9, "peak_pct": peak_pct, "sol_pct": sol_pct}


def _expected(solution: str) -> Verdict:
    return EXPECTED.get(solution.split("/")[0], Verdict.ACCEPTED)


def grade_row(
    part: str,
    peaks: dict[str, float] | None,
    slug: str,
    solution: str,
    role: str,
    report: GradeReport | None,
    wall_s: float,
    side: str = "candidate",
) -> dict[str, Any]:
    """One solution's line of a grade in ``part``.

    ``side`` "reference" makes it the line of the grade's reference (a baseline), judged by its
    own timings as if it had been the candidate: the grade's verdict is the candidate's, and a
    reference beyond the speed of light showed the engine kernel's line suspect at 93% of the
    copy bandwidth (H200, 2026-12-02).
    """
    mine = other = bound = None
    score, verdict, message = 0.0, "", ""
    if report is not None:
        mine, other, score = report.candidate, report.reference, report.score
        bound = report.speed_of_light.as_dict() if report.speed_of_light else None
        verdict, message = str(report.verdict), report.message
        if side == "reference" and mine is not None and other is not None:
            mine, other = other, mine
            own, message, score = timing_verdict(mine, other, report.speed_of_light)
            verdict = str(own)
        message = message.splitlines()[0][:200] if message else ""
    median = mine.median_ns if mine else None
    return {
        "part": part,
        "problem": slug,
        "solution": solution,
        "role": role,
        "expected": str(_expected(solution)),
        "verdict": verdict,
        "message": message,
        "score": score,
        "candidate_median_ns": median,
        "reference_median_ns": other.median_ns if other else None,
        "samples": len(mine.samples_ns) if mine else 0,
        "sandboxed": report is not None and report.sandbox is SandboxKind.BUBBLEWRAP,
        "wall_s": round(wall_s, 1),
        "speed_of_light": bound,
    } | speed_fields(bound, median, peaks)


class Part:
    """One device command's worth of grades, written to ``json_path`` after each one."""

    def __init__(self, name: str, json_path: Path, dry_run: bool, deadline_s: float) -> None:
        self.started = time.monotonic()
        self.json_path = json_path
        self.dry_run = dry_run
        self.deadline_s = deadline_s
        self.hardware = card_record()
        print(json.dumps(self.hardware), flush=True)
        self.peaks = card_peaks().as_dict() if gpu_available() else None
        print(f"peaks: {self.peaks}", flush=True)
        self.sandbox_check = gpu_sandbox_check()
        print(f"sandbox check: {json.dumps(self.sandbox_check)}", flush=True)
        self.info: dict[str, Any] = {
            "part": name,
            "hardware": self.hardware,
            "peaks": self.peaks,
            "sandbox_check": self.sandbox_check,
            "skipped": [],
            "wall_s": 0.0,
        }
        self.rows: list[dict[str, Any]] = []
        self.sweeps: list[dict[str, Any]] = []
        self.last_grade_s: dict[str, float] = {}
        self.fallback_tried = False

    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    def room_for(self, what: str, stage: str) -> bool:
        """Whether a grade of ``stage`` fits before the deadline; if not, it is recorded skipped."""
        expected_s = self.last_grade_s.get(stage, FIRST_GRADE_S)
        if self.elapsed_s() + expected_s <= self.deadline_s:
            return True
        self.info["skipped"].append(what)
        print(f"  skipped (deadline): {what}", flush=True)
        self.write()
        return False

    def write(self) -> None:
        self.info["wall_s"] = round(self.elapsed_s(), 1)
        data = {"parts": [self.info], "rows": self.rows, "sweeps": self.sweeps}
        self.json_path.write_text(json.dumps(data, indent=1, default=str))

    def graded(self, spec: ProblemSpec, solution: str, role: str, stage: str) -> GradeReport | None:
        """Grade one solution file of the problem against ``spec`` and record its row.

        The first time the reference fails in the sandbox it is graded once more unsandboxed;
        if it passes there, the sandbox was the fault and the rest of this part runs
        unsandboxed (said in the part's ``sandbox_fallback``), so one device command still
        measures something.
        """
        what = f"{spec.slug} {solution} ({role})"
        if not self.room_for(what, stage):
            return None
        report = self._grade(spec, solution, role, stage)
        failed = report is None or report.verdict not in (Verdict.ACCEPTED, Verdict.SUSPECT)
        sandboxed = session_kind(needs_gpu=True) is SandboxKind.BUBBLEWRAP
        if solution == "reference.py" and failed and sandboxed and not self.fallback_tried:
            self.fallback_tried = True
            print("  the reference failed in the sandbox: again, unsandboxed", flush=True)
            _bubblewrap(enabled=False)
            again = self._grade(spec, solution, f"{role}, unsandboxed", stage)
            if again is not None and again.verdict is Verdict.ACCEPTED:
                self.info["sandbox_fallback"] = self.rows[-2]["message"] or "it failed"
                return again
            _bubblewrap(enabled=True)
        return report

    def _grade(self, spec: ProblemSpec, solution: str, role: str, stage: str) -> GradeReport | None:
        """grade() once, its row recorded; an exception (ours, not the code's) is a row too.

        The row keeps when each phase began, in seconds into the grade (``phases_s``): the
        candidate's sandbox up, its tests done ("reference": the reference's sandbox and tests
        begin), those done ("benchmarking"); the timing runs from there to ``wall_s``.
        """
        state = device_state()
        started = time.monotonic()
        code = (PROBLEMS_DIR / spec.slug / solution).read_text()
        phases_s: dict[str, float] = {}

        def progress(step: str, data: dict[str, Any]) -> None:
            if step in ("sandbox_started", "reference", "benchmarking"):
                phases_s.setdefault(step, round(time.monotonic() - started, 1))

        try:
            report = grade(spec, code, seed=SEED, hardware=self.hardware, progress=progress)
        except Exception as error:  # the part goes on: one broken grade is one row
            report = None
            row = self._row(spec.slug, solution, role, None, time.monotonic() - started)
            row |= {"verdict": "harness_error", "message": f"{type(error).__name__}: {error}"}
        else:
            row = self._row(spec.slug, solution, role, report, time.monotonic() - started)
        self.last_grade_s[stage] = row["wall_s"]
        print(f"  {spec.slug} {solution} ({role}): {row['verdict']} in {row['wall_s']} s "
              f"{phases_s}: {row['message'][:140]}", flush=True)  # fmt: skip
        self.rows.append(row | {"device_state": state, "phases_s": phases_s})
        self.write()
        return report

    def _row(
        self,
        slug: str,
        solution: str,
        role: str,
        report: GradeReport | None,
        wall_s: float,
        side: str = "candidate",
    ) -> dict[str, Any]:
        return grade_row(self.info["part"], self.peaks, slug, solution, role, report, wall_s, side)

    def stability(self, slug: str, repeats: int, first: int = 1, last: int | None = None) -> None:
        """The reference graded against itself, fresh sandboxes each time: grades ``first`` to
        ``last`` (default: ``repeats``) of ``repeats``."""
        spec = _spec(slug, self.dry_run)
        for index in range(first, min(last or repeats, repeats) + 1):
            self.graded(spec, "reference.py", f"stability {index}/{repeats}", "stability")

    def baseline(self, slug: str) -> None:
        """The reference graded against the problem's baseline (none: nothing to do)."""
        baseline = BASELINES.get(slug)
        if baseline is None:
            return
        spec = _spec(slug, self.dry_run)
        code = (PROBLEMS_DIR / slug / baseline).read_text()
        against = dataclasses.replace(
            spec, reference_code=code, reference_paths=BASELINE_PATHS.get(baseline, ())
        )
        report = self.graded(against, "reference.py", f"vs {baseline}", "baseline")
        if report is not None and report.reference:
            # The baseline's own line: the reference side of that same grade.
            wall_s = self.rows[-1]["wall_s"]
            self.rows.append(
                self._row(slug, baseline, "baseline", report, wall_s, side="reference")
            )
            self.write()

    def failing(self, slug: str) -> None:
        """Every wrong and cheating solution, each of which must get its verdict."""
        spec = _spec(slug, self.dry_run)
        folder = PROBLEMS_DIR / slug
        for solution in sorted(
            str(path.relative_to(folder))
            for pattern in ("wrong/*.py", "cheats/*.py")
            for path in folder.glob(pattern)
        ):
            self.graded(spec, solution, "must fail", "failing")

    def runtime(self, slug: str) -> None:
        """Each attack of :mod:`grader.attacks` on this problem, the source rule off: timed
        through the harness on the card, it must get its verdict (on a CPU this is
        tests/grader/test_kernel_timing.py, without the GPU-only ones)."""
        if self.dry_run:
            return
        spec = _spec(slug, self.dry_run)
        for name, attack in RUNTIME_ATTACKS[slug].items():
            what = f"{slug} {name} (source rule off)"
            if not self.room_for(what, "runtime"):
                return
            started = time.monotonic()
            verdict, message = runtime_verdict(spec, attack)
            row = self._row(
                slug, name, "runtime, source rule off", None, time.monotonic() - started
            )
            row |= {
                "verdict": verdict,
                "message": message,
                "expected": "|".join(map(str, attack.verdicts)),
            }
            print(f"  {what}: {verdict}: {message[:140]}", flush=True)
            self.rows.append(row)
            self.last_grade_s["runtime"] = row["wall_s"]
            self.write()

    def sweep(self, settings: SweepSettings) -> None:
        if not self.room_for("int8-matmul sweep", "sweep"):
            return
        started = time.monotonic()
        self.sweeps.extend(int8_sweep(settings, self.peaks))
        self.last_grade_s["sweep"] = time.monotonic() - started
        self.write()


def runtime_verdict(spec: ProblemSpec, attack: RuntimeAttack) -> tuple[str, str]:
    """(verdict, message) of the reference with ``attack`` appended, timed through the harness
    for up to ``RUNTIME_BATCHES`` batches: "accepted" means the attack was not caught."""
    harness = KernelHarness(spec)
    code = spec.reference_code + attack.suffix
    with SandboxSession(KernelHarness, code, spec.entry_point, spec.limits) as session:
        session.start(harness.shared_bytes())
        call = harness.timed_call(session, SEED)
        try:
            for _ in range(RUNTIME_BATCHES):
                call()
        except CandidateFailure as failure:
            # A traceback's last line names the error; any other message leads with it.
            lines = failure.message.strip().splitlines() or [""]
            line = lines[-1] if lines[0].startswith("Traceback") else lines[0]
            return str(failure.verdict), line[:200]
    return str(Verdict.ACCEPTED), f"not caught in {RUNTIME_BATCHES} batches"


def _bubblewrap(enabled: bool) -> None:
    """Turn the sandbox off for the rest of this process (``INFERPREP_BWRAP`` naming no binary
    makes :func:`grader.sandbox.bwrap_path` find none), or back to how it was."""
    if enabled:
        if "value" not in _SAVED_BWRAP:
            return
        saved = _SAVED_BWRAP.pop("value")
        if saved is None:
            os.environ.pop("INFERPREP_BWRAP", None)
        else:
            os.environ["INFERPREP_BWRAP"] = saved
    else:
        _SAVED_BWRAP["value"] = os.environ.get("INFERPREP_BWRAP")
        os.environ["INFERPREP_BWRAP"] = "/nonexistent/bwrap"
    sandbox_kind.cache_clear()
    gpu_sandbox_check.cache_clear()


_SAVED_BWRAP: dict[str, str | None] = {}


def _timed_ns(call: Callable[[], Any], graph: tuple[Any, Any] | None, timer: Any) -> float:
    """One call's time: the harness's CudaTimer on a GPU, the wall clock on a CPU."""
    if timer is not None:
        return timer.time_call(call, graph)[0]
    started = time.perf_counter_ns()
    call()
    return time.perf_counter_ns() - started


def _module(path: Path, name: str) -> Any:
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)  # from its file: Triton's @jit reads the source
    return module


def int8_sweep(
    settings: SweepSettings, peaks: dict[str, float] | None, solution: str = "reference.py"
) -> list[dict[str, Any]]:
    """A W8A16 solution against ``x @ w.T`` at each m, same timer, CUDA graphs on a GPU.

    Each input set's output is checked against the oracle within the problem's tolerance before
    anything is timed (the m = 17-32 tile is graded nowhere else on a GPU): a row says how many
    values missed, and the table calls a row with any miss WRONG, whatever its speed.
    """
    import torch

    folder = PROBLEMS_DIR / "int8-matmul"
    layer_class = _module(folder / solution, "int8_solution").W8A16Linear
    oracle = _module(folder / "oracle.py", "int8_oracle")
    # The problem's own inputs (outlier channels included) from a fixed seed: with plain
    # Gaussian weights a per-tensor scale is right often enough to pass a small sweep by luck.
    inputs = _module(folder / "inputs.py", "int8_inputs")
    tolerance = problem_read(folder).as_spec().tolerance[settings.dtype]
    on_gpu = gpu_available()
    device, dtype = ("cuda" if on_gpu else "cpu"), getattr(torch, settings.dtype)
    timer = CudaTimer() if on_gpu else None
    k, n = settings.k, settings.n
    rows = []
    for m in settings.ms:
        sets = []
        generator = torch.Generator(device=device).manual_seed(m)
        case = {"m": m, "k": k, "n": n, "dtype": settings.dtype}
        for _ in range(settings.sets):
            drawn = inputs.generate(case, generator, device)
            x, weight = drawn["x"], drawn["weight"]
            sets.append((x, weight, layer_class(weight)))
        wrong_values, max_abs_error = 0, 0.0
        for x, weight, layer in sets:
            want = oracle.expected(None, {"x": x, "weight": weight})
            error = (layer(x).float() - want).abs()
            wrong_values += int((error > tolerance["atol"] + tolerance["rtol"] * want.abs()).sum())
            max_abs_error = max(max_abs_error, float(error.max()))
        times: dict[str, list[float]] = {"bf16": [], "int8": []}
        for name in times:
            prepared = []
            for x, weight, layer in sets:
                call = (
                    (lambda x=x, w=weight: x @ w.T)
                    if name == "bf16"
                    else (lambda x=x, layer=layer: layer(x))
                )
                call()
                graph = None
                if on_gpu:
                    graph = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(graph):
                        out = call()
                    graph.replay()  # the first replay uploads the graph: keep it untimed
                    graph = (graph, out)
                prepared.append((call, graph))
            for index in range(settings.calls):
                call, graph = prepared[index % len(prepared)]
                times[name].append(_timed_ns(call, graph, timer))
        bf16_ns, int8_ns = statistics.median(times["bf16"]), statistics.median(times["int8"])
        item = dtype.itemsize
        int8_bytes = n * k + 4 * n + item * (m * k + m * n)
        row = {
            "m": m,
            "k": k,
            "n": n,
            "dtype": settings.dtype,
            "bf16_us": bf16_ns / 1e3,
            "int8_us": int8_ns / 1e3,
            "speedup": bf16_ns / int8_ns,
            "wrong_values": wrong_values,
            "max_abs_error": max_abs_error,
            "int8_gb_s": int8_bytes / int8_ns,
            "int8_tflops": 2 * m * n * k / int8_ns / 1e3,
            "bf16_tflops": 2 * m * n * k / bf16_ns / 1e3,
        }
        if peaks:
            row["int8_copy_pct"] = 100 * int8_bytes / (int8_ns / 1e9) / peaks["copy_bytes_per_s"]
        rows.append(row)
        print(f"  int8 sweep m={m}: {row}", flush=True)
    return rows


def run_part(
    items: tuple[Item | tuple[str, str], ...],
    name: str,
    json_path: Path,
    repeats: int,
    dry_run: bool = False,
    deadline_s: float = DEADLINE_S,
) -> dict[str, Any]:
    """Run ``items`` in order; returns what it wrote to ``json_path``."""
    part = Part(name, json_path, dry_run, deadline_s)
    for stage, slug, first, last in (Item(*item) for item in items):
        print(f"{stage} {slug} at {part.elapsed_s():.0f} s", flush=True)
        if stage == "stability":
            part.stability(slug, repeats, first, last)
        elif stage == "sweep":
            part.sweep(DRY_SWEEP if dry_run else SweepSettings())
        else:
            getattr(part, stage)(slug)
    part.write()
    print(f"part {name}: {part.elapsed_s():.0f} s", flush=True)
    return json.loads(json_path.read_text())


def merge(datas: list[dict[str, Any]]) -> dict[str, Any]:
    """Several parts' results as one."""
    return {
        "parts": [info for data in datas for info in data["parts"]],
        "rows": [row for data in datas for row in data["rows"]],
        "sweeps": [row for data in datas for row in data["sweeps"]],
    }


def _cv_pct(values: list[float]) -> float | None:
    if len(values) < 2:
        return None
    return 100 * statistics.stdev(values) / statistics.fmean(values)


def stability_stats(rows: list[dict[str, Any]], slug: str) -> dict[str, Any]:
    """The CV of the score and of the median over one problem's stability grades, from every
    part the rows come from (each grade is its own sandboxes, so grades of two device commands
    on the same kind of card pool like grades of one)."""
    graded = [r for r in rows if r["problem"] == slug and r["role"].startswith("stability")]
    timed = [r for r in graded if r["candidate_median_ns"]]
    medians = [r["candidate_median_ns"] for r in timed]
    cv_score, cv_median = _cv_pct([r["score"] for r in timed]), _cv_pct(medians)
    worst = max((cv for cv in (cv_score, cv_median) if cv is not None), default=None)
    return {
        "grades": len(graded),
        "timed": len(timed),
        "verdicts": sorted({r["verdict"] for r in graded}),
        "cv_score_pct": cv_score,
        "cv_median_pct": cv_median,
        "median_ns": statistics.median(medians) if medians else None,
        "parts": sorted({r["part"] for r in graded}),
        "goal_met": worst is not None and worst <= STABILITY_GOAL_CV_PCT and len(timed) >= 10,
    }


def _fmt(value: float | None, pattern: str) -> str:
    return "" if value is None else format(value, pattern)


def table(data: dict[str, Any]) -> str:
    """The merged results as text: header per card, one line per solution, the sweep."""
    lines = []
    for info in data["parts"]:
        hw, peaks, check = info["hardware"], info["peaks"], info["sandbox_check"]
        lines.append(
            f"part {info['part']} ({info['wall_s']:.0f} s): {hw['card']}, driver {hw['driver']},"
            f" torch {hw['torch']}, triton {hw['triton']}, CUDA {hw['cuda']}, host {hw['host']}"
        )
        if peaks:
            # Parts measured before the read bandwidth was (2026-12-02) have none.
            read = peaks.get("read_bytes_per_s")
            lines.append(
                f"  measured peaks: bf16 matmul {peaks['matmul_flops_per_s'] / 1e12:.0f} TFLOP/s,"
                f" copy {peaks['copy_bytes_per_s'] / 1e9:.0f} GB/s (read + write)"
                + (f", read {read / 1e9:.0f} GB/s" if read else "")
            )
        sees = "yes" if check["ok"] else f"no: {str(check.get('reason', ''))[:160]}"
        lines.append(f"  sandbox: {check['sandbox']}; a sandboxed child runs CUDA + Triton: {sees}")
        if info.get("sandbox_fallback"):
            fault = info["sandbox_fallback"][:160]
            lines.append(f"  the reference failed sandboxed ({fault}): the rest ran unsandboxed")
        if info["skipped"]:
            lines.append(f"  skipped at the deadline: {'; '.join(info['skipped'])}")
    if len({info["hardware"]["card"] for info in data["parts"]}) > 1:
        lines.append("  NOTE: the parts ran on different cards; compare numbers within a part.")
    lines += [
        "",
        f"{'problem':<23}{'solution':<35}{'verdict':<22}{'speed':>15}{'% peak':>7}"
        f"{'ratio':>7}{'CV score/median %':>19}{'SoL us':>9}{'% SoL':>7}  suspect sandboxed  note",
    ]
    sweeps = {row["m"]: row for row in data["sweeps"]}
    for slug in PROBLEMS:
        rows = [r for r in data["rows"] if r["problem"] == slug]
        if not rows:
            continue
        stats = stability_stats(rows, slug)
        stable = [r for r in rows if r["role"].startswith("stability")]
        versus = [r for r in rows if r["role"].startswith("vs ")]
        if stable:
            peaks = next(i["peaks"] for i in data["parts"] if i["part"] == stable[0]["part"])
            first = stable[0] | speed_fields(stable[0]["speed_of_light"], stats["median_ns"], peaks)
            ratio, note = None, f"reference x{stats['grades']}, median of medians"
            if len(stats["parts"]) > 1:
                note += f" (parts {' + '.join(stats['parts'])})"
            if versus and versus[0]["score"]:
                ratio, note = versus[0]["score"], note + f"; ratio {versus[0]['role']}"
            elif slug == "int8-matmul" and 16 in sweeps:
                ratio, note = sweeps[16]["speedup"], note + "; ratio vs bf16 torch.matmul, m=16"
            cv = f"{_fmt(stats['cv_score_pct'], '.2f')}/{_fmt(stats['cv_median_pct'], '.2f')}"
            cv += " ok" if stats["goal_met"] else " NOT MET"
            verdict = "+".join(stats["verdicts"]) + f" x{stats['grades']}"
            lines.append(_line(first, verdict, ratio, cv, note, stable))
        for row in rows:
            if row["role"].startswith("stability") or row["role"].startswith("vs "):
                continue
            # An attack past the source rule must be rejected; which verdict names it
            # can depend on a race (a side stream finishing before or after the digest).
            rejected = row["role"].startswith("runtime") and row["verdict"] in REJECTED
            expected = row["verdict"] in row["expected"].split("|") or rejected
            verdict = row["verdict"] + ("" if expected else " UNEXPECTED")
            ratio = row["score"] if row.get("rate") else None
            note = row["role"] if row.get("rate") else row["message"][:70]
            lines.append(_line(row, verdict, ratio, "", note, [row]))
    for row in data["sweeps"]:
        lines.append(
            f"{'int8-matmul sweep':<23}m={row['m']:<5} k={row['k']} n={row['n']} {row['dtype']}:"
            f" bf16 torch.matmul {row['bf16_us']:8.1f} us, W8A16 {row['int8_us']:8.1f} us"
            f" ({row['int8_gb_s']:.0f} GB/s, {_fmt(row.get('int8_copy_pct'), '.0f')}% of copy):"
            f" {row['speedup']:.2f}x"
            + (
                f" WRONG: {row['wrong_values']} values out of tolerance"
                if row.get("wrong_values")
                else ""
            )
        )
    return "\n".join(lines)


def _line(
    row: dict[str, Any], verdict: str, ratio: float | None, cv: str, note: str, group: list
) -> str:
    speed = f"{row['rate']:.1f} {row['unit']}" if row.get("rate") else ""
    bound = row["speed_of_light"]
    sol_us = bound["time_ns"] / 1e3 if bound else None
    suspect = "SUSPECT" if any(r["verdict"] == "suspect" for r in group) else "-"
    sandboxed = "/".join(sorted({"yes" if r["sandboxed"] else "no" for r in group}))
    return (
        f"{row['problem']:<23}{row['solution']:<35}{verdict:<22}{speed:>15}"
        f"{_fmt(row.get('peak_pct'), '.1f'):>7}{_fmt(ratio, '.3f'):>7}{cv:>19}"
        f"{_fmt(sol_us, '.1f'):>9}{_fmt(row.get('sol_pct'), '.1f'):>7}  {suspect:<8}"
        f"{sandboxed:<10}{note}"
    )


def dry_run(out_dir: Path, deadline_s: float) -> dict[str, Any]:
    """Both parts on this host (a CPU: Triton's interpreter, one test per problem), merged."""
    datas = [
        run_part(
            items,
            f"{number} (dry run)",
            out_dir / f"dry-{number}.json",
            DRY_REPEATS,
            True,
            deadline_s,
        )  # fmt: skip
        for number, items in PARTS.items()
    ]
    return merge(datas)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", type=int, choices=sorted(PARTS), help="one preset of stages")
    parser.add_argument("--problems", default=",".join(PROBLEMS), help="without --part")
    parser.add_argument("--stages", default=",".join(STAGES), help="without --part")
    parser.add_argument("--repeats", type=int, default=10, help="stability grades per problem")
    parser.add_argument("--deadline-s", type=float, default=DEADLINE_S)
    parser.add_argument("--json", type=Path, help="where the results go")
    parser.add_argument("--merge", type=Path, nargs="+", help="parts' JSON files to tabulate")
    parser.add_argument("--dry-run", action="store_true", help="both parts on a CPU, tiny")
    args = parser.parse_args(argv)
    stages, problems = args.stages.split(","), args.problems.split(",")
    unknown = sorted(set(stages) - set(STAGES) | set(problems) - set(PROBLEMS))
    if unknown:
        parser.error(f"unknown stages or problems: {unknown}")
    if args.merge:
        data = merge([json.loads(path.read_text()) for path in args.merge])
    elif args.dry_run:
        with tempfile.TemporaryDirectory(prefix="gpu-check-dry-") as out_dir:
            data = dry_run(Path(out_dir), args.deadline_s)
    else:
        if args.part:
            items, name = PARTS[args.part], str(args.part)
        else:
            # Stage by stage: a part cut short by its deadline has every problem's first stage.
            items = tuple(Item(stage, slug) for stage in stages for slug in problems)
            items = tuple(i for i in items if i.stage != "sweep" or i.problem == "int8-matmul")
            name = "all"
        json_path = args.json or Path(f"gpu_check-{name}.json")
        data = run_part(items, name, json_path, args.repeats, deadline_s=args.deadline_s)
    if args.json and (args.merge or args.dry_run):
        args.json.write_text(json.dumps(data, indent=1, default=str))
    print(table(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
