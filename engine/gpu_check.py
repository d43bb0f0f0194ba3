"""One-call GPU check: copy bandwidth, bf16 correctness vs transformers (vLLM's top-5 rule),
Triton kernels vs the torch reference, decode step time vs memory roofline, and the
offline-mixed benchmarks (continuous, static, hf) for both random-weight shapes.

    python -m engine.gpu_check --out $OUT            # everything
    python -m engine.gpu_check --out $OUT --quick    # skip the hf and static benchmarks
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import subprocess
import sys
import time
from pathlib import Path

import torch

from engine.attention import TorchAttention
from engine.bench import engine_config
from engine.config import ModelConfig, SamplingParams
from engine.hardware import detect_hardware
from engine.llm_engine import LLMEngine
from engine.topk_topp_sampler import TopKTopPSampler
from engine.weights import build_hf_model

SHAPES = {"smollm2-135m-random": 256, "llama-1b-random": 64}  # decode batch for the roofline
STEPS_PER_WINDOW = 20


def copy_bandwidth_gbps(size_bytes: int = 1 << 30) -> float:
    """Device-to-device copy, bytes read plus written over the median time of 20 copies."""
    src = torch.randn(size_bytes // 4, device="cuda")
    dst = torch.empty_like(src)
    times = []
    for _ in range(23):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        dst.copy_(src)
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    median_ms = sorted(times[3:])[len(times[3:]) // 2]
    return 2 * size_bytes / (median_ms * 1e-3) / 1e9


class RecordingSampler(TopKTopPSampler):
    """Greedy sampler that keeps each step's top-5 token ids (for the top-5 rule)."""

    def __init__(self):
        super().__init__()
        self.top5: list[list[int]] = []

    def sample(self, logits, batch):
        self.top5.append(logits[0].topk(5).indices.tolist())
        return super().sample(logits, batch)


def check_correctness(name: str, num_prompts: int = 8, max_tokens: int = 32) -> dict:
    """Engine (bf16, Triton, CUDA graphs) vs transformers' generate, each prompt alone."""
    hf = build_hf_model(name, "cuda", torch.bfloat16)
    config = ModelConfig.from_hf(name, hf.config)
    engine = LLMEngine(config, engine_config("cuda", max_num_seqs=16), state_dict=hf.state_dict())
    rng = random.Random(7)
    prompts = [
        [rng.randint(0, 10000) for _ in range(rng.randint(5, 300))] for _ in range(num_prompts)
    ]
    params = SamplingParams(temperature=0, max_tokens=max_tokens, ignore_eos=True)
    outs = engine.generate(prompts, params)
    results, probe, recorder = [], None, RecordingSampler()
    for prompt, out in zip(prompts, outs, strict=True):
        with torch.no_grad():
            ref = hf.generate(
                torch.tensor([prompt], device="cuda"), max_new_tokens=max_tokens, min_new_tokens=max_tokens,
                do_sample=False, output_scores=True, return_dict_in_generate=True, pad_token_id=0,
            )  # fmt: skip
        ref_tokens = ref.sequences[0, len(prompt) :].tolist()
        mine = out.output_token_ids
        diverge = next(
            (i for i, (a, b) in enumerate(zip(mine, ref_tokens, strict=True)) if a != b), None
        )
        ok = True
        if diverge is not None:
            hf_top5 = ref.scores[diverge][0].topk(5).indices.tolist()
            if probe is None:  # one eager engine serves every probe: no graph captures
                probe = LLMEngine(
                    config,
                    engine_config("cuda", max_num_seqs=4, cuda_graphs=False),
                    state_dict=hf.state_dict(),
                    sampler=recorder,
                )
            recorder.top5.clear()
            probe.generate(
                [prompt + ref_tokens[:diverge]], SamplingParams(temperature=0, max_tokens=1)
            )
            ok = mine[diverge] in hf_top5 and ref_tokens[diverge] in recorder.top5[0]
        results.append({"prompt_len": len(prompt), "first_diff": diverge, "top5_ok": ok})
    del engine, hf, probe
    torch.cuda.empty_cache()
    return {"model": name, "prompts": results, "pass": all(r["top5_ok"] for r in results)}


def decode_roofline(name: str, batch: int, bandwidth_gbps: float, context: int = 512) -> dict:
    """Engine step time (median of five 20-step windows) with `batch` sequences decoding at
    ~`context` tokens of context, against the step's memory roofline."""
    engine = LLMEngine(name, engine_config("cuda", max_num_seqs=batch))
    rng = random.Random(0)
    for _ in range(batch):
        engine.add_request(
            [rng.randint(0, 10000) for _ in range(context)],
            SamplingParams(temperature=0.6, max_tokens=4000, ignore_eos=True),
        )
    while (
        any(s.num_computed_tokens < s.num_prompt_tokens for s in engine.scheduler.running)
        or engine.scheduler.waiting
    ):
        engine.step()
    for _ in range(5):
        engine.step()
    torch.cuda.synchronize()
    # Steady state: with async scheduling a step's host work overlaps the previous step's GPU
    # work, so time windows of consecutive steps, not single steps each followed by a sync.
    times, kv_tokens = [], []
    for _ in range(5):
        running = engine.scheduler.running
        kv_tokens.append(sum(s.num_tokens for s in running) + len(running) * STEPS_PER_WINDOW / 2)
        start = time.perf_counter()
        for _ in range(STEPS_PER_WINDOW):
            engine.step()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - start) / STEPS_PER_WINDOW)
    replay_ms = graph_replay_ms(engine, batch)
    profile = io.StringIO()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(10):
        engine.step()
    torch.cuda.synchronize()
    profiler.disable()
    pstats.Stats(profiler, stream=profile).sort_stats("tottime").print_stats(12)
    Path(os.environ.get("OUT", "var/gpu"), f"profile-{name}.txt").write_text(profile.getvalue())
    config = engine.model_config
    step_ms = sorted(times)[len(times) // 2] * 1e3
    bytes_per_step = config.weight_bytes(2) + config.kv_bytes_per_token(2) * sum(kv_tokens) / len(
        kv_tokens
    )
    roofline_ms = bytes_per_step / (bandwidth_gbps * 1e9) * 1e3
    del engine
    torch.cuda.empty_cache()
    return {
        "model": name,
        "batch": batch,
        "context": context,
        "step_ms": step_ms,
        "graph_replay_ms": replay_ms,
        "roofline_ms": roofline_ms,
        "ratio": step_ms / roofline_ms,
        "bytes_per_step": bytes_per_step,
    }


def graph_replay_ms(engine: LLMEngine, batch: int) -> float:
    """GPU time of one decode forward alone (the captured graph), median of 20 replays."""
    graph = engine.runner.graphs[min(size for size in engine.runner.graphs if size >= batch)]
    times = []
    for _ in range(20):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return sorted(times)[10]


def run_bench(model: str, mode: str, out: Path, requests: int) -> dict | None:
    path = out / f"bench-{model}-{mode}.json"
    cmd = [
        sys.executable,
        "-m",
        "engine.bench",
        "--model",
        model,
        "--mode",
        mode,
        "--device",
        "cuda",
        "--workload",
        "offline-mixed",
        "--requests",
        str(requests),
        "--seed",
        "0",
        "--json",
        str(path),
    ]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    print(
        f"# {' '.join(cmd[1:])}  ({time.perf_counter() - start:.0f}s, rc={proc.returncode})",
        flush=True,
    )
    print(proc.stdout[-2000:], proc.stderr[-3000:] if proc.returncode else "", flush=True)
    return json.loads(path.read_text()) if proc.returncode == 0 else None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=os.environ.get("OUT", "var/gpu"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--requests", type=int, default=256)
    parser.add_argument(
        "--skip", default="", help="comma list of parts to skip: correct,kernels,roofline,bench"
    )
    parser.add_argument(
        "--models", default=",".join(SHAPES), help="comma list of shapes (a call per shape fits)"
    )
    args = parser.parse_args()
    shapes = {name: SHAPES[name] for name in args.models.split(",")}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    skip = set(args.skip.split(","))
    report: dict = {"hardware": detect_hardware().as_dict()}
    print("card:", detect_hardware().label, flush=True)
    report["copy_gbps"] = copy_bandwidth_gbps()
    print(f"copy bandwidth: {report['copy_gbps']:.0f} GB/s", flush=True)
    if "correct" not in skip:
        report["correctness"] = [check_correctness(name) for name in shapes]
        for c in report["correctness"]:
            print(
                "correctness",
                c["model"],
                "pass" if c["pass"] else "FAIL",
                [r["first_diff"] for r in c["prompts"]],
                flush=True,
            )
    if "kernels" not in skip:
        report["kernels"] = kernel_errors()
        print("kernels rel err", report["kernels"], flush=True)
    if "roofline" not in skip:
        report["roofline"] = [
            decode_roofline(name, batch, report["copy_gbps"]) for name, batch in shapes.items()
        ]
        for r in report["roofline"]:
            print(
                f"roofline {r['model']} batch {r['batch']}: step {r['step_ms']:.2f} ms (graph alone "
                f"{r['graph_replay_ms']:.2f} ms) vs roofline {r['roofline_ms']:.2f} ms ({r['ratio']:.2f}x)",
                flush=True,
            )
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    if "bench" not in skip:
        modes = ("continuous",) if args.quick else ("continuous", "static", "hf")
        report["bench"] = {
            f"{m}/{mode}": run_bench(m, mode, out, args.requests) for m in shapes for mode in modes
        }
        (out / "gpu_check.json").write_text(json.dumps(report, indent=2))
        print(
            f"\n{'model':<22}{'mode':<12}{'tok/s':>10}{'ttft p50':>10}{'ttft p99':>10}{'tpot p50':>10}{'tpot p99':>10}"
        )
        for key, r in report["bench"].items():
            if r:
                print(
                    f"{r['model']:<22}{r['mode']:<12}{r['output_tokens_per_s']:>10.0f}{r['ttft_ms']['p50']:>10.0f}{r['ttft_ms']['p99']:>10.0f}{r['tpot_ms']['p50']:>10.2f}{r['tpot_ms']['p99']:>10.2f}"
                )
            else:
                print(f"{key}: failed")
        for model in shapes:
            runs = {
                mode: report["bench"].get(f"{model}/{mode}")
                for mode in ("continuous", "static", "hf")
            }
            if runs["continuous"] and runs["hf"]:
                speedup = (
                    runs["continuous"]["output_tokens_per_s"] / runs["hf"]["output_tokens_per_s"]
                )
                print(f"{model}: continuous / hf = {speedup:.1f}x", end="")
            if runs["continuous"] and runs["static"]:
                speedup = (
                    runs["continuous"]["output_tokens_per_s"]
                    / runs["static"]["output_tokens_per_s"]
                )
                print(f", continuous / static = {speedup:.2f}x", end="")
            print()
    return 0


def kernel_errors() -> dict:
    """Relative error of the Triton kernels against the torch reference, bf16, ragged batch."""
    from engine.kernel_cases import random_case
    from engine.triton_attention import TritonAttention

    errors = {}
    for label, query_lens in (("prefill", [1, 37, 130, 64, 5]), ("decode", [1] * 7)):
        case = random_case(
            query_lens,
            [200, 40, 300, 64, 9, 17, 1][: len(query_lens)],
            block_size=16,
            dtype=torch.bfloat16,
            device="cuda",
        )
        ref = TorchAttention().forward(*case.args(), case.meta, case.scale).float()
        got = TritonAttention().forward(*case.args(), case.meta, case.scale).float()
        errors[label] = float((got - ref).norm() / ref.norm())
    return errors


if __name__ == "__main__":
    raise SystemExit(main())
