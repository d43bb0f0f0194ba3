"""tp-mlp's GPU tier on two cards (NCCL, NVLink multicast off): one table from one device command.

1. **Measured directly** (our code, two processes, no sandbox): the problem's reference on
   ``cuda:0`` and ``cuda:1`` against the single-device MLP on ``cuda:0``, for Llama-3-8B's MLP
   (hidden 4,096, intermediate 14,336) in bfloat16 at 1 to 4,096 tokens: the forward pass, the
   all-reduce of its output alone and its share, the speed-up over one card, and the largest
   error against the single-device output. CUDA events, 10 warm-up and 50 timed calls a shape,
   median (the slower rank's), a barrier before each call.
2. **Graded** through ``grader.grading.grade`` with the ``tensor_parallel_gpu`` kind (NCCL in
   one sandbox, rank ``r`` on ``cuda:r``; sandboxed where bubblewrap is, as the worker runs
   it): the reference, each wrong solution and the cheat, on the problem's tests and a
   benchmark of 64 tokens at hidden 2,048, intermediate 8,192 (float32, as the CPU tier; every
   output is checked in float64 on this host's CPU, which bounds the size).

JSON in ``--json`` (rewritten after each part). ``--smoke`` runs both parts on the CPU with
gloo at small shapes (what this script is checked with where there is no card).

    NCCL_NVLS_ENABLE=0 python -m benchmarks.tp_mlp_gpu --json $OUT/tp_mlp_gpu.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grader.bank import PROBLEMS_DIR, problem_read  # noqa: E402

FOLDER = PROBLEMS_DIR / "tp-mlp"
HIDDEN, INTERMEDIATE = 4096, 14336  # Llama-3-8B's MLP
GPU_TOKENS = (1, 16, 128, 1024, 4096)
SMOKE_SHAPE, SMOKE_TOKENS = (256, 1024), (1, 64)
WARMUP, TIMED = 10, 50
# Each solution graded: (label, file of the problem's folder)
GRADED = [
    ("reference", "reference.py"),
    ("wrong: no all-reduce", "wrong/no_all_reduce.py"),
    ("wrong: all-reduce before down", "wrong/all_reduce_before_down.py"),
    ("wrong: fused gate_up split in half", "wrong/fused_gate_up_split_in_half.py"),
    ("cheat: rank 0 computes all", "cheats/rank0_computes_all.py"),
]


def _timer(device: str):
    """(start, stop -> ms) around work on ``device``: CUDA events, or the wall clock."""
    import torch

    if device.startswith("cuda"):
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

        def start() -> None:
            begin.record()

        def stop() -> float:
            end.record()
            end.synchronize()
            return begin.elapsed_time(end)

        return start, stop
    clock = {}

    def start_wall() -> None:
        clock["t"] = time.perf_counter()

    def stop_wall() -> float:
        return (time.perf_counter() - clock["t"]) * 1e3

    return start_wall, stop_wall


def _median_ms(run, device: str, slowest) -> float:
    """Median over ``TIMED`` calls of ``run`` (after ``WARMUP``), each the slower rank's."""
    start, stop = _timer(device)
    for _ in range(WARMUP):
        run()
    samples = []
    for _ in range(TIMED):
        slowest(None)  # a barrier: both ranks start together
        start()
        run()
        samples.append(slowest(stop()))
    return statistics.median(samples)


def _rank(rank: int, args: argparse.Namespace, rendezvous: str, results: str) -> None:
    import torch
    import torch.distributed as dist

    from grader.harnesses.engine_run import reference_class

    backend = "gloo" if args.smoke else "nccl"
    os.environ.setdefault("NCCL_NVLS_ENABLE", "0")
    device = "cpu" if args.smoke else f"cuda:{rank}"
    if args.smoke:
        torch.set_num_threads(1)  # one core per rank, as in the sandbox
    else:
        torch.cuda.set_device(rank)
    dist.init_process_group(backend, init_method=f"file://{rendezvous}", rank=rank, world_size=2)
    problem = problem_read(FOLDER)
    tp_class = reference_class(problem.reference_code, problem.entry_point)
    hidden, inter = SMOKE_SHAPE if args.smoke else (HIDDEN, INTERMEDIATE)
    dtype = torch.float32 if args.smoke else torch.bfloat16

    def slowest(value: float | None) -> float:
        if value is None:
            dist.barrier()
            return 0.0
        box = torch.tensor([value], dtype=torch.float64, device=device)
        dist.all_reduce(box, op=dist.ReduceOp.MAX)
        return float(box)

    generator = torch.Generator().manual_seed(0)
    gate = (torch.randn(inter, hidden, generator=generator) / hidden**0.5).to(dtype)
    up = (torch.randn(inter, hidden, generator=generator) / hidden**0.5).to(dtype)
    down = (torch.randn(hidden, inter, generator=generator) / inter**0.5).to(dtype)
    module = tp_class(gate, up, down, rank, 2)
    full = [w.to(device) for w in (gate, up, down)] if rank == 0 else None
    rows = []
    for tokens in SMOKE_TOKENS if args.smoke else GPU_TOKENS:
        x = torch.randn(tokens, hidden, generator=generator).to(dtype).to(device)
        y = module.forward(x)
        row = {"tokens": tokens, "hidden": hidden, "intermediate": inter, "dtype": str(dtype)}
        row["tp_ms"] = _median_ms(lambda x=x: module.forward(x), device, slowest)
        buffer = torch.empty_like(y)
        row["allreduce_ms"] = _median_ms(lambda b=buffer: dist.all_reduce(b), device, slowest)
        if rank == 0:
            g, u, d = full
            want = (torch.nn.functional.silu(x @ g.T) * (x @ u.T)) @ d.T
            row["max_error_rel"] = float((y - want).abs().max() / want.abs().max())
            start, stop = _timer(device)
            for _ in range(WARMUP):
                (torch.nn.functional.silu(x @ g.T) * (x @ u.T)) @ d.T
            samples = []
            for _ in range(TIMED):
                start()
                (torch.nn.functional.silu(x @ g.T) * (x @ u.T)) @ d.T
                samples.append(stop())
            row["single_ms"] = statistics.median(samples)
            row["allreduce_share"] = row["allreduce_ms"] / row["tp_ms"]
            row["speedup"] = row["single_ms"] / row["tp_ms"]
            rows.append(row)
        dist.barrier()  # rank 1 waits while rank 0 times the single card alone
    if rank == 0:
        Path(results).write_text(json.dumps(rows))
    dist.destroy_process_group()


def direct(args: argparse.Namespace) -> list[dict]:
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as folder:
        results = f"{folder}/rows.json"
        mp.spawn(_rank, args=(args, f"{folder}/rendezvous", results), nprocs=2, join=True)
        rows = json.loads(Path(results).read_text())
    print(
        f"\n{'tokens':>7} {'dtype':>15} {'1 card ms':>10} {'TP x2 ms':>9} {'all-reduce ms':>14} "
        f"{'share':>6} {'speed-up':>9} {'max rel err':>12}"
    )
    for row in rows:
        print(
            f"{row['tokens']:>7} {row['dtype']:>15} {row['single_ms']:>10.3f} "
            f"{row['tp_ms']:>9.3f} {row['allreduce_ms']:>14.3f} {row['allreduce_share']:>6.0%} "
            f"{row['speedup']:>8.2f}x {row['max_error_rel']:>12.2e}"
        )
    return rows


def graded(args: argparse.Namespace) -> list[dict]:
    from grader.grading import grade
    from grader.sandbox import sandbox_kind

    problem = problem_read(FOLDER)
    spec = problem.as_spec()
    if not args.smoke:
        big = {"tokens": 64, "hidden": 2048, "intermediate": 8192}
        spec = dataclasses.replace(
            spec,
            harness="tensor_parallel_gpu",
            benchmark=spec.benchmark | big,
            tests=[*spec.tests[:3], spec.tests[3] | big],
            # CUDA reserves far more address space than it uses (as the kernel problems), and
            # CUDA and NCCL start threads of their own in each rank (they count as processes)
            limits=dataclasses.replace(spec.limits, memory_bytes=2**40, processes=256),
        )
    rows = []
    print(f"\nsandbox: {sandbox_kind()}")
    for label, path in GRADED:
        started = time.perf_counter()
        report = grade(spec, (FOLDER / path).read_text(), seed=7, hardware={})
        balance = [t for t in report.tests if t.name == "balance"]
        row = {
            "solution": label,
            "verdict": str(report.verdict),
            "score": report.score,
            "message": report.message[:300],
            "grade_s": round(time.perf_counter() - started, 1),
            "candidate_median_ms": report.candidate.median_ns / 1e6 if report.candidate else None,
            "balance": balance[0].details if balance else None,
        }
        rows.append(row)
        median = row["candidate_median_ms"]
        print(
            f"{label:36} {row['verdict']:14} score {row['score']:<6} "
            f"{'' if median is None else f'{median:.3f} ms':>10}  {row['grade_s']} s  "
            f"{row['message'][:110]}"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default="tp_mlp_gpu.json")
    parser.add_argument("--smoke", action="store_true", help="CPU and gloo, small shapes")
    parser.add_argument("--skip-grades", action="store_true")
    args = parser.parse_args()
    import torch

    card = "CPU (smoke)" if args.smoke else torch.cuda.get_device_name(0)
    if not args.smoke and torch.cuda.device_count() < 2:
        raise SystemExit(f"needs two cards; this host has {torch.cuda.device_count()}")
    record = {"card": card, "torch": torch.__version__, "nccl_nvls_enable": "0"}
    print(f"card: {card} x2, torch {torch.__version__}")
    record["direct"] = direct(args)
    Path(args.json).write_text(json.dumps(record, indent=1))
    if not args.skip_grades:
        record["grades"] = graded(args)
        Path(args.json).write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
