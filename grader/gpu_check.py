"""Every kernel problem through the grader on a GPU: verdicts, speed, stability, one table.

    python -m grader.gpu_check [--problems triton-attention,...] [--repeats 10] [--json FILE]

For each problem: the card's measured peaks (a bf16 8192^3 matmul, a 2 GiB device copy); the
reference graded against itself, against the baseline (``torch`` SDPA, the engine's decode
kernel) and every wrong and cheating solution, all through :func:`grader.grading.grade`; the
stability check (the coefficient of variation of the reference's median over ``--repeats``
timing phases in one pair of sandboxes, and over the fresh sandboxes of the grades); for
int8-matmul the bf16 ``torch.matmul`` comparison at m = 1, 16, 64, 2048, timed in this
process with the harness's :class:`~grader.harnesses.timing.CudaTimer`. Where bubblewrap is
missing the sandbox runs unsandboxed: the output says which.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from grader.bank import PROBLEMS_DIR, problem_read
from grader.grading import _reference_call, _tests_run, grade
from grader.harnesses import harness_get
from grader.harnesses.contract import GradeReport, ProblemSpec, Verdict
from grader.harnesses.timing import CudaTimer, MeasureSettings, device_state, measure_interleaved
from grader.sandbox import SandboxSession, sandbox_kind

SEED = 20261127
# What the ratio column compares the reference with; int8's baseline is timed in-process.
BASELINES = {
    "triton-attention": "solutions/torch_sdpa.py",
    "paged-decode-attention": "solutions/engine_kernel.py",
}
# The stability phases: enough calls for a median, few enough for ten phases per problem.
STABILITY_SETTINGS = {"warmup": 2, "min_repetitions": 15, "max_repetitions": 15, "budget_s": 30}
INT8_SWEEP_M = (1, 16, 64, 2048)
SWEEP_CALLS = 30


def card_record() -> dict[str, Any]:
    """The card, driver and software every number in the table was measured with."""
    import torch
    import triton

    properties = torch.cuda.get_device_properties(0)
    driver = subprocess.run(
        ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {
        "card": torch.cuda.get_device_name(0),
        "driver": driver,
        "torch": torch.__version__,
        "triton": triton.__version__,
        "cuda": torch.version.cuda,
        "sms": properties.multi_processor_count,
        "l2_bytes": int(getattr(properties, "L2_cache_size", 0)),
        "python": platform.python_version(),
        "sandbox": str(sandbox_kind()),
    }


def _event_median_ms(call, repeats: int = 20) -> float:
    import torch

    timer = CudaTimer()
    for _ in range(3):
        call()
    samples = [timer.time_call(call)[0] / 1e6 for _ in range(repeats)]
    torch.cuda.synchronize()
    return statistics.median(samples)


def measure_peaks() -> dict[str, float]:
    """Measured ceilings: bf16 matmul FLOP/s on random data, device copy bytes (read + write)/s."""
    import torch

    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    matmul_ms = _event_median_ms(lambda: a @ b)
    source = torch.empty(2 * 1024**3, dtype=torch.uint8, device="cuda").random_()
    target = torch.empty_like(source)
    copy_ms = _event_median_ms(lambda: target.copy_(source))
    return {
        "matmul_flops_per_s": 2 * 8192**3 / (matmul_ms / 1e3),
        "copy_bytes_per_s": 2 * 2 * 1024**3 / (copy_ms / 1e3),
    }


def _code(slug: str, name: str) -> str:
    return (PROBLEMS_DIR / slug / name).read_text()


def _speed(slug: str, work: dict[str, int], median_ns: float, peaks: dict[str, float]) -> dict:
    """TFLOP/s or GB/s of one median, and its share of the measured peak."""
    seconds = median_ns / 1e9
    if slug == "triton-attention":
        rate = work["flops"] / seconds
        return {
            "unit": "TFLOP/s",
            "rate": rate / 1e12,
            "peak_pct": 100 * rate / peaks["matmul_flops_per_s"],
        }
    rate = work["bytes"] / seconds
    return {"unit": "GB/s", "rate": rate / 1e9, "peak_pct": 100 * rate / peaks["copy_bytes_per_s"]}


def _suspect(meta: dict, work: dict[str, int], median_ns: float) -> str:
    """Faster than the spec-sheet floor (bytes over HBM, FLOPs over tensor peak) is suspect."""
    floor_s = max(
        work["bytes"] / float(meta.get("speed_of_light_bytes_per_s") or 1e30),
        work["flops"] / float(meta.get("speed_of_light_flops_per_s") or 1e30),
    )
    return "suspect: beyond speed of light" if median_ns / 1e9 < floor_s else ""


def _row(slug: str, solution: str, report: GradeReport, **extra: Any) -> dict[str, Any]:
    return {
        "problem": slug,
        "solution": solution,
        "verdict": str(report.verdict),
        "message": report.message.splitlines()[0][:160] if report.message else "",
        "score": report.score,
        "candidate_median_ns": report.candidate.median_ns if report.candidate else None,
        "reference_median_ns": report.reference.median_ns if report.reference else None,
        "candidate_samples": len(report.candidate.samples_ns) if report.candidate else 0,
        **extra,
    }


def stability(spec: ProblemSpec, repeats: int) -> list[float]:
    """The reference's median over ``repeats`` timing phases, interleaved with a second copy."""
    harness_class = harness_get(spec.harness)
    spec = dataclasses.replace(spec, benchmark=spec.benchmark | STABILITY_SETTINGS)
    sessions = [
        SandboxSession(harness_class, spec.reference_code, spec.entry_point, spec.limits)
        for _ in range(2)
    ]
    harnesses = [harness_class(dataclasses.replace(spec, tests=[])) for _ in range(2)]
    medians = []
    try:
        for harness, session in zip(harnesses, sessions, strict=True):
            _tests, verdict, message = _tests_run(harness, session, SEED, lambda *_: None)
            if verdict is not Verdict.ACCEPTED:
                raise RuntimeError(f"stability sandbox did not start: {message}")
        calls = {
            name: (_reference_call(h.timed_call(s, SEED)), s)
            for name, h, s in zip(("first", "second"), harnesses, sessions, strict=True)
        }
        settings = MeasureSettings.from_dict(spec.benchmark)
        for _ in range(repeats):
            medians.append(measure_interleaved(calls, settings)["first"].median_ns)
    finally:
        for session in sessions:
            session.close()
    return medians


def _cv_pct(values: list[float]) -> float | None:
    if len(values) < 2:
        return None
    return 100 * statistics.stdev(values) / statistics.fmean(values)


def int8_sweep(peaks: dict[str, float]) -> list[dict[str, Any]]:
    """Reference W8A16 against bf16 torch.matmul at decode and prefill m, same timer, graphs."""
    import torch

    path = PROBLEMS_DIR / "int8-matmul" / "reference.py"
    module_spec = importlib.util.spec_from_file_location("int8_reference", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)  # from its file: Triton's @jit reads the source
    layer_class = module.W8A16Linear
    k, n = 4096, 14336
    timer = CudaTimer()
    rows = []
    for m in INT8_SWEEP_M:
        sets = []
        for _ in range(4):  # rotate input sets: no call finds its weights in a cache
            weight = torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * 0.05
            x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
            sets.append((x, weight, layer_class(weight)))
        times: dict[str, list[float]] = {"bf16": [], "int8": []}
        for name in times:
            graphs = []
            for x, weight, layer in sets:
                call = (
                    (lambda x=x, w=weight: x @ w.T)
                    if name == "bf16"
                    else (lambda x=x, layer=layer: layer(x))
                )
                call()
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    out = call()
                graphs.append((call, (graph, out)))
            for index in range(SWEEP_CALLS):
                call, graph = graphs[index % len(graphs)]
                times[name].append(timer.time_call(call, graph)[0])
        bf16_ns, int8_ns = statistics.median(times["bf16"]), statistics.median(times["int8"])
        int8_bytes = n * k + 4 * n + 2 * m * k + 2 * m * n
        rows.append(
            {
                "m": m,
                "bf16_us": bf16_ns / 1e3,
                "int8_us": int8_ns / 1e3,
                "speedup": bf16_ns / int8_ns,
                "int8_gb_s": int8_bytes / int8_ns,
                "int8_copy_pct": 100 * int8_bytes / (int8_ns / 1e9) / peaks["copy_bytes_per_s"],
                "int8_tflops": 2 * m * n * k / int8_ns / 1e3,
                "bf16_tflops": 2 * m * n * k / bf16_ns / 1e3,
            }
        )
        print(f"  int8 m={m}: {rows[-1]}", flush=True)
    return rows


def check_problem(slug: str, peaks: dict[str, float], hardware: dict, repeats: int) -> dict:
    folder = PROBLEMS_DIR / slug
    meta = yaml.safe_load((folder / "problem.yaml").read_text())
    spec = problem_read(folder).as_spec()
    work = harness_get("kernel")(spec).work()
    rows, states = [], []

    def graded(solution: str, against: ProblemSpec = spec) -> GradeReport:
        started = time.monotonic()
        states.append(device_state())
        code = spec.reference_code if solution == "reference.py" else _code(slug, solution)
        report = grade(against, code, seed=SEED, hardware=hardware)
        print(f"  {slug} {solution}: {report.verdict} in {time.monotonic() - started:.0f} s: "
              f"{report.message[:140]}", flush=True)  # fmt: skip
        return report

    own = graded("reference.py")
    reference_medians = [own.candidate.median_ns, own.reference.median_ns] if own.candidate else []
    rows.append(_row(slug, "reference.py", own, role="reference vs itself"))
    baseline = BASELINES.get(slug)
    if baseline:
        against = dataclasses.replace(spec, reference_code=_code(slug, baseline))
        versus = graded("reference.py", against)
        rows.append(_row(slug, "reference.py", versus, role=f"reference vs {baseline}"))
        if versus.candidate:
            reference_medians.append(versus.candidate.median_ns)
            rows.append(
                {
                    **_row(slug, baseline, versus, role="baseline"),
                    "candidate_median_ns": versus.reference.median_ns,
                    "score": round(1 / versus.score, 3) if versus.score else 0.0,
                }
            )
    for solution in sorted(
        str(path.relative_to(folder))
        for pattern in ("wrong/*.py", "cheats/*.py")
        for path in folder.glob(pattern)
    ):
        rows.append(_row(slug, solution, graded(solution), role="must fail"))
    for row in rows:
        if row["candidate_median_ns"]:
            row |= _speed(slug, work, row["candidate_median_ns"], peaks)
            row["suspect"] = _suspect(meta, work, row["candidate_median_ns"])
    started = time.monotonic()
    phases = stability(spec, repeats)
    print(
        f"  {slug} stability: {len(phases)} phases in {time.monotonic() - started:.0f} s",
        flush=True,
    )
    result = {
        "problem": slug,
        "work": work,
        "rows": rows,
        "stability_phase_medians_ns": phases,
        "stability_phase_cv_pct": _cv_pct(phases),
        "fresh_sandbox_medians_ns": reference_medians,
        "fresh_sandbox_cv_pct": _cv_pct(reference_medians),
        "device_states": states + [device_state()],
    }
    if slug == "int8-matmul":
        result["bf16_sweep"] = int8_sweep(peaks)
    return result


def table(results: list[dict], hardware: dict, peaks: dict[str, float]) -> str:
    lines = [
        f"card: {hardware['card']}, driver {hardware['driver']}, torch {hardware['torch']}, "
        f"triton {hardware['triton']}, CUDA {hardware['cuda']}, sandbox: {hardware['sandbox']}",
        f"measured peaks: bf16 matmul {peaks['matmul_flops_per_s'] / 1e12:.0f} TFLOP/s, "
        f"copy {peaks['copy_bytes_per_s'] / 1e9:.0f} GB/s (read + write)",
        "",
        f"{'problem':<24}{'solution':<32}{'verdict':<15}{'speed':>16}{'% peak':>8}"
        f"{'ratio':>8}{'CV %':>7}  note",
    ]
    for result in results:
        cv = result["stability_phase_cv_pct"]
        for row in result["rows"]:
            speed = f"{row['rate']:.1f} {row['unit']}" if row.get("rate") else ""
            peak = f"{row['peak_pct']:.1f}" if row.get("rate") else ""
            ratio = f"{row['score']:.3f}" if row.get("rate") else ""
            stable = f"{cv:.2f}" if cv is not None and row["role"] == "reference vs itself" else ""
            note = row.get("suspect") or (row["role"] if row.get("rate") else row["message"][:70])
            lines.append(
                f"{row['problem']:<24}{row['solution']:<32}{row['verdict']:<15}{speed:>16}"
                f"{peak:>8}{ratio:>8}{stable:>7}  {note}"
            )
        fresh = result["fresh_sandbox_cv_pct"]
        lines.append(
            f"{'':<24}stability: {len(result['stability_phase_medians_ns'])} timing phases CV "
            f"{cv if cv is None else round(cv, 2)} %; {len(result['fresh_sandbox_medians_ns'])} "
            f"fresh sandboxes CV {fresh if fresh is None else round(fresh, 2)} %"
        )
        for row in result.get("bf16_sweep", []):
            lines.append(
                f"{'':<24}m={row['m']:<5} bf16 torch.matmul {row['bf16_us']:8.1f} us, W8A16 "
                f"{row['int8_us']:8.1f} us ({row['int8_gb_s']:.0f} GB/s, "
                f"{row['int8_copy_pct']:.0f}% of copy): {row['speedup']:.2f}x"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", default="int8-matmul,paged-decode-attention,triton-attention")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json", type=Path, default=Path("gpu_check.json"))
    args = parser.parse_args(argv)
    hardware = card_record()
    print(json.dumps(hardware), flush=True)
    peaks = measure_peaks()
    print(json.dumps(peaks), flush=True)
    results = []
    for slug in args.problems.split(","):
        results.append(check_problem(slug, peaks, hardware, args.repeats))
        args.json.write_text(
            json.dumps(
                {"hardware": hardware, "peaks": peaks, "results": results}, indent=1, default=str
            )
        )
    print(table(results, hardware, peaks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
