"""Calibration: fit the efficiency factors to what the engine measured, and compare."""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from engine.capacity.catalog import gpu_spec, model_spec
from engine.capacity.timing import PEAK, Efficiency, decode_step_time, prefill_time


@dataclass(frozen=True)
class Measurement:
    """One timing measured on the engine, to calibrate `Efficiency`."""

    kind: Literal["prefill", "decode"]
    model: str
    gpu: str
    batch: int
    context_tokens: int  # prefill: prompt length; decode: tokens attended per sequence
    measured_ms: float
    tp: int = 1
    dtype: str = "bf16"
    kv_dtype: str = "bf16"


def _fit_time(
    ideal_ms: list[float], overhead_units: list[float], measured_ms: list[float]
) -> tuple[float, float]:
    """Least squares for measured = ideal / efficiency + overhead × units: (efficiency, overhead).

    A negative overhead, or too few distinct points to separate the two, refits through zero.
    """
    x = np.column_stack([ideal_ms, overhead_units])
    y = np.asarray(measured_ms)
    if np.linalg.matrix_rank(x) == 2:
        (slope, overhead), *_ = np.linalg.lstsq(x, y, rcond=None)
        if overhead >= 0 and slope > 0:
            return 1 / float(slope), float(overhead)
    slope = float(x[:, 0] @ y / (x[:, 0] @ x[:, 0]))
    if slope <= 0:
        raise ValueError("measured times do not grow with the model's ideal times")
    return 1 / slope, 0.0


# Bounds on the prefill fit's (serial, floor, 1 / efficiency): no negative host cost, and no
# kernel above the datasheet's peak.
_PREFILL_FIT_LOWER = np.array([0.0, 0.0, 1.0])


def _fit_serial_and_floor_or_time(
    serial_units: list[float],
    floor_units: list[float],
    fixed_ms: list[float],
    ideal_ms: list[float],
    measured_ms: list[float],
    prior_efficiency: float,
) -> tuple[float, float, float]:
    """Least squares on relative error for measured = serial × serial units + max(floor × floor
    units, fixed + ideal / efficiency), with serial ≥ 0, floor ≥ 0 and efficiency ≤ 1:
    (serial, floor, efficiency).

    Points sorted by GPU time per floor unit at `prior_efficiency`; each split of that order
    into floor-bound points (the first k) and GPU-bound ones (the rest) is linear in (serial,
    floor, 1 / efficiency). Each split is solved with every combination of those held at
    their bounds (the bounded optimum is one of them), and the solution whose max() model fits
    all points best wins. No floor-bound points: floor and serial 0 (on GPU-bound points alone
    a serial term that grows like the ideal time cannot be told from the efficiency); no
    GPU-bound points: the prior efficiency.
    """
    serial_u, floor_u, fixed, ideal, measured = (
        np.asarray(v, dtype=float)
        for v in (serial_units, floor_units, fixed_ms, ideal_ms, measured_ms)
    )
    prior = np.array([0.0, 0.0, 1 / prior_efficiency])
    order = np.argsort((fixed + ideal * prior[2]) / floor_u, kind="stable")
    best = (math.inf, prior)
    for k in range(len(order) + 1):
        floor_bound = np.isin(np.arange(len(order)), order[:k])
        serial_column = serial_u if k else np.zeros_like(serial_u)
        columns = (
            serial_column,
            np.where(floor_bound, floor_u, 0.0),
            np.where(floor_bound, 0.0, ideal),
        )
        x = np.column_stack(columns) / measured[:, None]
        y = 1 - np.where(floor_bound, 0.0, fixed) / measured
        fitted = [j for j in range(3) if x[:, j].any()]
        for held in itertools.product((False, True), repeat=len(fitted)):
            at_bound = [j for j, h in zip(fitted, held, strict=True) if h]
            free = [j for j, h in zip(fitted, held, strict=True) if not h]
            params = prior.copy()
            params[at_bound] = _PREFILL_FIT_LOWER[at_bound]
            if free:
                if np.linalg.matrix_rank(x[:, free]) < len(free):
                    continue
                rest = [j for j in range(3) if j not in free]
                params[free], *_ = np.linalg.lstsq(
                    x[:, free], y - x[:, rest] @ params[rest], rcond=None
                )
            if (params < _PREFILL_FIT_LOWER).any():
                continue
            serial, floor, inverse = params
            predicted = serial * serial_u + np.maximum(floor * floor_u, fixed + ideal * inverse)
            relative = predicted / measured - 1
            loss = float(relative @ relative)
            if loss < best[0]:
                best = (loss, params)
    serial, floor, inverse = best[1]
    return float(serial), float(floor), float(1 / inverse)


def _fit_prefill(
    measured: list[Measurement], base: Efficiency, overhead: Literal["per_step", "per_layer"]
) -> tuple[float, float, float]:
    """(host µs per prompt token, host floor in ms per step or per layer, prefill_bandwidth)
    from prefill points."""
    kilotokens, units, fixed, ideal, times = [], [], [], [], []
    for m in measured:
        model, gpu = model_spec(m.model), gpu_spec(m.gpu)
        t = prefill_time(model, gpu, m.context_tokens, m.batch, m.tp, m.dtype, base)
        kilotokens.append(m.batch * m.context_tokens / 1e3)  # µs per token × 10³ tokens = ms
        units.append(float(model.num_layers) if overhead == "per_layer" else 1.0)
        fixed.append(t.linear_ms + t.attention_ms + t.allreduce_ms)
        ideal.append(t.memory_ms * base.prefill_bandwidth)
        times.append(m.measured_ms)
    return _fit_serial_and_floor_or_time(
        kilotokens, units, fixed, ideal, times, base.prefill_bandwidth
    )


def fit_efficiency(
    measured: list[Measurement],
    base: Efficiency = Efficiency(),
    overhead: Literal["per_step", "per_layer"] = "per_step",
    split_kv: bool = False,
) -> Efficiency:
    """Fit bandwidth factors, prefill's host costs and decode overheads to measured times.

    Prefill: measured = host µs per prompt token × tokens + max(host floor, matmul time at
    `base.prefill_compute` + attention time at `base.prefill_attention` + activation bytes /
    `prefill_bandwidth` + all-reduces), fitting `prefill_host_us_per_token`, the floor and
    `prefill_bandwidth` (at most 1) by least squares on relative error. Within one model
    shape, matmul FLOPs, attention FLOPs (at one prompt length) and activation bytes all grow
    with the token count, so its points fix only the GPU time's sum: the matmul and attention
    efficiencies stay priors (a big matmul's efficiency is measured directly; what small-row
    elementwise kernels and projection epilogues reach is not). The per-token host time grows
    with the tokens too; the host-bound points, where the floor does not, set it apart.

    Decode: measured = peak-bandwidth time / decode_bandwidth + overhead, using the points
    that are memory-bound at peak. The overhead (prefill's host floor, decode's added cost) is
    per step (`per_step`) or per layer (`per_layer`: eager kernel launches, the better guess
    when carrying factors fitted on one model shape to another). Kinds with no points keep
    `base`'s factors.

    `split_kv` fits the KV read's bandwidth (`decode_kv_bandwidth`) apart from the weights':
    measured - weight time at `base.decode_bandwidth` = peak KV time / decode_kv_bandwidth +
    overhead. Within one dense shape the weight time is the same at every batch, so it cannot
    be told from a fixed overhead; the weights keep `base`'s (prior) bandwidth.
    """
    fitted = asdict(base)
    suffix = "_per_layer" if overhead == "per_layer" else ""
    prefill = [m for m in measured if m.kind == "prefill"]
    if prefill:
        serial_us, floor_ms, bandwidth = _fit_prefill(prefill, base, overhead)
        fitted |= {
            "prefill_host_us_per_token": serial_us,
            "prefill_bandwidth": bandwidth,
            "prefill_overhead_ms": 0.0,
            "prefill_overhead_ms_per_layer": 0.0,
            f"prefill_overhead_ms{suffix}": floor_ms,
        }
    ideal, units, times = [], [], []
    for m in (m for m in measured if m.kind == "decode"):
        model, gpu = model_spec(m.model), gpu_spec(m.gpu)
        s = decode_step_time(model, gpu, m.batch, m.context_tokens, m.tp, m.dtype, m.kv_dtype, PEAK)
        if s.bound != "memory":
            continue
        ideal_ms, comm_ms = s.memory_ms, s.allreduce_ms
        if split_kv:
            weight_ms = s.weight_read_bytes_per_gpu / gpu.hbm_bytes_per_s * 1e3
            ideal_ms = s.kv_read_bytes_per_gpu / gpu.hbm_bytes_per_s * 1e3
            comm_ms += weight_ms / base.decode_bandwidth
        ideal.append(ideal_ms)
        units.append(float(model.num_layers) if overhead == "per_layer" else 1.0)
        times.append(m.measured_ms - comm_ms)
    if ideal:
        efficiency, overhead_ms = _fit_time(ideal, units, times)
        fitted |= {
            "decode_kv_bandwidth" if split_kv else "decode_bandwidth": efficiency,
            "decode_overhead_ms": 0.0,
            "decode_overhead_ms_per_layer": 0.0,
            f"decode_overhead_ms{suffix}": overhead_ms,
        }
    return Efficiency(**fitted)


@dataclass(frozen=True)
class Comparison:
    """One measured time beside the model's prediction for it."""

    measurement: Measurement
    predicted_ms: float
    error: float  # predicted / measured - 1


def predict_ms(m: Measurement, efficiency: Efficiency = Efficiency()) -> float:
    """The model's time for what `m` measured."""
    model, gpu = model_spec(m.model), gpu_spec(m.gpu)
    if m.kind == "prefill":
        return prefill_time(
            model, gpu, m.context_tokens, m.batch, m.tp, m.dtype, efficiency
        ).prefill_ms
    return decode_step_time(
        model, gpu, m.batch, m.context_tokens, m.tp, m.dtype, m.kv_dtype, efficiency
    ).decode_step_ms


def compare(measured: list[Measurement], efficiency: Efficiency = Efficiency()) -> list[Comparison]:
    """Predicted against measured, in the order given."""
    rows = []
    for m in measured:
        predicted = predict_ms(m, efficiency)
        rows.append(Comparison(m, predicted, predicted / m.measured_ms - 1))
    return rows


def comparison_table(rows: list[Comparison]) -> str:
    """A Markdown table of predicted vs measured times, for READMEs and closing notes."""
    lines = [
        "| kind | model | gpu | TP | batch | context | measured ms | predicted ms | error |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        m = row.measurement
        lines.append(
            f"| {m.kind} | {m.model} | {m.gpu} | {m.tp} | {m.batch} | {m.context_tokens} | "
            f"{m.measured_ms:.3f} | {row.predicted_ms:.3f} | {row.error:+.0%} |"
        )
    return "\n".join(lines)
