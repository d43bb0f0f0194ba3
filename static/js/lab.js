// The engine lab's pictures, from #lab-data (lab/runner.py's results): per batching mode a
// batch timeline (requests x steps), KV blocks in use over time, and a KV block map per step.
(function () {
  "use strict";
  const KIND_COLORS = { prefill: "#0b3d73", decode: "#2a6cb0", padding: "#bf5a00" };
  const PREEMPTED = "#cf222e";
  const REQUEST_COLORS = ["#0b5cad", "#bf3989", "#1a7f37", "#8c6d00", "#6639ba", "#0a7ea4",
    "#cf222e", "#57606a", "#953800", "#116329", "#8250df", "#1f6feb"];

  function drawTimeline(canvas, requests, steps) {
    const cssWidth = canvas.clientWidth || 640;
    const rowH = Math.max(4, Math.min(14, Math.floor(320 / requests.length)));
    const left = 34, top = 6, bottom = 22;
    const ratio = window.devicePixelRatio || 1;
    canvas.width = cssWidth * ratio;
    canvas.height = (top + rowH * requests.length + bottom) * ratio;
    canvas.style.height = `${top + rowH * requests.length + bottom}px`;
    const ctx = canvas.getContext("2d");
    ctx.scale(ratio, ratio);
    const colW = (cssWidth - left - 6) / Math.max(steps.length, 1);
    const row = Object.fromEntries(requests.map((r, i) => [r.id, i]));
    ctx.fillStyle = "#f6f8fa";
    ctx.fillRect(left, top, cssWidth - left - 6, rowH * requests.length);
    ctx.font = "10px system-ui, sans-serif";
    ctx.fillStyle = "#57606a";
    const labelEvery = Math.ceil(10 / rowH);
    requests.forEach((r, i) => {
      if (i % labelEvery === 0) ctx.fillText(`r${r.id}`, 2, top + rowH * i + rowH - 2);
    });
    steps.forEach((step, x) => {
      for (const [id, , kind] of step.scheduled) {
        ctx.fillStyle = KIND_COLORS[kind] || "#57606a";
        ctx.fillRect(left + x * colW, top + row[id] * rowH, Math.max(colW - 0.3, 0.7), rowH - 1);
      }
      for (const id of step.preempted) {
        ctx.fillStyle = PREEMPTED;
        const cx = left + x * colW, cy = top + row[id] * rowH;
        ctx.fillRect(cx, cy, Math.max(colW, 2), rowH - 1);
      }
    });
    ctx.fillStyle = "#57606a";
    const tickEvery = Math.max(1, Math.ceil(steps.length / 8 / 10) * 10);
    // Ticks stop short of the axis label at the right end.
    for (let s = 0; left + s * colW < cssWidth - 70; s += tickEvery) {
      ctx.fillText(String(s), left + s * colW, top + rowH * requests.length + 14);
    }
    ctx.fillText("step →", cssWidth - 44, top + rowH * requests.length + 14);
  }

  function drawKvChart(canvas, steps, numBlocks) {
    new Chart(canvas, {
      type: "line",
      data: {
        labels: steps.map((s) => s.step),
        datasets: [{ label: "blocks in use", data: steps.map((s) => s.kv_blocks_used),
          borderColor: "#0b5cad", backgroundColor: "#0b5cad33", fill: true, pointRadius: 0, stepped: true }],
      },
      options: {
        maintainAspectRatio: false, animation: false,
        scales: { y: { min: 0, max: numBlocks, title: { display: true, text: "KV blocks" } },
          x: { title: { display: true, text: "step" }, ticks: { maxTicksLimit: 10 } } },
        plugins: { legend: { display: false } },
      },
    });
  }

  function drawTtftCdf(canvas, latency) {
    const classes = [...new Set(latency.map((r) => r.priority))].sort();
    const colors = ["#cf222e", "#0b5cad", "#1a7f37", "#8c6d00"];
    new Chart(canvas, {
      type: "scatter",
      data: {
        datasets: classes.map((priority, i) => {
          const ttfts = latency.filter((r) => r.priority === priority).map((r) => r.ttft_ms).sort((a, b) => a - b);
          return {
            label: `priority ${priority}${priority === 0 ? " (most urgent)" : ""}`,
            data: ttfts.map((ms, k) => ({ x: ms, y: (100 * (k + 1)) / ttfts.length })),
            showLine: true, stepped: "after", pointRadius: 2, borderColor: colors[i % colors.length],
            backgroundColor: colors[i % colors.length],
          };
        }),
      },
      options: {
        maintainAspectRatio: false, animation: false,
        scales: {
          x: { beginAtZero: true, title: { display: true, text: "TTFT ms" } },
          y: { min: 0, max: 100, title: { display: true, text: "% of requests" } },
        },
        plugins: { legend: { position: "bottom" } },
      },
    });
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
