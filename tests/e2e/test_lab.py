"""A person runs the engine lab once: both batching modes on a worker, side by side."""

from __future__ import annotations

from lab.models import LabRun
from tests.e2e.conftest import screenshot_path
from tests.e2e.test_coding import log_in

# The worker imports torch and runs two short engine runs on the tiny model.
LAB_TIMEOUT_MS = 120_000


def test_run_the_engine_lab(live_stack, page):
    log_in(live_stack, page, "edsger", "pw-edsger-lab-1")
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.get_by_role("navigation").get_by_role("link", name="Engine lab").click()
    page.get_by_label("Scheduler policy").select_option("priority")
    page.get_by_label("KV block size").select_option("8")
    page.get_by_label("KV blocks").fill("40")
    page.get_by_label("Arrival rate (requests/s)").fill("60")
    page.screenshot(path=str(screenshot_path("40-lab-form")), full_page=True)
    page.get_by_role("button", name="Run the experiment").click()

    page.locator("#lab-summary").wait_for(timeout=LAB_TIMEOUT_MS)
    run = LabRun.objects.get(user__username="edsger")
    assert run.state == LabRun.State.DONE
    assert run.settings["block_size"] == 8 and run.settings["num_kv_blocks"] == 40
    rows = page.locator("#lab-summary tbody tr")
    assert rows.count() == 2
    assert rows.nth(0).locator("th").inner_text() == "Continuous"
    assert rows.nth(1).locator("th").inner_text() == "Static"
    static = run.results["modes"]["static"]
    continuous = run.results["modes"]["continuous"]
    # Static batching pads every member of a batch to its longest output; continuous does not.
    assert static["padding_tokens"] > 0 and continuous["padding_tokens"] == 0
    assert page.locator(".lab-mode").count() == 2
    assert page.locator(".lab-mode[data-mode=static] .kv-map span").count() == 40
    colored = page.locator(".lab-mode[data-mode=static] .kv-map span[style*=background]")
    assert colored.count() > 0
    cdf = page.evaluate(
        "Chart.getChart(document.querySelector('[data-mode=continuous] .ttft-cdf'))"
        ".data.datasets.map(d => d.data.length)"
    )
    assert sum(cdf) == 16  # every request, in its priority class
    page.screenshot(path=str(screenshot_path("41-lab-results")), full_page=True)

    slider = page.get_by_label("Step", exact=True).first
    slider.fill("0")
    assert page.locator(".lab-mode[data-mode=continuous] .kv-step-out").inner_text() == "0"
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.locator(".lab-mode .kv-map span").first.wait_for()
    page.screenshot(path=str(screenshot_path("42-lab-results-phone")), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 860})

    page.goto(live_stack.base_url + "/lab/")
    page.get_by_label("KV blocks").fill("2")
    page.get_by_role("button", name="Run the experiment").click()
    assert "Ensure this value is greater than or equal to 4" in page.inner_text(".lab-form")
    assert LabRun.objects.count() == 1
    assert errors == []  # no script failed on any page
