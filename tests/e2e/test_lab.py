"""A person runs the engine lab once: both batching modes on a worker, side by side; and
with no worker alive, the lab says so instead of waiting forever."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from grader.models import Worker
from lab.experiment import LabSettings
from lab.models import LabRun
from lab.services import UNSERVED_WAIT_S
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


def test_with_no_worker_the_lab_says_so_instead_of_waiting(live_stack, page):
    log_in(live_stack, page, "grace-h", "pw-grace-lab-2")
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    live_stack.worker.stop()  # a clean shutdown withdraws its heartbeat at once
    assert not Worker.objects.exists()

    page.get_by_role("navigation").get_by_role("link", name="Engine lab").click()
    notice = page.locator("#no-worker")
    assert notice.inner_text().startswith("No worker is serving the cpu queue right now")
    page.get_by_role("button", name="Run the experiment").click()
    page.wait_for_url(live_stack.base_url + "/lab/")
    assert notice.inner_text().startswith("No worker is serving the cpu queue right now")
    assert LabRun.objects.count() == 0  # refused at once: nothing waits in the queue
    page.screenshot(path=str(screenshot_path("43-lab-no-worker")), full_page=True)

    # Experiments queued before the worker died: one still within the bounded wait says that
    # no worker serves its queue; one older than the wait is marked failed, and says why.
    user = get_user_model().objects.get(username="grace-h")
    waiting = LabRun.objects.create(user=user, settings=LabSettings().as_dict())
    page.goto(f"{live_stack.base_url}/lab/runs/{waiting.pk}/")
    assert page.locator("#lab-run .error").inner_text() == (
        "No worker is serving the cpu queue right now: none has sent a heartbeat lately. If "
        f"none starts this experiment within {UNSERVED_WAIT_S} s of its submission, it is "
        "marked failed."
    )
    stale = LabRun.objects.create(user=user, settings=LabSettings().as_dict())
    LabRun.objects.filter(pk=stale.pk).update(
        created_at=timezone.now() - timedelta(seconds=UNSERVED_WAIT_S + 5)
    )
    page.goto(f"{live_stack.base_url}/lab/runs/{stale.pk}/")
    assert page.locator("#lab-run .error").inner_text() == (
        f"The experiment failed: no worker started it within {UNSERVED_WAIT_S} s: none is "
        "serving the cpu queue."
    )
    assert LabRun.objects.get(pk=stale.pk).state == LabRun.State.FAILED
    page.screenshot(path=str(screenshot_path("44-lab-run-failed-no-worker")), full_page=True)
    assert errors == []  # no script failed on any page
