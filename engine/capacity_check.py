"""Measure the engine's prefill and decode step times, then check the capacity model against them.

Times `ModelRunner.run` (the engine's forward pass with its host-side input building) on random
weights for both engine shapes, fits `Efficiency` on one shape (prefill's host input building
per token, per-layer host floor and overheads, prefill's activation bandwidth, the KV read's
bandwidth apart from the weights'), and prints the other shape's predictions beside what was
measured, both ways round. One call does everything; results in engine/README.md:

    python -m engine.capacity_check --out $OUT          # on the GPU machine
    python -m engine.capacity_check --device cpu --quick # a smoke run anywhere
    python -m engine.capacity_check --report tests/engine/capacity_h100.json  # saved numbers
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import time
from dataclasses import asdict
from pathlib import Path

import torch

from engine.bench import engine_config
from engine.capacity import (
    Efficiency,
    Measurement,
    compare,
    comparison_table,
    fit_efficiency,
)
from engine.config import EngineConfig, ModelConfig
from engine.hardware import detect_hardware
from engine.model_runner import ModelRunner
from engine.sequence import Sequence
from engine.weights import build_hf_model

SHAPES = ("smollm2-135m-random", "llama-1b-random")
# (batch, prompt tokens): single prompts of growing length, then batches of 512-token prompts.
PREFILL_POINTS = ((1, 128), (1, 512), (1, 2048), (4, 512), (16, 512), (64, 512), (256, 512))
DECODE_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
DECODE_CONTEXT_TOKENS = 512
QUICK_PREFILL = ((1, 64), (2, 64))
QUICK_DECODE = (1, 4)
# Enough timed repetitions for a stable median, capped by wall time so big prefills stay short.
MAX_REPS, MAX_TIMED_S = 30, 2.0


def catalog_gpu(device: str) -> str:
    """The capacity catalog's name for the card the run is on."""
    if device != "cuda":
        return "h100-sxm"  # a CPU smoke run: predictions are for an H100, the numbers are not
    name = torch.cuda.get_device_name()
    return "h200" if "H200" in name else "h100-sxm"


def build_runner(name: str, device: str, num_blocks: int, max_model_len: int) -> ModelRunner:
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    hf = build_hf_model(name, device, dtype)
    config = ModelConfig.from_hf(name, hf.config)
    engine = engine_config(
        device, max_num_seqs=max(DECODE_BATCHES), max_model_len=max_model_len,
        num_kv_blocks=num_blocks,
    )  # fmt: skip
    if device == "cuda":
        from engine.triton_attention import TritonAttention

        attention = TritonAttention()
    else:
        from engine.attention import TorchAttention

        attention = TorchAttention()
    runner = ModelRunner(config, engine, hf.state_dict(), attention)
    del hf
    runner.kv_cache.normal_()  # never time attention over zeros
    return runner


def scheduled_step(
    runner: ModelRunner, batch: int, tokens: int, new_tokens: int, rng: random.Random
) -> list[tuple[Sequence, int]]:
    """`batch` sequences of `tokens` tokens each, computing their last `new_tokens`."""
    bs = runner.config.block_size
    blocks = math.ceil(tokens / bs)
    vocab = runner.model_config.vocab_size
    step = []
    for row in range(batch):
        seq = Sequence([rng.randrange(vocab) for _ in range(tokens)])
        seq.block_table = list(range(row * blocks, (row + 1) * blocks))
        seq.num_computed_tokens = tokens - new_tokens
        step.append((seq, new_tokens))
    return step


def time_step_ms(runner: ModelRunner, step: list[tuple[Sequence, int]]) -> float:
    """Median wall time of `runner.run(step)`, synchronised, after three warm-ups."""
    sync = torch.cuda.synchronize if runner.device.type == "cuda" else (lambda: None)
    for _ in range(3):
        runner.run(step)
    sync()
    times: list[float] = []
    began = time.perf_counter()
    while len(times) < MAX_REPS and (len(times) < 5 or time.perf_counter() - began < MAX_TIMED_S):
        start = time.perf_counter()
        runner.run(step)
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def measure_shape(name: str, device: str, gpu: str, quick: bool) -> list[Measurement]:
    prefill_points = QUICK_PREFILL if quick else PREFILL_POINTS
    decode_batches = QUICK_DECODE if quick else DECODE_BATCHES
    context = 64 if quick else DECODE_CONTEXT_TOKENS
    longest = max([length for _, length in prefill_points] + [context])
    bs = EngineConfig().block_size
    blocks = max(
        max(b * math.ceil(length / bs) for b, length in prefill_points),
        max(decode_batches) * math.ceil(context / bs),
    )
    runner = build_runner(name, device, blocks, longest)
    rng = random.Random(0)
    measured = []
    for batch, length in prefill_points:
        ms = time_step_ms(runner, scheduled_step(runner, batch, length, length, rng))
        measured.append(Measurement("prefill", name, gpu, batch, length, ms))
        print(f"{name} prefill batch {batch} × {length}: {ms:.3f} ms", flush=True)
    for batch in decode_batches:
        ms = time_step_ms(runner, scheduled_step(runner, batch, context, 1, rng))
        measured.append(Measurement("decode", name, gpu, batch, context, ms))
        print(f"{name} decode batch {batch} at {context}: {ms:.3f} ms", flush=True)
    del runner
    if device == "cuda":
        torch.cuda.empty_cache()
    return measured


def cross_shape_fit(measured: list[Measurement], fit_on: str) -> Efficiency:
    """Factors fitted on one shape: prefill host time per token, per-layer host floor and
    overheads, prefill activation bandwidth, KV read bandwidth apart from the weights'."""
    return fit_efficiency(
        [m for m in measured if m.model == fit_on], overhead="per_layer", split_kv=True
    )


def cross_shape_report(measured: list[Measurement]) -> str:
    """Fit on each shape in turn and tabulate the other shape's predicted vs measured."""
    parts = []
    for fit_on, other in (SHAPES, SHAPES[::-1]):
        efficiency = cross_shape_fit(measured, fit_on)
        rows = compare([m for m in measured if m.model == other], efficiency)
        worst = {
            kind: max(abs(r.error) for r in rows if r.measurement.kind == kind)
            for kind in dict.fromkeys(r.measurement.kind for r in rows)
        }
        parts += [
            f"\nfitted on {fit_on}: {efficiency.describe()}",
            comparison_table(rows),
            f"worst error on {other}: "
            + ", ".join(f"{kind} {error:.0%}" for kind, error in worst.items()),
        ]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="var/capacity_check")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--quick", action="store_true", help="two tiny points per kind")
    parser.add_argument(
        "--report", metavar="JSON", help="measure nothing: report a saved capacity_check.json"
    )
    args = parser.parse_args(argv)
    if args.report:
        saved = json.loads(Path(args.report).read_text())
        print(f"card: {saved['hardware']} (catalog {saved['gpu']})")
        print(cross_shape_report([Measurement(**m) for m in saved["measurements"]]))
        return 0
    hardware = detect_hardware()
    gpu = catalog_gpu(args.device)
    print(f"card: {hardware.label} (catalog {gpu})", flush=True)
    measured = [m for name in SHAPES for m in measure_shape(name, args.device, gpu, args.quick)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "hardware": hardware.label,
        "gpu": gpu,
        "measurements": [asdict(m) for m in measured],
    }
    (out / "capacity_check.json").write_text(json.dumps(result, indent=2))
    print(cross_shape_report(measured))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
