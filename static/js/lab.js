// The engine lab's pictures, from #lab-data (lab/runner.py's results): per batching mode a
// batch timeline (requests x steps), KV blocks in use over time, and a KV block map per step.
// The charts themselves are charts.js's, shared with the results and scorecard pages.
(function () {
  "use strict";
  const REQUEST_COLORS = ["#0b5cad", "#bf3989", "#1a7f37", "#8c6d00", "#6639ba", "#0a7ea4",
    "#cf222e", "#57606a", "#953800", "#116329", "#8250df", "#1f6feb"];

  function drawTimeline(canvas, requests, steps) {
    const columns = steps.map((step) => ({
      cells: step.scheduled.map(([id, , kind]) => [id, kind]), preempted: step.preempted,
    }));
    InferPrep.charts.timeline(canvas, requests.map((r) => r.id), columns);
  }

  function drawKvChart(canvas, steps, numBlocks) {
    InferPrep.charts.usage(canvas, steps.map((s) => s.step),
      [{ label: "blocks in use", values: steps.map((s) => s.kv_blocks_used) }],
      { max: numBlocks, xLabel: "step", yLabel: "KV blocks" });
  }

  function drawTtftCdf(canvas, latency) {
    InferPrep.charts.cdf(canvas, InferPrep.charts.byPriority(latency, (r) => r.ttft_ms), "TTFT ms");
  }

  function drawBlockMap(section, steps, numBlocks) {
    const map = section.querySelector(".kv-map");
    const slider = section.querySelector(".kv-step");
    const out = section.querySelector(".kv-step-out");
    const legend = section.querySelector(".kv-legend");
    map.innerHTML = "";
    const cells = Array.from({ length: numBlocks }, (_, i) => {
      const cell = document.createElement("span");
      cell.dataset.block = i;
      map.appendChild(cell);
      return cell;
    });
    function show(index) {
      const step = steps[index];
      if (!step) return;
      out.textContent = String(step.step);
      cells.forEach((cell) => { cell.style.background = ""; cell.title = `block ${cell.dataset.block}: free`; });
      const holders = Object.entries(step.blocks || {});
      for (const [id, blocks] of holders) {
        const color = REQUEST_COLORS[Number(id) % REQUEST_COLORS.length];
        for (const block of blocks) {
          if (cells[block]) { cells[block].style.background = color; cells[block].title = `block ${block}: request r${id}`; }
        }
      }
      const used = holders.reduce((n, [, b]) => n + b.length, 0);
      legend.textContent = `${holders.length} requests hold ${used} of ${numBlocks} blocks` +
        (step.preempted.length ? `; preempted this step: ${step.preempted.map((id) => "r" + id).join(", ")}` : "");
    }
    // Open on the busiest step: where the cache is fullest is where the settings matter.
    let busiest = 0;
    steps.forEach((s, i) => { if (s.kv_blocks_used > steps[busiest].kv_blocks_used) busiest = i; });
    slider.value = busiest;
    slider.addEventListener("input", () => show(Number(slider.value)));
    show(busiest);
  }

  function drawLab() {
    const root = document.getElementById("lab-run");
    const script = document.getElementById("lab-data");
    if (!root || !script || root.dataset.drawn) return;
    root.dataset.drawn = "1";
    const data = JSON.parse(script.textContent);
    root.querySelectorAll(".lab-mode").forEach((section) => {
      const result = data.modes[section.dataset.mode];
      drawTimeline(section.querySelector(".timeline"), data.requests, result.steps);
      drawTtftCdf(section.querySelector(".ttft-cdf"), result.latency);
      drawKvChart(section.querySelector(".kv-chart"), result.steps, result.num_kv_blocks);
      drawBlockMap(section, result.steps, result.num_kv_blocks);
    });
  }

  document.addEventListener("DOMContentLoaded", drawLab);
  document.addEventListener("htmx:afterSettle", drawLab);
})();
