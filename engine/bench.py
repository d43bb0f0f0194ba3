"""Benchmark one engine mode on a named workload: prints a table, writes JSON.

    python -m engine.bench --model tiny --mode continuous --device cpu \\
        --workload offline-mixed --requests 64 --scale 0.25 --seed 0 --json var/bench.json
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from engine.config import MODEL_NAMES, EngineConfig
from engine.driver import drive
from engine.hardware import detect_hardware
from engine.metrics import compute_metrics
from engine.workloads import WORKLOADS, Request, make_workload


def engine_config(device: str, **overrides) -> EngineConfig:
    """bf16, Triton attention, fused ops, CUDA graphs and async scheduling on CUDA; float32 and
    the torch reference on CPU."""
    if device == "cuda":
        settings = dict(
            device="cuda", dtype="bfloat16", attention="triton", cuda_graphs=True, fused_ops=True,
            async_scheduling=True,
        )  # fmt: skip
        return EngineConfig(**{**settings, **overrides})
    return EngineConfig(**overrides)


def run_hf(model: str, device: str, requests: list[Request], batch_size: int) -> tuple[list, float]:
    """transformers' `generate` in static, left-padded batches of `batch_size` (the baseline)."""
    from transformers import LogitsProcessor, LogitsProcessorList

    from engine.llm_engine import RequestOutput
    from engine.weights import build_hf_model

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    hf = build_hf_model(model, device, dtype)

    class StepClock(LogitsProcessor):
        def __init__(self):
            self.times: list[float] = []

        def __call__(self, input_ids, scores):
            self.times.append(time.perf_counter())
            return scores

    outputs = []
    start = time.perf_counter()
    for first in range(0, len(requests), batch_size):
        batch = requests[first : first + batch_size]
        longest = max(len(r.prompt_token_ids) for r in batch)
        ids = torch.zeros(len(batch), longest, dtype=torch.int64)
        mask = torch.zeros_like(ids)
        for row, r in enumerate(batch):
            ids[row, longest - len(r.prompt_token_ids) :] = torch.tensor(r.prompt_token_ids)
            mask[row, longest - len(r.prompt_token_ids) :] = 1
        new = max(r.params.max_tokens for r in batch)
        clock = StepClock()
        temperature = batch[0].params.temperature
        tokens = hf.generate(
            ids.to(device), attention_mask=mask.to(device), max_new_tokens=new, min_new_tokens=new,
            do_sample=temperature > 0, temperature=temperature or None, top_k=0, pad_token_id=0,
            logits_processor=LogitsProcessorList([clock]),
        )  # fmt: skip
        tokens = tokens[:, longest:].tolist()
        for row, r in enumerate(batch):
            n = r.params.max_tokens
            outputs.append(
                RequestOutput(
                    str(first + row),
                    r.prompt_token_ids,
                    tokens[row][:n],
                    "length",
                    arrival_time=start,
                    token_times=clock.times[:n],
                )
            )
    if device == "cuda":
        torch.cuda.synchronize()
    return outputs, time.perf_counter() - start


def bench(args: argparse.Namespace) -> dict:
    requests = make_workload(args.workload, args.requests, args.seed, args.scale)
    # The engine's warm-up is big enough to run every kernel shape once (prefill chunks, mixed
    # steps, graph sizes); transformers' needs only a short padded batch.
    warmup = make_workload("offline-mixed", 16, args.seed + 1, args.scale)
    if args.mode == "hf":
        warmup = [replace(r, params=replace(r.params, max_tokens=16)) for r in warmup[:2]]
    config = engine_config(
        args.device,
        max_num_seqs=args.max_num_seqs,
        max_num_batched_tokens=args.max_num_batched_tokens,
        max_model_len=args.max_model_len,
    )
    trace, num_blocks, preemptions, kv_used = [], 0, 0, []
    if args.mode == "hf":
        run_hf(args.model, args.device, warmup, args.max_num_seqs)
        outputs, wall_s = run_hf(args.model, args.device, requests, args.max_num_seqs)
    else:
        from engine.llm_engine import LLMEngine
        from engine.schedulers import PriorityScheduler

        scheduler_cls = PriorityScheduler if args.workload == "priority-mix" else None
        engine = LLMEngine(
            args.model, config, static=args.mode == "static", scheduler_cls=scheduler_cls
        )
        drive(engine, warmup)
        preempted_before = engine.scheduler.num_preemptions
        run = drive(engine, requests, concurrency=args.concurrency)
        outputs, wall_s = run.outputs, run.wall_s
        trace = [vars(step) for step in engine.trace]
        kv_used = [step.kv_blocks_used for step in engine.trace]
        num_blocks = engine.allocator.num_blocks
        preemptions = engine.scheduler.num_preemptions - preempted_before
    errors = [out.error for out in outputs if out.error]
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, first: {errors[0]}")
    metrics = compute_metrics(outputs, wall_s, kv_used, num_blocks, preemptions)
    result = {
        "mode": args.mode, "model": args.model, "device": args.device, "workload": args.workload,
        "seed": args.seed, "scale": args.scale, "hardware": detect_hardware().as_dict(),
    } | metrics.as_dict()  # fmt: skip
    if args.trace:
        Path(args.trace).parent.mkdir(parents=True, exist_ok=True)
        Path(args.trace).write_text(json.dumps(trace))
    return result


def print_table(result: dict) -> None:
    rows = [
        ("mode", result["mode"]), ("model", result["model"]), ("hardware", result["hardware"]["label"]),
        ("requests", result["requests"]), ("output tokens", result["output_tokens"]),
        ("wall s", f"{result['wall_s']:.2f}"), ("output tok/s", f"{result['output_tokens_per_s']:.1f}"),
        ("requests/s", f"{result['requests_per_s']:.2f}"),
        *((f"{key} p50/p90/p99", "{p50:.1f} / {p90:.1f} / {p99:.1f}".format(**result[key])) for key in ("ttft_ms", "tpot_ms", "itl_ms")),
        ("kv use mean/peak", "{mean:.2f} / {peak:.2f}".format(**result["kv_utilization"])),
        ("preemptions", result["preemptions"]), ("steps", result["steps"]),
    ]  # fmt: skip
    for key, value in rows:
        print(f"{key:<22} {value}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=MODEL_NAMES, default="tiny")
    parser.add_argument("--mode", choices=("continuous", "static", "hf"), default="continuous")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="offline-mixed")
    parser.add_argument("--requests", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--scale", type=float, default=1.0, help="shrink prompt and output lengths (CPU runs)"
    )
    parser.add_argument("--max-num-seqs", type=int, default=256)
    parser.add_argument("--max-num-batched-tokens", type=int, default=8192)
    parser.add_argument("--max-model-len", type=int, default=4096)
    parser.add_argument("--concurrency", type=int, default=None, help="cap on requests in flight")
    parser.add_argument("--json", type=str, default=None)
    parser.add_argument(
        "--trace", type=str, default=None, help="write the per-step trace JSON here"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = bench(args)
    print_table(result)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
