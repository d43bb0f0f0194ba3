"""Seeded workloads, metrics, and the bench and generate command lines."""

from __future__ import annotations

import json
import random

import pytest

from engine import bench, generate
from engine.metrics import compute_metrics, percentiles
from engine.workloads import make_workload

BENCH_KEYS = {
    "mode", "model", "device", "hardware", "requests", "output_tokens", "wall_s", "output_tokens_per_s",
    "requests_per_s", "ttft_ms", "tpot_ms", "itl_ms", "kv_utilization", "preemptions",
}  # fmt: skip


def test_offline_mixed_is_nano_vllm_bench_exactly():
    random.seed(0)
    prompts = [
        [random.randint(0, 10000) for _ in range(random.randint(100, 1024))] for _ in range(256)
    ]
    outputs = [random.randint(100, 1024) for _ in range(256)]
    requests = make_workload("offline-mixed", 256, seed=0)
    assert [r.prompt_token_ids for r in requests] == prompts
    assert [r.params.max_tokens for r in requests] == outputs
    assert sum(map(len, prompts)) == 142_827 and sum(outputs) == 133_966
    assert all(r.params.ignore_eos and r.params.temperature == 0.6 for r in requests)
    assert make_workload("offline-mixed", 8, seed=0)[3] == requests[3]


@pytest.mark.parametrize("name", ["online-poisson", "shared-prefix", "priority-mix"])
def test_workloads_are_seeded(name):
    first, again = (
        make_workload(name, 16, seed=3, scale=0.1),
        make_workload(name, 16, seed=3, scale=0.1),
    )
    assert first == again and first != make_workload(name, 16, seed=4, scale=0.1)


def test_workload_shapes():
    poisson = make_workload("online-poisson", 32, seed=0)
    assert all(a.arrival_s < b.arrival_s for a, b in zip(poisson, poisson[1:], strict=False))
    shared = make_workload("shared-prefix", 4, seed=0)
    assert len({tuple(r.prompt_token_ids[:512]) for r in shared}) == 1
    mix = make_workload("priority-mix", 8, seed=0)
    assert [r.priority for r in mix] == [1] * 6 + [0] * 2 and mix[-1].arrival_s > 0


def test_percentiles_and_metrics():
    assert percentiles([1.0, 2.0, 3.0, 4.0, 5.0]) == {"p50": 3.0, "p90": 4.6, "p99": 4.96}

    class Out:
        def __init__(self, times):
            self.token_times, self.arrival_time, self.output_token_ids = (
                times,
                0.0,
                [0] * len(times),
            )

    m = compute_metrics(
        [Out([0.1, 0.2, 0.4]), Out([0.5, 0.6])],
        wall_s=1.0,
        kv_used_per_step=[2, 4],
        num_blocks=8,
        preemptions=1,
    )
    assert m.output_tokens == 5 and m.output_tokens_per_s == 5.0 and m.requests_per_s == 2.0
    assert m.ttft_ms["p50"] == pytest.approx(300.0)
    assert sorted(m.itl_ms.values())[0] == pytest.approx(100.0)
    assert m.kv_utilization == {"mean": 0.375, "peak": 0.5}


@pytest.mark.parametrize("mode", ["continuous", "static"])
def test_bench_cli_writes_the_named_json(tmp_path, capsys, mode):
    path, trace = tmp_path / "b.json", tmp_path / "t.json"
    argv = ["--model", "tiny", "--mode", mode, "--device", "cpu", "--workload", "offline-mixed",
            "--requests", "6", "--scale", "0.03", "--seed", "0", "--json", str(path), "--trace", str(trace)]  # fmt: skip
    assert bench.main(argv) == 0
    result = json.loads(path.read_text())
    assert BENCH_KEYS <= set(result)
    assert result["mode"] == mode and result["requests"] == 6
    assert result["output_tokens"] == sum(
        r.params.max_tokens for r in make_workload("offline-mixed", 6, 0, 0.03)
    )
    assert set(result["ttft_ms"]) == {"p50", "p90", "p99"}
    steps = json.loads(trace.read_text())
    assert steps and {"step", "scheduled", "preempted", "kv_blocks_used"} <= set(steps[0])
    assert "output tok/s" in capsys.readouterr().out


def test_bench_hf_mode_runs_transformers(tmp_path):
    path = tmp_path / "hf.json"
    argv = [
        "--model",
        "tiny",
        "--mode",
        "hf",
        "--workload",
        "offline-mixed",
        "--requests",
        "3",
        "--scale",
        "0.02",
        "--json",
        str(path),
    ]
    assert bench.main(argv) == 0
    assert json.loads(path.read_text())["output_tokens"] == sum(
        r.params.max_tokens for r in make_workload("offline-mixed", 3, 0, 0.02)
    )


def test_generate_cli_compares_with_transformers(capsys):
    assert (
        generate.main(
            ["--model", "tiny", "--prompt", "hello there", "--max-tokens", "5", "--compare-hf"]
        )
        == 0
    )
    assert capsys.readouterr().out.strip().endswith("identical: true")


@pytest.mark.slow
def test_generate_cli_on_smollm2(capsys):
    argv = [
        "--model",
        "smollm2-135m",
        "--prompt",
        "The capital of France is",
        "--max-tokens",
        "6",
        "--compare-hf",
    ]
    assert generate.main(argv) == 0
    out = capsys.readouterr().out
    assert "Paris" in out and out.strip().endswith("identical: true")
