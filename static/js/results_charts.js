// Charts of a submission's results, drawn from the page's #chart-data JSON (json_script):
// speed against the reference with its spread, and the roofline for kernels.
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
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: figure.rows.map((r) => r.metric),
        datasets: [{ label: "yours / reference", backgroundColor: COLORS.yours,
          data: figure.rows.map((r) => (r.reference ? r.yours / r.reference : null)) }],
      },
      options: {
        indexAxis: "y", maintainAspectRatio: false, animation: false,
        scales: { x: { beginAtZero: true, title: { display: true, text: "yours ÷ reference" } } },
        plugins: { legend: { display: false } },
      },
    });
  }

  function measureChart(canvas, measures, index) {
    const rows = measures.rows.filter((r) => r.values[index] !== null);
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: rows.map((r) => r.test),
        datasets: [{ label: measures.labels[index], backgroundColor: COLORS.yours,
          data: rows.map((r) => r.values[index]) }],
      },
      options: {
        indexAxis: "y", maintainAspectRatio: false, animation: false,
        scales: { x: { beginAtZero: true } },
        plugins: { legend: { display: false } },
      },
    });
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
  }

  window.InferPrep = Object.assign(window.InferPrep || {}, { drawCharts });
  document.addEventListener("DOMContentLoaded", () => drawCharts(document));
})();
