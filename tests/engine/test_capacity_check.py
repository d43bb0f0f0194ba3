"""The capacity model against the engine measured on an H100 (the fixture), checked on the CPU.

`capacity_h100.json` holds what `python -m engine.capacity_check` measured on the device
machine; refresh it by running that script there and copying its `capacity_check.json`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.capacity import (
    GPUS,
    MODELS,
    Efficiency,
    Measurement,
    compare,
    decode_step_time,
    fit_efficiency,
    prefill_time,
)
from engine.capacity_check import PREFILL_POINTS, SHAPES, cross_shape_fit

FIXTURE = Path(__file__).with_name("capacity_h100.json")
# The goal: with factors fitted on one shape, the other shape within ±30%.
CROSS_SHAPE_TOLERANCE = 0.30


def measurements() -> list[Measurement]:
    data = json.loads(FIXTURE.read_text())
    assert data["gpu"] == "h100-sxm" and "H100" in data["hardware"]
    return [Measurement(**m) for m in data["measurements"]]


def cross_shape_errors(kind: str) -> dict[tuple[str, int, int], float]:
    measured = measurements()
    errors = {}
    for fit_on, other in (SHAPES, SHAPES[::-1]):
        efficiency = cross_shape_fit(measured, fit_on)
        rows = compare([m for m in measured if m.model == other and m.kind == kind], efficiency)
        for row in rows:
            m = row.measurement
            errors[(m.model, m.batch, m.context_tokens)] = row.error
    return errors


def test_fixture_covers_both_shapes_batch_1_to_256():
    measured = measurements()
    for shape in SHAPES:
        for kind in ("prefill", "decode"):
            batches = {m.batch for m in measured if m.model == shape and m.kind == kind}
            assert min(batches) == 1 and max(batches) == 256


def test_decode_step_predicted_within_30_percent_across_shapes():
    errors = cross_shape_errors("decode")
    print({k: f"{v:+.0%}" for k, v in errors.items()})
    assert len(errors) == 18
    assert max(abs(e) for e in errors.values()) <= CROSS_SHAPE_TOLERANCE


def test_prefill_predicted_within_30_percent_across_shapes():
    errors = cross_shape_errors("prefill")
    print({k: f"{v:+.0%}" for k, v in errors.items()})
    assert len(errors) == 14
    assert max(abs(e) for e in errors.values()) <= CROSS_SHAPE_TOLERANCE


@pytest.mark.parametrize(
    ("fit_on", "host_us_per_token", "floor_ms_per_layer", "bandwidth"),
    [
        # SmolLM2's best fit wants activations above HBM peak: held at the bound.
        ("smollm2-135m-random", 0.377, 0.579, 1.0),
        ("llama-1b-random", 0.289, 0.528, 0.835),
    ],
    ids=["fit-on-smollm2", "fit-on-1b"],
)
def test_cross_shape_prefill_factors(fit_on, host_us_per_token, floor_ms_per_layer, bandwidth):
    fitted = cross_shape_fit(measurements(), fit_on)
    assert fitted.prefill_host_us_per_token == pytest.approx(host_us_per_token, abs=5e-4)
    assert fitted.prefill_overhead_ms_per_layer == pytest.approx(floor_ms_per_layer, abs=5e-4)
    assert fitted.prefill_bandwidth == pytest.approx(bandwidth, abs=5e-4)


def test_fit_split_kv_recovers_kv_bandwidth_and_overhead():
    truth = Efficiency(decode_kv_bandwidth=0.3, decode_overhead_ms_per_layer=0.12)
    model = MODELS["smollm2-135m-random"]
    points = [
        Measurement(
            "decode",
            model.name,
            "h100-sxm",
            b,
            512,
            decode_step_time(model, GPUS["h100-sxm"], b, 512, efficiency=truth).decode_step_ms,
        )  # fmt: skip
        for b in (1, 16, 64, 256)
    ]
    fitted = fit_efficiency(points, overhead="per_layer", split_kv=True)
    assert fitted.decode_kv_bandwidth == pytest.approx(0.3, rel=1e-6)
    assert fitted.decode_overhead_ms_per_layer == pytest.approx(0.12, rel=1e-6)
    assert fitted.decode_bandwidth == Efficiency().decode_bandwidth


@pytest.mark.parametrize(
    "host_us_per_token", [0.0, 0.3], ids=["no-host-per-token", "host-per-token"]
)
def test_fit_recovers_prefill_host_costs_and_activation_bandwidth(host_us_per_token):
    truth = Efficiency(
        prefill_bandwidth=0.45,
        prefill_overhead_ms_per_layer=0.55,
        prefill_host_us_per_token=host_us_per_token,
    )
    model = MODELS["smollm2-135m-random"]
    times = [
        prefill_time(model, GPUS["h100-sxm"], length, batch, efficiency=truth)
        for batch, length in PREFILL_POINTS
    ]
    assert {t.bound for t in times} == {"host", "gpu"}
    points = [
        Measurement("prefill", model.name, "h100-sxm", batch, length, t.prefill_ms)
        for (batch, length), t in zip(PREFILL_POINTS, times, strict=True)
    ]
    fitted = fit_efficiency(points, overhead="per_layer")
    assert fitted.prefill_host_us_per_token == pytest.approx(host_us_per_token, rel=1e-6)
    assert fitted.prefill_bandwidth == pytest.approx(0.45, rel=1e-6)
    assert fitted.prefill_overhead_ms_per_layer == pytest.approx(0.55, rel=1e-6)
    assert fitted.prefill_overhead_ms == 0
    assert fitted.prefill_compute == Efficiency().prefill_compute
