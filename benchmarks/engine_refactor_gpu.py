"""Output-token throughput of two copies of `engine/` on the SmolLM2 shape, in one GPU call.

Each copy runs in its own processes (only one `engine` package can be imported per process),
alternating baseline and candidate (and which goes first, round by round) so drift on the
card hits both alike: nano-vllm's offline-mixed workload (256 requests, seeded sampling), the
benchmark's CUDA settings (bf16, Triton attention, CUDA graphs, fused ops), with async
scheduling on and off. Every process is pinned to the same CPU cores (`--cpus`): a sync step
is host-bound on this small model, so one process landing on a slower or busier core moves
its throughput by tens of percent; take one process per copy as no evidence either way.

    mkdir -p var/engine_main && git -C <main checkout> archive HEAD engine | tar -x -C var/engine_main
    python benchmarks/engine_refactor_gpu.py --baseline var/engine_main --out $OUT \
        --modes sync async --rounds 3 --repeats 2

`--baseline` is a folder holding an `engine/` package (carried to the device as an ignored
path); the candidate is this checkout's. Prints a table and writes `engine_refactor_gpu.json`
(per run: wall time, tokens/s, steps, the Python GC collections during the run, and an output
digest). `benchmarks/engine_step_syncs.py` counts the same two copies' per-step device reads
and host work on the CPU, without a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# device, model, requests, scale: the README's SmolLM2-shape throughput run.
SHAPE = ["cuda", "smollm2-135m-random", "256", "1.0"]

# Run inside a copy's folder: only the API both copies share (LLMEngine, generate, bench's
# engine_config, the workloads), so the same lines time either.
TIMED_RUN = r"""
import gc, hashlib, json, sys, time
import torch
from engine.bench import engine_config
from engine.llm_engine import LLMEngine
from engine.workloads import make_workload

mode, repeats, device, model, count, scale = sys.argv[1:]
cuda = device == "cuda"
requests = make_workload("offline-mixed", int(count), 0, float(scale))
warmup = make_workload("offline-mixed", 16, 1, float(scale))
config = engine_config(device, **({"async_scheduling": mode == "async"} if cuda else {}))
engine = LLMEngine(model, config)
sync = torch.cuda.synchronize if cuda else (lambda: None)
engine.generate([r.prompt_token_ids for r in warmup], [r.params for r in warmup])
runs = []
collections = [0]
gc.callbacks.append(lambda phase, info: collections.__setitem__(0, collections[0] + (phase == "start")))
for _ in range(int(repeats)):
    collections[0] = 0
    steps_before = len(engine.trace)
    sync()
    start = time.perf_counter()
    outputs = engine.generate([r.prompt_token_ids for r in requests], [r.params for r in requests])
    sync()
    wall_s = time.perf_counter() - start
    tokens = sum(len(o.output_token_ids) for o in outputs)
    digest = hashlib.sha256(json.dumps([o.output_token_ids for o in outputs]).encode()).hexdigest()
    runs.append({"wall_s": wall_s, "output_tokens_per_s": tokens / wall_s,
                 "steps": len(engine.trace) - steps_before, "gc_collections": collections[0],
                 "outputs_sha256": digest[:16]})
name = torch.cuda.get_device_name() if cuda else "cpu"
print("RESULT " + json.dumps({"device": name, "runs": runs}))
"""


def timed(folder: Path, mode: str, repeats: int, smoke: bool, cpus: set[int]) -> dict:
    """One process of `folder`'s engine, pinned to `cpus`: `repeats` timed runs after a warm-up."""
    workload = ["cpu", "tiny", "8", "0.05"] if smoke else SHAPE
    done = subprocess.run(
        [sys.executable, "-c", TIMED_RUN, mode, str(repeats), *workload],
        cwd=folder,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(folder)},
        preexec_fn=lambda: os.sched_setaffinity(0, cpus),
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise SystemExit(f"{folder} ({mode}) failed:\n{done.stderr[-4000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="a folder holding the baseline engine/")
    parser.add_argument("--rounds", type=int, default=2, help="processes per copy and mode")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per process")
    parser.add_argument("--out", default="var/engine_refactor_gpu")
    parser.add_argument("--modes", nargs="+", choices=("async", "sync"), default=["async", "sync"])
    parser.add_argument(
        "--cpus", type=int, default=4, help="pin every process to the first CPUS cores it may use"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny model on the CPU: checks the script"
    )
    args = parser.parse_args(argv)
    copies = {"baseline": Path(args.baseline).resolve(), "candidate": ROOT}
    cpus = set(sorted(os.sched_getaffinity(0))[: args.cpus])
    result: dict = {"modes": {}, "cpus": sorted(cpus)}
    for mode in args.modes:
        samples: dict[str, list[dict]] = {name: [] for name in copies}
        for round_ in range(args.rounds):
            order = list(copies.items())
            for name, folder in order[:: -1 if round_ % 2 else 1]:
                run = timed(folder, mode, args.repeats, args.smoke, cpus)
                result["device"] = run["device"]
                samples[name] += run["runs"]
        medians = {
            name: statistics.median(r["output_tokens_per_s"] for r in runs)
            for name, runs in samples.items()
        }
        digests = {
            name: sorted({r["outputs_sha256"] for r in runs}) for name, runs in samples.items()
        }
        change = medians["candidate"] / medians["baseline"] - 1
        result["modes"][mode] = {"median_output_tokens_per_s": medians, "change": change,
                                 "outputs_sha256": digests, "runs": samples}  # fmt: skip
        print(f"{mode:<6} baseline {medians['baseline']:>9,.0f} tok/s  candidate "
              f"{medians['candidate']:>9,.0f} tok/s  change {change:+.1%}  "
              f"outputs {'same' if digests['baseline'] == digests['candidate'] else 'DIFFER'}")  # fmt: skip
    print(f"device: {result['device']}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "engine_refactor_gpu.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
