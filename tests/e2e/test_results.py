"""Results pages for the harnesses that are not a plain function: an engine-plugged scheduler
(its per-test measures and its figures against the reference) and a GPU kernel (roofline)."""

from __future__ import annotations

import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.utils import timezone

from grader import models as grader_models
from grader.bank import problems_load
from grader.models import Problem, Submission
from tests.e2e.conftest import screenshot_path
from tests.e2e.test_coding import log_in

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
    assert page.locator("#speed-chart").is_visible()
    page.screenshot(path=str(screenshot_path("16-results-scheduler")), full_page=True)
    assert errors == []  # no script failed on any page


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
    assert page.locator("#roofline-chart").is_visible()
    datasets = page.evaluate("Chart.getChart('roofline-chart').data.datasets.map(d => d.label)")
    assert datasets == ["NVIDIA H100 SXM 80GB ceiling", "Yours", "Reference"]
    assert "FLOP/byte" in page.inner_text(".results")
    # 1.07 GB in 0.45 ms is 2,389 GB/s: 71% of the H100 SXM's 3,350 GB/s.
    assert "Yours: 2389 GB/s, 71% of the card's bandwidth" in page.inner_text(".results")
    page.screenshot(path=str(screenshot_path("17-results-kernel-roofline")), full_page=True)
