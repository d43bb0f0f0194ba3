"""grader.gpu_check without a GPU: its statistics, its table of GPU-shaped results, its deadline,
and one part run for real on the CPU (Triton's interpreter, one test per problem).
"""

from __future__ import annotations

import json
import statistics

import pytest

from grader.gpu_check import (
    DRY_SWEEP,
    PARTS,
    PROBLEMS,
    Item,
    _bubblewrap,
    grade_row,
    int8_sweep,
    main,
    merge,
    run_part,
    stability_stats,
    table,
)
from grader.harnesses.contract import (
    CallTiming,
    GradeReport,
    SandboxKind,
    SpeedOfLight,
    Verdict,
)
from grader.harnesses.timing import summarize
from grader.sandbox import sandbox_kind

# What a card measured and one int8 benchmark call's floor on it (58.8 MB at 3 TB/s).
PEAKS = {"card": "NVIDIA H100 80GB HBM3", "matmul_flops_per_s": 8e14, "copy_bytes_per_s": 3e12}
INT8_BOUND = {
    "bytes": 58_785_792,
    "flops": 1_879_048_192,
    "bytes_per_s": 3e12,
    "flops_per_s": 8e14,
    "basis": "measured on NVIDIA H100 80GB HBM3",
    "time_ns": 19_595.264,
    "bound": "memory",
}
MEDIANS_NS = [30_000, 30_300, 29_700, 30_150, 29_850, 30_000, 30_060, 29_940, 30_000, 30_000]
SCORES = [1.0, 1.01, 0.99, 1.005, 0.995, 1.0, 1.002, 0.998, 1.0, 1.0]


def _part(name: str, card: str = PEAKS["card"], skipped: tuple[str, ...] = ()) -> dict:
    hardware = {"card": card, "driver": "580.159.04", "torch": "2.11.0+cu130", "triton": "3.6.0"}
    return {
        "part": name,
        "hardware": hardware | {"cuda": "13.0", "host": "gpu-1"},
        "peaks": PEAKS,
        "sandbox_check": {"ok": True, "sandbox": "bubblewrap"},
        "skipped": list(skipped),
        "wall_s": 300.0,
    }


def _row(solution: str, role: str, verdict: str, expected: str = "accepted", **fields) -> dict:
    return {
        "part": "1",
        "problem": "int8-matmul",
        "solution": solution,
        "role": role,
        "expected": expected,
        "verdict": verdict,
        "message": fields.pop("message", ""),
        "score": fields.pop("score", 0.0),
        "candidate_median_ns": fields.pop("median_ns", None),
        "reference_median_ns": None,
        "samples": 100,
        "sandboxed": True,
        "wall_s": 16.0,
        "speed_of_light": INT8_BOUND,
    } | fields


def _gpu_results() -> dict:
    stability = [
        _row("reference.py", f"stability {i + 1}/10", "accepted", score=s, median_ns=m)
        for i, (s, m) in enumerate(zip(SCORES, MEDIANS_NS, strict=True))
    ]
    failing = [
        _row("wrong/per_tensor_scale.py", "must fail", "wrong_answer", "wrong_answer"),
        _row("cheats/patched_timer.py", "must fail", "accepted", "policy", message="oops"),
    ]
    sweep = {
        "m": 16,
        "k": 4096,
        "n": 14336,
        "dtype": "bfloat16",
        "bf16_us": 37.2,
        "int8_us": 30.0,
        "speedup": 1.24,
        "int8_gb_s": 1960.0,
        "int8_copy_pct": 65.3,
    }
    part_1 = {"parts": [_part("1")], "rows": stability, "sweeps": []}
    part_2 = {"parts": [_part("2", skipped=("x",))], "rows": failing, "sweeps": [sweep]}
    return merge([part_1, part_2])


def test_stability_is_the_cv_of_ten_grades_scores_and_medians():
    stats = stability_stats(_gpu_results()["rows"], "int8-matmul")
    assert stats["grades"] == stats["timed"] == 10
    assert stats["cv_score_pct"] == pytest.approx(
        100 * statistics.stdev(SCORES) / statistics.fmean(SCORES)
    )
    assert stats["cv_median_pct"] == pytest.approx(
        100 * statistics.stdev(MEDIANS_NS) / statistics.fmean(MEDIANS_NS)
    )
    assert stats["median_ns"] == 30_000
    assert stats["goal_met"] is True


def test_fewer_than_ten_grades_do_not_meet_the_goal():
    rows = _gpu_results()["rows"][:9]
    assert stability_stats(rows, "int8-matmul")["goal_met"] is False


def test_the_table_shows_speed_peak_ratio_cv_speed_of_light_and_the_card():
    text = table(_gpu_results())
    lines = text.splitlines()
    assert "NVIDIA H100 80GB HBM3, driver 580.159.04, torch 2.11.0+cu130, triton 3.6.0" in text
    assert "bf16 matmul 800 TFLOP/s, copy 3000 GB/s" in text
    assert "skipped at the deadline: x" in text
    reference = next(line for line in lines if "accepted x10" in line)
    # 58.8 MB in 30 us: 1959.5 GB/s, 65.3% of the copy bandwidth, the floor 19.6 us is 65.3%.
    assert "1959.5 GB/s" in reference and "65.3" in reference
    assert "1.240" in reference and "ratio vs bf16 torch.matmul, m=16" in reference
    assert "19.6" in reference and " ok " in reference
    assert "yes" in reference
    cheat = next(line for line in lines if "patched_timer" in line)
    assert "accepted UNEXPECTED" in cheat
    assert "m=16" in text and "1.24x" in text


def test_the_read_bandwidth_is_in_the_header_when_the_part_measured_it():
    data = _gpu_results()
    data["parts"][1]["peaks"] = PEAKS | {"read_bytes_per_s": 3.2e12}
    peak_lines = [line for line in table(data).splitlines() if "measured peaks" in line]
    assert peak_lines[0].endswith("copy 3000 GB/s (read + write)")
    assert peak_lines[1].endswith("copy 3000 GB/s (read + write), read 3200 GB/s")


def _measurement(median_ns: int):
    return summarize([CallTiming(median_ns, median_ns)] * 20, warmup=3)


def test_a_baselines_line_is_judged_by_its_own_timings_not_its_grades():
    """H200, 2026-12-02: the paged-decode reference (251 us) beat the speed of light taken at the
    copy bandwidth (257.5 us), so its grade was suspect; the engine kernel, the reference side of
    that grade at 276 us, is not."""
    bound = SpeedOfLight(
        bytes=1_074_856_192, flops=0, bytes_per_s=4.175e12, basis="measured on NVIDIA H200"
    )
    report = GradeReport(
        verdict=Verdict.SUSPECT,
        score=1.099,
        message="0.2511 ms is faster than the speed-of-light bound",
        tests=[],
        hardware={},
        sandbox=SandboxKind.BUBBLEWRAP,
        harness_version="kernel/1",
        candidate=_measurement(251_103),
        reference=_measurement(276_015),
        speed_of_light=bound,
    )
    peaks = PEAKS | {"copy_bytes_per_s": 4.175e12}
    ours = grade_row("2", peaks, "paged-decode-attention", "reference.py", "vs x", report, 25.9)
    theirs = grade_row(
        "2", peaks, "paged-decode-attention", "x.py", "baseline", report, 25.9, "reference"
    )
    assert (ours["verdict"], ours["score"]) == ("suspect", 1.099)
    assert (theirs["verdict"], theirs["score"]) == ("accepted", 0.91)
    assert theirs["message"] == "0.910x the reference's speed"
    assert theirs["candidate_median_ns"] == 276_015
    assert theirs["peak_pct"] == pytest.approx(93.27, abs=0.01)


def test_parts_on_different_cards_say_so():
    data = _gpu_results()
    data["parts"][1] = _part("2", card="NVIDIA H200")
    assert "the parts ran on different cards" in table(data)


def test_stability_grades_of_two_parts_pool_into_one_cv():
    rows = _gpu_results()["rows"]
    for row in rows[6:10]:
        row["part"] = "3"
    stats = stability_stats(rows, "int8-matmul")
    assert (stats["grades"], stats["parts"], stats["goal_met"]) == (10, ["1", "3"], True)
    assert stats["cv_median_pct"] == pytest.approx(
        100 * statistics.stdev(MEDIANS_NS) / statistics.fmean(MEDIANS_NS)
    )
    data = {"parts": [_part("1"), _part("3")], "rows": rows, "sweeps": []}
    reference = next(line for line in table(data).splitlines() if "accepted x10" in line)
    assert "median of medians (parts 1 + 3)" in reference


@pytest.mark.parametrize("slug", PROBLEMS)
def test_the_parts_run_each_problems_ten_stability_grades_once(slug):
    numbers = [
        index
        for items in PARTS.values()
        for stage, problem, first, last in items
        if (stage, problem) == ("stability", slug)
        for index in range(first, (last or 10) + 1)
    ]
    assert sorted(numbers) == list(range(1, 11))


def test_a_part_runs_only_its_share_of_the_stability_grades(tmp_path):
    path = tmp_path / "part.json"
    data = run_part((Item("stability", "int8-matmul", 2),), "3", path, 3, True, deadline_s=0.0)
    assert data["parts"][0]["skipped"] == [
        "int8-matmul reference.py (stability 2/3)",
        "int8-matmul reference.py (stability 3/3)",
    ]


def test_nothing_starts_past_the_deadline(tmp_path):
    path = tmp_path / "part.json"
    data = run_part((("stability", "int8-matmul"),), "t", path, 3, True, deadline_s=0.0)
    assert data == json.loads(path.read_text())
    assert data["rows"] == []
    assert len(data["parts"][0]["skipped"]) == 3


def test_the_sandbox_can_be_turned_off_for_the_rest_of_a_part_and_back():
    before = sandbox_kind()
    _bubblewrap(enabled=False)
    try:
        assert sandbox_kind() is SandboxKind.UNSANDBOXED
    finally:
        _bubblewrap(enabled=True)
    assert sandbox_kind() is before


def test_unknown_stages_are_refused():
    with pytest.raises(SystemExit):
        main(["--stages", "stabilty"])


@pytest.mark.slow
def test_a_dry_part_grades_through_the_grader_and_tabulates(tmp_path, capsys):
    items = (("stability", "int8-matmul"), ("sweep", "int8-matmul"), ("failing", "int8-matmul"))
    path = tmp_path / "part.json"
    data = run_part(items, "1", path, 2, dry_run=True)
    roles = [(row["solution"], row["verdict"]) for row in data["rows"]]
    assert roles == [
        ("reference.py", "accepted"),
        ("reference.py", "accepted"),
        ("cheats/patched_timer.py", "policy"),
        ("wrong/per_tensor_scale.py", "wrong_answer"),
        ("wrong/truncating_round.py", "wrong_answer"),
    ]
    assert [row["m"] for row in data["sweeps"]] == [1, 3]
    assert all(row["wrong_values"] == 0 for row in data["sweeps"])
    assert main(["--merge", str(path), "--json", str(tmp_path / "merged.json")]) == 0
    out = capsys.readouterr().out
    assert "accepted x2" in out and "NOT MET" in out
    assert json.loads((tmp_path / "merged.json").read_text())["rows"] == data["rows"]


@pytest.mark.slow
def test_the_sweep_checks_what_it_times():
    """A wrong W8A16 layer is timed like any other; the sweep's check says it is wrong."""
    rows = int8_sweep(DRY_SWEEP, None, solution="wrong/per_tensor_scale.py")
    assert rows and all(row["wrong_values"] > 0 for row in rows)
    out = table({"parts": [], "rows": [], "sweeps": rows})
    assert "WRONG" in out
