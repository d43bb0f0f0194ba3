"""Results pages for the harnesses that are not a plain function: an engine-plugged scheduler
(its per-test measures and its figures against the reference) and a GPU kernel (roofline)."""

from __future__ import annotations

import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import expect

from grader import models as grader_models
from grader.bank import problems_load
from grader.models import Problem, Submission
from tests.e2e.conftest import screenshot_path
from tests.e2e.test_coding import editor_replace, log_in

FIXTURES = Path(__file__).parent / "fixtures"
H100 = {"label": "NVIDIA H100 80GB HBM3", "gpus": [{"name": "NVIDIA H100 80GB HBM3"}]}


def stored(username: str, slug: str, report: dict, hardware: dict) -> Submission:
    """A submission as the worker stores a `manage.py grade --json` report of it."""
    submission = Submission.objects.create(
        user=get_user_model().objects.get(username=username),
        problem=Problem.objects.get(slug=slug),
        code="# solution\n",
        seed=1,
        state=Submission.State.GRADED,
        verdict=report["verdict"],
        score=report["score"],
        message=report["message"],
        graded_at=timezone.now(),
        hardware=hardware,
        harness_version=report.get("harness_version", ""),
        timing={"candidate": report["candidate"], "reference": report["reference"]},
    )
    grader_models.TestResult.objects.bulk_create(
        grader_models.TestResult(
            submission=submission,
            index=index,
            name=test["name"],
            verdict=test["verdict"],
            time_ms=test["time_ms"],
            message=test["message"],
            details=test["details"],
        )
        for index, test in enumerate(report["tests"])
    )
    return submission


def test_scheduler_results_show_measures_and_the_reference(live_stack, page):
    problems_load()
    log_in(live_stack, page, "kelly", "pw-kelly-results-1")
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    report = json.loads((FIXTURES / "priority-scheduler-report.json").read_text())
    submission = stored("kelly", "priority-scheduler", report, {"label": "AMD EPYC 7B13"})

    page.goto(f"{live_stack.base_url}/submissions/{submission.pk}/")
    assert page.locator("#verdict-heading").inner_text() == "Accepted"
    assert page.locator("#test-results tbody tr").count() == len(report["tests"])
    labels = page.evaluate("Chart.getChart(document.querySelector('.measure-chart')).data.labels")
    assert labels == [test["name"] for test in report["tests"]]
    assert page.locator(".measure-chart").count() == 4  # steps, tokens/step, p99 TTFT, preemptions
    ratios = page.evaluate(
        "Chart.getChart(document.querySelector('.figure-chart')).data.datasets[0].data"
    )
    assert ratios == [1.0, 1.0, 1.0, 1.0]  # the reference scored against itself
    expect(page.locator("#speed-chart")).to_be_visible()
    page.screenshot(path=str(screenshot_path("16-results-scheduler")), full_page=True)
    assert errors == []  # no script failed on any page


# Grading the scheduler runs its eight workloads in the engine, then times it.
SCHEDULER_GRADING_TIMEOUT_MS = 240_000
# The same checks as the shipped benchmark with fewer timed calls: less CPU in CI.
FAST_BENCHMARK = {"warmup": 1, "min_repetitions": 2, "max_repetitions": 3, "budget_s": 0.5}
PREEMPTED_RGB = (207, 34, 46)  # charts.js's mark for a preemption
COUNT_PIXELS = """(canvas, [r, g, b]) => {
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let count = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i] === r && data[i + 1] === g && data[i + 2] === b) count += 1;
  }
  return count;
}"""


def cdf_points(page, canvas_id: str) -> list[tuple[str, list[float]]]:
    return [
        (label, xs)
        for label, xs in page.evaluate(
            f"Chart.getChart('{canvas_id}').data.datasets.map(d => [d.label, d.data.map(p => p.x)])"
        )
    ]


def expected_cdf(trace: dict, key: str) -> list[tuple[str, list[float]]]:
    classes = sorted({r["priority"] for r in trace["requests"]})
    return [
        (
            f"priority {p}" + (" (most urgent)" if p == 0 else ""),
            sorted(r[key] for r in trace["requests"] if r["priority"] == p),
        )
        for p in classes
    ]


def assert_timeline_drawn_from(page, trace: dict) -> None:
    timeline = page.locator("#run-timeline")
    cells = sum(len(c.get("p", [])) + len(c.get("d", [])) for c in trace["columns"])
    preempted = sum(len(c.get("x", [])) for c in trace["columns"])
    assert int(timeline.get_attribute("data-cells")) == cells > 0
    assert int(timeline.get_attribute("data-preempted")) == preempted
    red = timeline.evaluate(COUNT_PIXELS, list(PREEMPTED_RGB))
    assert (red > 0) == (preempted > 0)  # a preemption shows as a red mark, and only then
    assert f"over {trace['steps']} engine steps" in timeline.get_attribute("aria-label")


def test_a_scheduler_submission_shows_its_own_run(live_stack, page):
    problems_load()
    problem = Problem.objects.get(slug="priority-scheduler")
    problem.spec = problem.spec | {"benchmark": problem.spec["benchmark"] | FAST_BENCHMARK}
    problem.save()
    log_in(live_stack, page, "barbara", "pw-barbara-results-1")
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(f"{live_stack.base_url}/problems/priority-scheduler/")
    editor_replace(page, problem.reference_code)
    page.keyboard.press("Control+Enter")
    page.locator("#verdict-heading").wait_for(timeout=SCHEDULER_GRADING_TIMEOUT_MS)
    tests = {t.name: t for t in Submission.objects.get(user__username="barbara").tests.all()}
    # Every test passed. (The verdict also weighs the timed calls, which two loaded cores can
    # make noisy enough to call even the reference's timings into question; the pictures come
    # from the tests.)
    verdicts = page.locator("#test-results .verdict").all_inner_texts()
    assert verdicts == ["Accepted"] * len(tests) and len(tests) == len(problem.spec["tests"])

    # The richest run (the scored workload) opens first; every test with a picture can be
    # chosen (the GPU tier's throughput test has figures in seconds, no picture).
    pictured = [name for name, test in tests.items() if "trace" in test.details]
    assert set(tests) - set(pictured) == {"throughput"}
    runs = page.locator("#runs")
    runs.scroll_into_view_if_needed()
    choice = page.get_by_label("Test", exact=True)
    assert choice.locator("option").all_inner_texts() == pictured
    assert choice.input_value() == str(pictured.index("score-vs-reference"))
    trace = tests["score-vs-reference"].details["trace"]
    assert cdf_points(page, "run-ttft-cdf") == expected_cdf(trace, "ttft")
    assert cdf_points(page, "run-e2e-cdf") == expected_cdf(trace, "e2e")
    kv = page.evaluate("Chart.getChart('run-kv-chart').data.datasets[0].data")
    assert kv == [column["kv"] for column in trace["columns"]]
    assert_timeline_drawn_from(page, trace)
    page.screenshot(path=str(screenshot_path("18-results-scheduler-run")), full_page=True)

    # The burst of urgent requests into a full pool: preemptions, marked on the timeline.
    choice.select_option(label="high-priority-burst-into-full-pool")
    burst = tests["high-priority-burst-into-full-pool"].details["trace"]
    assert sum(r["preemptions"] for r in burst["requests"]) > 0
    assert_timeline_drawn_from(page, burst)
    assert cdf_points(page, "run-ttft-cdf") == expected_cdf(burst, "ttft")
    summary = page.locator(".run-summary:visible")
    assert summary.count() == 1
    assert summary.locator("caption").inner_text().startswith("high-priority-burst-into-full-pool")
    rows = [
        (row.locator("th").inner_text(), row.locator("td").last.inner_text())
        for row in summary.locator("tbody tr").all()
    ]
    assert rows == [
        (
            f"{p}" + (" (most urgent)" if p == 0 else ""),
            str(sum(r["preemptions"] for r in burst["requests"] if r["priority"] == p)),
        )
        for p in sorted({r["priority"] for r in burst["requests"]})
    ]
    runs.screenshot(path=str(screenshot_path("19-results-scheduler-preemptions")))

    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_role("link", name="Permalink").click()
    page.locator("#run-timeline").scroll_into_view_if_needed()
    assert int(page.get_attribute("#run-timeline", "data-cells")) > 0
    assert page.locator(".run-summary:visible").count() == 1  # only the chosen test's table
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(screenshot_path("18b-results-scheduler-run-phone")), full_page=True)
    assert errors == []  # no script failed on any page


def test_an_allocator_submission_shows_kv_blocks_over_time(live_stack, page):
    problems_load()
    log_in(live_stack, page, "fernando", "pw-fernando-results-1")
    used = [0, 3, 7, 12, 12, 9, 16, 4, 0]
    shared = [0, 0, 2, 5, 5, 3, 6, 1, 0]
    trace = {"kind": "kv_blocks", "ops": 9, "stride": 1, "num_blocks": 16}
    report = {
        "verdict": "accepted",
        "score": 1.0,
        "message": "1.000x the reference's speed",
        "tests": [
            {
                "name": "shared-prefixes",
                "verdict": "accepted",
                "time_ms": 3.0,
                "message": "",
                "details": {"ops": 9, "trace": trace | {"used": used, "shared": shared}},
            }
        ],
        "candidate": None,
        "reference": None,
    }
    submission = stored("fernando", "kv-allocator", report, {"label": "AMD EPYC 7B13"})
    page.goto(f"{live_stack.base_url}/submissions/{submission.pk}/")
    series = page.evaluate(
        "Chart.getChart('run-kv-chart').data.datasets.map(d => [d.label, d.data])"
    )
    assert series == [
        ["blocks in use", used],
        ["blocks shared by several sequences", shared],
    ]
    assert page.evaluate("Chart.getChart('run-kv-chart').options.scales.y.max") == 16
    assert "9 operations; at most 16 of 16 blocks in use, at most 6 shared" in page.inner_text(
        "#runs"
    )
    page.locator("#runs").screenshot(path=str(screenshot_path("19b-results-allocator-run")))


def test_kernel_results_place_the_kernel_on_the_roofline(live_stack, page):
    problems_load()
    log_in(live_stack, page, "tri", "pw-tri-results-1")
    median_ns = 450_000.0
    timing = {
        "median_ns": median_ns,
        "p10_ns": median_ns * 0.98,
        "p90_ns": median_ns * 1.03,
        "samples_ns": [median_ns] * 20,
        "bytes_moved": 1_074_856_192,
    }
    report = {
        "verdict": "accepted",
        "score": 1.4,
        "message": "1.400x the reference's speed",
        "tests": [],
        "candidate": timing,
        "reference": timing
        | {
            "median_ns": median_ns * 1.4,
            "p10_ns": median_ns * 1.35,
            "p90_ns": median_ns * 1.5,
            "samples_ns": [median_ns * 1.4] * 20,
        },
    }
    submission = stored("tri", "paged-decode-attention", report, H100)

    page.goto(f"{live_stack.base_url}/submissions/{submission.pk}/")
    expect(page.locator("#roofline-chart")).to_be_visible()
    datasets = page.evaluate("Chart.getChart('roofline-chart').data.datasets.map(d => d.label)")
    assert datasets == ["NVIDIA H100 SXM 80GB ceiling", "Yours", "Reference"]
    assert "FLOP/byte" in page.inner_text(".results")
    # 1.07 GB in 0.45 ms is 2,389 GB/s: 71% of the H100 SXM's 3,350 GB/s.
    assert "Yours: 2389 GB/s, 71% of the card's bandwidth" in page.inner_text(".results")
    page.screenshot(path=str(screenshot_path("17-results-kernel-roofline")), full_page=True)
