"""Per-step host work of two copies of `engine/` in sync mode, on the CPU: no GPU needed.

A sync step's cost on a card that async scheduling hides is host work and device-to-host
reads (each one a sync). This counts them per step for a baseline copy and this checkout's,
each in its own process (only one `engine` package per process), on the tiny random model
with nano-vllm's offline-mixed workload:

- `d2h`: reads of tensor values on the host (`Tensor.tolist/item/cpu/numpy/__bool__` and
  `aten::_local_scalar_dense`), split into the model runner's (`run`) and the rest of the step.
  On the CPU every tensor is a host tensor, so this also counts reads that stay on the host
  on a card (`SamplingBatch`'s flags read its host copy): compare the two columns, and see
  `tests/engine/test_step_syncs.py` for reads of device values alone;
- `copies`: `aten::_to_copy` / `aten::copy_` (host-to-device uploads on a card);
- `new`: tensor constructions (`aten::empty*`, `aten::lift_fresh` = `torch.tensor`,
  `torch.from_numpy`, `Tensor.pin_memory`);
- `host_ms`: the step's CPU time minus the model runner's and the sampler's, per step (a
  separate, uncounted pass; on a loaded machine it still moves by +-20%);
- `gc`: Python garbage collections per step, by generation.

    python benchmarks/engine_step_syncs.py --baseline var/engine_main
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

COUNT_RUN = r"""
import collections, gc, json, sys, time
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from engine.bench import engine_config
from engine.llm_engine import LLMEngine
from engine.workloads import make_workload

count, scale = int(sys.argv[1]), float(sys.argv[2])
torch.manual_seed(0)
requests = make_workload("offline-mixed", count, 0, scale)
counts = collections.Counter()
phase = ["step"]
READS = ("tolist", "item", "cpu", "numpy", "__bool__")
NEW = ("empty.memory_format", "empty_strided.default", "lift_fresh.default",
       "scalar_tensor.default", "zeros.default", "full.default")

def counting(name, kind, fn):
    def wrapper(*args, **kwargs):
        if active[0]:
            counts[(phase[0], kind, name)] += 1
        return fn(*args, **kwargs)
    return wrapper

active = [False]
for name in READS:
    setattr(torch.Tensor, name, counting(name, "d2h", getattr(torch.Tensor, name)))
torch.Tensor.pin_memory = counting("pin_memory", "new", torch.Tensor.pin_memory)
torch.from_numpy = counting("from_numpy", "new", torch.from_numpy)

gc_s = [0.0, 0.0]
def on_gc(event, info):
    if event == "start":
        gc_s[1] = time.perf_counter()
        if active[0]:
            counts[("step", "gc", f"gen{info['generation']}")] += 1
    else:
        gc_s[0] += time.perf_counter() - gc_s[1]
gc.callbacks.append(on_gc)

class Ops(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func).removeprefix("aten.")
        if name.startswith("_local_scalar_dense"):
            counts[(phase[0], "d2h", "_local_scalar_dense")] += 1
        elif name.startswith(("_to_copy", "copy_")):
            counts[(phase[0], "copies", name)] += 1
        elif name in NEW:
            counts[(phase[0], "new", name)] += 1
        return func(*args, **(kwargs or {}))

engine = LLMEngine("tiny", engine_config("cpu"))
clock = time.process_time  # CPU time of this process: less moved by other load than wall time
run, sample = engine.runner.run, engine.sampler.sample
run_s = [0.0]
def timed_run(*args, **kwargs):
    phase[0] = "run"
    start = clock()
    try:
        return run(*args, **kwargs)
    finally:
        run_s[0] += clock() - start
        phase[0] = "step"
def timed_sample(*args, **kwargs):
    start = clock()
    try:
        return sample(*args, **kwargs)
    finally:
        run_s[0] += clock() - start
engine.runner.run, engine.sampler.sample = timed_run, timed_sample

def serve():
    for r in requests:
        engine.add_request(r.prompt_token_ids, r.params)
    steps, step_s, tokens = 0, 0.0, []
    while engine.has_unfinished():
        start = clock()
        tokens += [o.output_token_ids for o in engine.step()]
        step_s += clock() - start
        steps += 1
    return steps, step_s, tokens

serve()  # warm-up
run_s[0] = gc_s[0] = 0.0
steps, step_s, tokens = serve()
host_ms = (step_s - run_s[0]) / steps * 1e3
gc_ms = gc_s[0] / steps * 1e3
active[0] = True
with Ops():
    counted_steps, _, counted_tokens = serve()
active[0] = False
assert counted_steps == steps
per_step = {" ".join(k): v / steps for k, v in sorted(counts.items())}
print("RESULT " + json.dumps({"steps": steps, "host_ms": host_ms, "gc_ms": gc_ms, "per_step": per_step,
                              "tokens": sorted(map(tuple, tokens)) == sorted(map(tuple, counted_tokens))}))
"""


def measure(folder: Path, count: int, scale: float) -> dict:
    """One process of `folder`'s engine: per-step counts and host time, sync mode, CPU."""
    done = subprocess.run(
        [sys.executable, "-c", COUNT_RUN, str(count), str(scale)],
        cwd=folder,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(folder)},
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise SystemExit(f"{folder} failed:\n{done.stderr[-4000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="a folder holding the baseline engine/")
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--scale", type=float, default=0.05)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    results = {
        name: measure(folder, args.requests, args.scale)
        for name, folder in (("baseline", Path(args.baseline).resolve()), ("candidate", ROOT))
    }
    keys = sorted({k for r in results.values() for k in r["per_step"]})
    print(f"{'per sync step':<44} {'baseline':>9} {'candidate':>9}")
    for key in keys:
        old, new = (results[n]["per_step"].get(key, 0.0) for n in ("baseline", "candidate"))
        print(f"{key:<44} {old:>9.2f} {new:>9.2f}")
    for field in ("steps", "host_ms", "gc_ms"):
        print(f"{field:<44} {results['baseline'][field]:>9.3f} {results['candidate'][field]:>9.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
