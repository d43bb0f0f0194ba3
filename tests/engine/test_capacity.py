"""The capacity model: exact arithmetic, monotonicity, the CLI, calibration."""

import json
import subprocess
import sys

import pytest

from engine.capacity import (
    GPUS,
    MODELS,
    PEAK,
    Efficiency,
    Measurement,
    activation_bytes_per_token,
    allreduce_time,
    compare,
    comparison_table,
    decode_step_time,
    estimate,
    fit_efficiency,
    gpu_spec,
    gpus_needed,
    kv_bytes_per_token,
    max_concurrent_sequences,
    model_spec,
    param_counts,
    pipeline_bubble,
    prefill_time,
    roofline_tokens_per_s,
    throughput,
    weight_bytes,
)

H100 = GPUS["h100-sxm"]
L8B = MODELS["llama-3-8b"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("llama-3-8b", 2 * 32 * 8 * 128 * 2),
        ("llama-3-70b", 2 * 80 * 8 * 128 * 2),
        ("mixtral-8x7b", 2 * 32 * 8 * 128 * 2),
        ("qwen2.5-7b", 2 * 28 * 4 * 128 * 2),
        ("smollm2-135m", 2 * 30 * 3 * 64 * 2),
        ("llama-1b-random", 2 * 16 * 8 * 64 * 2),
    ],
)
def test_kv_bytes_per_token_bf16(name, expected):
    assert kv_bytes_per_token(MODELS[name]).kv_bytes_per_token == expected


def test_kv_bytes_exact_published_figures():
    assert kv_bytes_per_token(L8B).kv_bytes_per_token == 131_072
    assert kv_bytes_per_token(MODELS["llama-3-70b"]).kv_bytes_per_token == 327_680
    assert kv_bytes_per_token(L8B, "fp8").kv_bytes_per_token == 65_536


def test_kv_bytes_split_by_tp_and_replicated_past_kv_heads():
    assert kv_bytes_per_token(L8B, tp=4).kv_bytes_per_token_per_gpu == 131_072 // 4
    eight = kv_bytes_per_token(L8B, tp=8).kv_bytes_per_token_per_gpu
    assert eight == 131_072 // 8
    qwen = MODELS["qwen2.5-7b"]
    assert kv_bytes_per_token(qwen, tp=7).kv_heads_per_gpu == 1


@pytest.mark.parametrize(
    ("name", "published_params"),
    [
        ("llama-3-8b", 8.03e9),
        ("llama-3-70b", 70.6e9),
        ("mixtral-8x7b", 46.7e9),
        ("qwen2.5-7b", 7.62e9),
        ("smollm2-135m", 134.5e6),
    ],
)
def test_param_counts_match_published(name, published_params):
    counts = param_counts(MODELS[name])
    assert counts.total_params == pytest.approx(published_params, rel=0.01)
    assert weight_bytes(MODELS[name], "bf16").weight_bytes == 2 * counts.total_params


def test_mixtral_active_params():
    counts = param_counts(MODELS["mixtral-8x7b"])
    assert counts.active_params == pytest.approx(12.9e9, rel=0.01)
    assert counts.total_params == pytest.approx(46.7e9, rel=0.01)
    assert any("MoE" in a for a in counts.assumptions)


def test_weight_bytes_by_dtype():
    bf16 = weight_bytes(L8B, "bf16").weight_bytes
    fp8 = weight_bytes(L8B, "fp8").weight_bytes
    int4 = weight_bytes(L8B, "int4")
    embeddings = 2 * 128256 * 4096
    unquantized = embeddings + 4096 * (2 * 32 + 1)
    quantized = 8_030_261_248 - unquantized
    assert fp8 == quantized + 2 * unquantized
    assert int4.bytes_per_quantized_param == 0.5 + 4 / 128
    assert int4.weight_bytes == int(quantized * (0.5 + 4 / 128) + 2 * unquantized)
    assert bf16 > fp8 > int4.weight_bytes
    assert weight_bytes(L8B, "int8").weight_bytes == fp8


def test_max_concurrent_sequences_arithmetic():
    plan = max_concurrent_sequences(L8B, H100, 4096)
    usable = int(80e9 * 0.9)
    budget = usable - 16_060_522_496 - 2 * 2**30
    assert plan.kv_budget_bytes_per_gpu == budget
    assert plan.max_concurrent_sequences == budget // (4096 * 131_072)
    assert plan.fits


def test_more_tp_less_memory_per_gpu_more_sequences():
    model = MODELS["llama-3-70b"]
    plans = [max_concurrent_sequences(model, H100, 8192, tp=tp) for tp in (1, 2, 4, 8)]
    weights = [p.weight_bytes_per_gpu for p in plans]
    assert weights == sorted(weights, reverse=True)
    assert not plans[0].fits
    sequences = [p.max_concurrent_sequences for p in plans]
    assert sequences == sorted(sequences) and sequences[-1] > sequences[2] > 0


def test_decode_step_is_weights_plus_kv_over_bandwidth():
    step = decode_step_time(L8B, H100, 1, 1024, efficiency=PEAK)
    expected_bytes = 16_060_522_496 - 2 * 128256 * 4096 + 1024 * 131_072
    assert step.memory_ms == pytest.approx(expected_bytes / 3.35e12 * 1e3)
    assert step.bound == "memory"
    assert step.decode_step_ms == pytest.approx(step.memory_ms)


def test_bigger_batch_more_throughput_until_compute_bound():
    rates = [throughput(L8B, H100, b, 512).output_tokens_per_s for b in (1, 8, 64, 256)]
    assert rates == sorted(rates)
    steps = [decode_step_time(L8B, H100, b, 128) for b in (2048, 4096)]
    assert [s.bound for s in steps] == ["compute", "compute"]
    per_token = [s.decode_step_ms / b for s, b in zip(steps, (2048, 4096), strict=True)]
    assert per_token[0] == pytest.approx(per_token[1], rel=0.05)


def test_throughput_capped_by_kv_capacity():
    rate = throughput(L8B, GPUS["l4"], 256, 8192)
    assert rate.effective_batch < 256
    assert any("capped" in a for a in rate.assumptions)


def test_activation_bytes_per_token_llama_3_8b():
    # 32 layers × (10 × 4096 hidden + 6 × 4096 q + 8 × 1024 kv + 2 × 4096 + 6 × 14336) × 2 B
    assert activation_bytes_per_token(L8B) == 10_747_904
    # TP=2 halves q, kv and the MLP's intermediate; the norms and hidden-sized ends stay whole:
    # 32 × (10 × 4096 + 6 × 2048 + 8 × 512 + 2 × 4096 + 6 × 7168) × 2 B
    assert activation_bytes_per_token(L8B, tp=2) == 6_946_816


def test_prefill_flops_and_time():
    t = prefill_time(L8B, H100, 1000, efficiency=PEAK)
    body = 8_030_261_248 - 2 * 128256 * 4096
    assert t.linear_flops == 2 * body * 1000 + 2 * 128256 * 4096
    assert t.attention_flops == 2 * 32 * 32 * 128 * 1000**2
    assert t.activation_bytes_per_gpu == 10_747_904 * 1000
    assert t.prefill_ms == pytest.approx(
        t.flops / 989.4e12 * 1e3 + t.activation_bytes_per_gpu / 3.35e12 * 1e3
    )
    assert t.bound == "gpu" and t.host_ms == 0 and t.host_serial_ms == 0
    slower = prefill_time(
        L8B, H100, 1000,
        efficiency=Efficiency(prefill_compute=0.5, prefill_attention=0.25, prefill_bandwidth=0.8),
    )  # fmt: skip
    assert slower.linear_ms == pytest.approx(2 * t.linear_ms)
    assert slower.attention_ms == pytest.approx(4 * t.attention_ms)
    assert slower.memory_ms == pytest.approx(t.memory_ms / 0.8)


def test_prefill_takes_the_larger_of_host_floor_and_gpu_time():
    floor = Efficiency(prefill_overhead_ms=1.0, prefill_overhead_ms_per_layer=0.5)
    short = prefill_time(L8B, H100, 16, efficiency=floor)
    assert short.bound == "host" and short.prefill_ms == 1.0 + 0.5 * 32
    long = prefill_time(L8B, H100, 8192, efficiency=floor)
    assert long.bound == "gpu" and long.prefill_ms == long.gpu_ms > long.host_ms


def test_prefill_adds_host_input_building_to_the_larger_of_floor_and_gpu_time():
    host = Efficiency(prefill_overhead_ms_per_layer=0.5, prefill_host_us_per_token=0.25)
    short = prefill_time(L8B, H100, 16, batch=4, efficiency=host)
    assert short.host_serial_ms == 0.25 * 64 / 1e3
    assert short.bound == "host" and short.prefill_ms == short.host_serial_ms + 0.5 * 32
    assert any("0.25 µs × 64 tokens (0.016 ms" in a for a in short.assumptions)
    long = prefill_time(L8B, H100, 8192, batch=4, efficiency=host)
    assert long.host_serial_ms == 0.25 * 32768 / 1e3
    assert long.bound == "gpu" and long.prefill_ms == long.host_serial_ms + long.gpu_ms


def test_default_prefill_of_an_8b_prompt_takes_tens_of_ms():
    assert 20 < prefill_time(L8B, H100, 2048).prefill_ms < 100


def test_fp8_on_a100_falls_back_to_bf16_rate():
    a100 = GPUS["a100-80gb"]
    t8 = prefill_time(L8B, a100, 512, dtype="fp8")
    t16 = prefill_time(L8B, a100, 512, dtype="bf16")
    assert t8.linear_ms == pytest.approx(t16.linear_ms)
    assert any("W8A16" in a for a in t8.assumptions)


def test_allreduce_and_tp_cost():
    one = allreduce_time(1_000_000, 1, H100)
    assert one.ms == 0
    ring = allreduce_time(1_000_000, 4, H100, Efficiency(interconnect=1.0, allreduce_latency_us=0))
    assert ring.ms == pytest.approx(2 * 3 / 4 * 1e6 / 450e9 * 1e3)
    step = decode_step_time(MODELS["llama-3-70b"], H100, 8, 2048, tp=4)
    assert step.allreduce_ms > 0


@pytest.mark.parametrize(
    ("stages", "microbatches", "fraction"), [(1, 8, 0.0), (4, 4, 3 / 7), (4, 16, 3 / 19)]
)
def test_pipeline_bubble(stages, microbatches, fraction):
    assert pipeline_bubble(stages, microbatches).bubble_fraction == pytest.approx(fraction)


def test_roofline_bound_8b_h100_batch1():
    bound = roofline_tokens_per_s(L8B, H100, batch=1)
    assert 200 < bound.output_tokens_per_s < 240


def test_gpus_needed_scales_with_rate():
    small = gpus_needed(L8B, H100, 10, 1000, 200, 500, 50)
    big = gpus_needed(L8B, H100, 100, 1000, 200, 500, 50)
    assert small.feasible and big.feasible
    assert big.gpus >= 9 * small.gpus or big.gpus > small.gpus
    assert big.decode_step_ms <= 50
    impossible = gpus_needed(MODELS["llama-3-70b"], GPUS["l4"], 1, 1000, 100, 1, 5, tp=8)
    assert not impossible.feasible and impossible.gpus == 0


def test_fit_efficiency_recovers_factors():
    truth = Efficiency(prefill_bandwidth=0.42, decode_bandwidth=0.63, decode_overhead_ms=1.5)
    model, gpu = MODELS["llama-1b-random"], H100
    points = []
    for batch in (1, 4, 16, 64):
        d = decode_step_time(model, gpu, batch, 512, efficiency=truth)
        points.append(Measurement("decode", model.name, gpu.name, batch, 512, d.decode_step_ms))
        p = prefill_time(model, gpu, 512, batch, efficiency=truth)
        points.append(Measurement("prefill", model.name, gpu.name, batch, 512, p.prefill_ms))
    fitted = fit_efficiency(points)
    assert fitted.prefill_bandwidth == pytest.approx(0.42, rel=1e-6)
    assert fitted.prefill_overhead_ms == 0
    # GPU-bound points alone cannot tell host time per token from activation traffic.
    assert fitted.prefill_host_us_per_token == 0
    assert fitted.decode_bandwidth == pytest.approx(0.63, rel=1e-6)
    assert fitted.decode_overhead_ms == pytest.approx(1.5, rel=1e-6)
    assert fitted.interconnect == Efficiency().interconnect


def test_fit_efficiency_per_layer_overhead_carries_to_another_shape():
    truth = Efficiency(decode_bandwidth=0.7, decode_overhead_ms_per_layer=0.2)
    small, big = MODELS["smollm2-135m-random"], MODELS["llama-1b-random"]

    def measure(model, batch):
        step = decode_step_time(model, H100, batch, 256, efficiency=truth).decode_step_ms
        return Measurement("decode", model.name, "h100-sxm", batch, 256, step)

    fitted = fit_efficiency([measure(big, b) for b in (1, 8, 32, 128)], overhead="per_layer")
    assert fitted.decode_overhead_ms_per_layer == pytest.approx(0.2, rel=1e-6)
    assert fitted.decode_overhead_ms == 0
    predicted = decode_step_time(small, H100, 16, 256, efficiency=fitted).decode_step_ms
    assert predicted == pytest.approx(measure(small, 16).measured_ms, rel=1e-6)


def test_compare_and_table():
    truth = Efficiency(decode_bandwidth=0.5)
    step = decode_step_time(L8B, H100, 4, 1024, efficiency=truth).decode_step_ms
    measured = [Measurement("decode", "llama-3-8b", "h100-sxm", 4, 1024, step)]
    rows = compare(measured, truth)
    assert rows[0].predicted_ms == pytest.approx(step) and rows[0].error == pytest.approx(0)
    optimistic = compare(measured, Efficiency(decode_bandwidth=1.0))[0]
    assert optimistic.error == pytest.approx(-0.5)
    table = comparison_table(rows)
    assert table.splitlines()[2].startswith("| decode | llama-3-8b | h100-sxm | 1 | 4 | 1024 |")


def test_fit_efficiency_rejects_nonsense():
    flat = [Measurement("decode", "llama-1b-random", "h100-sxm", b, 256, -1.0) for b in (1, 2)]
    with pytest.raises(ValueError, match="do not grow"):
        fit_efficiency(flat)


def test_estimate_has_assumptions_and_replicas():
    e = estimate(L8B, H100, gpus=4, tp=2, batch=32, context_tokens=2048)
    assert e.replicas == 2 and e.assumptions
    single = estimate(L8B, H100, gpus=2, tp=2, batch=32, context_tokens=2048)
    assert e.output_tokens_per_s == pytest.approx(2 * single.output_tokens_per_s)


def test_bad_names_and_values_raise_with_choices():
    with pytest.raises(ValueError, match="h100-sxm"):
        gpu_spec("h100")
    with pytest.raises(ValueError, match="llama-3-8b"):
        model_spec("llama3")
    with pytest.raises(ValueError, match="int4"):
        weight_bytes(L8B, "fp4")
    with pytest.raises(ValueError, match="heads"):
        kv_bytes_per_token(MODELS["smollm2-135m"], tp=2)


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "engine.capacity", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_json():
    run = _cli("--model", "llama-3-8b", "--gpu", "h100-sxm", "--batch", "8", "--json")
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    for key in (
        "weight_bytes",
        "kv_bytes_per_token",
        "max_concurrent_sequences",
        "prefill_ms",
        "decode_step_ms",
        "output_tokens_per_s",
        "assumptions",
    ):
        assert key in data
    assert data["kv_bytes_per_token"] == 131_072
    assert isinstance(data["assumptions"], list) and data["assumptions"]


def test_cli_text_and_errors():
    text = _cli("--model", "llama-3-70b", "--gpu", "a100-80gb", "--gpus", "4", "--tp", "4")
    assert text.returncode == 0 and "assumptions:" in text.stdout
    bad_gpu = _cli("--model", "llama-3-8b", "--gpu", "v100")
    assert bad_gpu.returncode == 2 and "h100-sxm" in bad_gpu.stderr
    bad_tp = _cli("--model", "llama-3-8b", "--gpu", "h100-sxm", "--gpus", "2", "--tp", "3")
    assert bad_tp.returncode == 2 and "tp=3" in bad_tp.stderr
    bad_batch = _cli("--model", "llama-3-8b", "--gpu", "h100-sxm", "--batch", "0")
    assert bad_batch.returncode == 2 and "at least 1" in bad_batch.stderr


def test_estimate_that_does_not_fit_is_still_valid_json():
    run = _cli("--model", "llama-3-70b", "--gpu", "h100-sxm", "--json")
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout, parse_constant=lambda name: pytest.fail(f"non-JSON {name}"))
    assert data["fits"] is False and data["max_concurrent_sequences"] == 0
    assert data["output_tokens_per_s"] == 0 and data["decode_step_ms"] > 0
