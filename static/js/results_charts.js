// Charts of a submission's results, drawn from the page's #chart-data JSON (json_script):
// speed against the reference with its spread, the roofline for kernels, and the engine
// problems' pictures of the candidate's own run (with charts.js's shared kit).
(function () {
  "use strict";
  const COLORS = { yours: "#0b5cad", reference: "#8c6d00" };
  const LABELS = { yours: "Yours", reference: "Reference" };

  function speedChart(canvas, speed) {
    // One row per solution on a plain scatter chart: the p10-p90 range as a thick segment,
    // every timed call as a dot (jittered within its row), the median as a tall mark.
    const names = ["yours", "reference"];
    const jitter = (i) => (((i * 7919) % 100) / 100 - 0.5) * 0.3;
    const datasets = [];
    names.forEach((n, row) => {
      const s = speed[n];
      datasets.push({
        label: `${LABELS[n]}: p10 to p90`, showLine: true, pointRadius: 0, borderWidth: 14,
        borderColor: COLORS[n] + "66", data: [{ x: s.p10_ms, y: row }, { x: s.p90_ms, y: row }],
      });
      datasets.push({
        label: `${LABELS[n]}: timed calls`, pointRadius: 2.5, backgroundColor: COLORS[n] + "aa",
        borderWidth: 0, data: s.samples_ms.map((ms, i) => ({ x: ms, y: row + jitter(i) })),
      });
      datasets.push({
        label: `${LABELS[n]}: median`, pointStyle: "line", rotation: 90, pointRadius: 16,
        borderWidth: 3, borderColor: "#1b1f24", data: [{ x: s.median_ms, y: row }],
      });
    });
    new Chart(canvas, {
      type: "scatter",
      data: { datasets },
      options: {
        maintainAspectRatio: false, animation: false,
        scales: {
          x: { title: { display: true, text: "ms per call (shorter is faster)" } },
          y: {
            min: -0.6, max: names.length - 0.4, reverse: true,
            afterBuildTicks: (axis) => { axis.ticks = names.map((_, i) => ({ value: i })); },
            ticks: { callback: (value) => LABELS[names[value]] || "" },
            grid: { display: false },
          },
        },
        plugins: {
          legend: { position: "bottom", labels: { filter: (item) => !item.text.endsWith("timed calls") } },
          tooltip: { callbacks: { label: (ctx) => `${ctx.dataset.label}: ${ctx.parsed.x.toFixed(4)} ms` } },
        },
      },
    });
  }

  function powersOfTen(value) {
    const exponent = Math.log10(value);
    return Math.abs(exponent - Math.round(exponent)) < 1e-9 ? String(Number(value.toPrecision(1))) : "";
  }

  function decadeGrid(context) {
    return context.tick && powersOfTen(context.tick.value) ? "#d0d7de" : "transparent";
  }

  function rooflineChart(canvas, roof) {
    const ridge = roof.peak_flops_per_s / roof.peak_bytes_per_s;
    const xs = [Math.min(roof.intensity, ridge) / 100, ridge, Math.max(roof.intensity, ridge) * 100];
    const ceiling = xs.map((x) => ({ x, y: Math.min(roof.peak_flops_per_s, x * roof.peak_bytes_per_s) / 1e12 }));
    new Chart(canvas, {
      type: "scatter",
      data: {
        datasets: [
          { label: `${roof.card} ceiling`, data: ceiling, showLine: true, pointRadius: 0,
            borderColor: "#57606a", borderWidth: 2 },
          ...Object.entries(roof.points).map(([name, flops]) => ({
            label: LABELS[name] || name, data: [{ x: roof.intensity, y: flops / 1e12 }],
            pointRadius: name === "yours" ? 6 : 9, backgroundColor: COLORS[name] || "#1a7f37",
            pointStyle: name === "yours" ? "circle" : "triangle",
          })),
        ],
      },
      options: {
        maintainAspectRatio: false, animation: false,
        scales: {
          x: { type: "logarithmic", title: { display: true, text: "arithmetic intensity (FLOP/byte)" },
            ticks: { callback: powersOfTen, autoSkip: false, maxRotation: 0 }, grid: { color: decadeGrid } },
          y: { type: "logarithmic", title: { display: true, text: "TFLOP/s" },
            ticks: { callback: powersOfTen, autoSkip: false }, grid: { color: decadeGrid } },
        },
        plugins: { legend: { position: "bottom" } },
      },
    });
  }

  function figureChart(canvas, figure) {
    InferPrep.charts.bars(canvas, figure.rows.map((r) => r.metric),
      [{ label: "yours / reference", color: COLORS.yours,
        values: figure.rows.map((r) => (r.reference ? r.yours / r.reference : null)) }],
      { horizontal: true, valueLabel: "yours ÷ reference" });
  }

  function measureChart(canvas, measures, index) {
    const rows = measures.rows.filter((r) => r.values[index] !== null);
    InferPrep.charts.bars(canvas, rows.map((r) => r.test),
      [{ label: measures.labels[index], color: COLORS.yours, values: rows.map((r) => r.values[index]) }],
      { horizontal: true });
  }

  // The candidate's own run of one test, as the grader recorded and checked it (see
  // interview/coding_selectors.py _run): the scheduler's batch timeline, latency CDFs per
  // priority class and KV blocks in use; the allocator's KV blocks in use, op by op.
  function drawRun(root, runs, index) {
    const charts = InferPrep.charts;
    const run = runs[index];
    const part = (id) => root.querySelector(`#${id}`);
    if (run.kind === "schedule") {
      const columns = run.columns.map((c) => ({
        cells: [...(c.p || []).map((id) => [id, "prefill"]), ...(c.d || []).map((id) => [id, "decode"])],
        preempted: c.x || [],
      }));
      const timeline = part("run-timeline");
      charts.timeline(timeline, run.requests.map((r) => r.id), columns, run.stride);
      const preemptions = run.requests.reduce((n, r) => n + r.preemptions, 0);
      timeline.setAttribute("aria-label", `Batch timeline of test ${run.test}: ` +
        `${run.requests.length} requests over ${run.steps} engine steps, ${preemptions} preemptions`);
      charts.cdf(part("run-ttft-cdf"), charts.byPriority(run.requests, (r) => r.ttft),
        "time to first token (engine steps)");
      charts.cdf(part("run-e2e-cdf"), charts.byPriority(run.requests, (r) => r.e2e),
        "end-to-end latency (engine steps)");
      charts.usage(part("run-kv-chart"), run.columns.map((_, i) => i * run.stride),
        [{ label: "blocks in use", values: run.columns.map((c) => c.kv) }],
        { max: run.num_kv_blocks, xLabel: "step", yLabel: "KV blocks" });
    } else if (run.kind === "kv_blocks") {
      charts.usage(part("run-kv-chart"), run.used.map((_, i) => i * run.stride),
        [{ label: "blocks in use", values: run.used },
          { label: "blocks shared by several sequences", values: run.shared }],
        { max: run.num_blocks, xLabel: "op", yLabel: "KV blocks" });
    }
    root.querySelectorAll(".run-summary").forEach((el) => {
      el.hidden = el.dataset.index !== String(index);
    });
  }

  function drawRuns(root, runs) {
    if (!runs || !runs.length || !root.querySelector("#runs")) return;
    const choice = root.querySelector("#run-test");
    drawRun(root, runs, choice ? Number(choice.value) : runs.length - 1);
    if (choice) choice.addEventListener("change", () => drawRun(root, runs, Number(choice.value)));
  }

  function drawCharts(root) {
    const script = root.querySelector("#chart-data");
    if (!script || !window.Chart) return;
    const data = JSON.parse(script.textContent);
    const speed = root.querySelector("#speed-chart");
    if (speed && data.speed) speedChart(speed, data.speed);
    const roof = root.querySelector("#roofline-chart");
    if (roof && data.roofline) rooflineChart(roof, data.roofline);
    root.querySelectorAll(".figure-chart").forEach((canvas) =>
      figureChart(canvas, data.figures[Number(canvas.dataset.index)]));
    root.querySelectorAll(".measure-chart").forEach((canvas) =>
      measureChart(canvas, data.measures, Number(canvas.dataset.index)));
    drawRuns(root, data.runs);
  }

  window.InferPrep = Object.assign(window.InferPrep || {}, { drawCharts });
  document.addEventListener("DOMContentLoaded", () => drawCharts(document));
})();
