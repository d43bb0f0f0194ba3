// The small chart kit every page shares (Chart.js underneath, plus one canvas drawing):
// a batch timeline, latency CDFs per class, usage over time, and bar charts. Each function
// draws on a canvas, replacing whatever chart it held, so a page can redraw on a choice.
(function () {
  "use strict";
  const KIND_COLORS = { prefill: "#0b3d73", decode: "#2a6cb0", padding: "#bf5a00" };
  const PREEMPTED = "#cf222e";
  const CLASS_COLORS = ["#cf222e", "#0b5cad", "#1a7f37", "#8c6d00"];
  const SERIES_COLORS = ["#0b5cad", "#bf3989", "#1a7f37", "#8c6d00"];

  function fresh(canvas) {
    const old = window.Chart && Chart.getChart(canvas);
    if (old) old.destroy();
  }

  // Requests x steps: one row per id (in the order given), one column per entry of
  // ``columns`` ({cells: [[id, kind]], preempted: [id]}), ``stride`` engine steps a column.
  function timeline(canvas, ids, columns, stride = 1) {
    const cssWidth = canvas.clientWidth || 640;
    const rowH = Math.max(4, Math.min(14, Math.floor(320 / Math.max(ids.length, 1))));
    const left = 34, top = 6, bottom = 22;
    const height = top + rowH * ids.length + bottom;
    const ratio = window.devicePixelRatio || 1;
    canvas.width = cssWidth * ratio;
    canvas.height = height * ratio;
    canvas.style.height = `${height}px`;
    const ctx = canvas.getContext("2d");
    ctx.scale(ratio, ratio);
    const colW = (cssWidth - left - 6) / Math.max(columns.length, 1);
    const row = Object.fromEntries(ids.map((id, i) => [id, i]));
    ctx.fillStyle = "#f6f8fa";
    ctx.fillRect(left, top, cssWidth - left - 6, rowH * ids.length);
    ctx.font = "10px system-ui, sans-serif";
    ctx.fillStyle = "#57606a";
    const labelEvery = Math.ceil(10 / rowH);
    ids.forEach((id, i) => {
      if (i % labelEvery === 0) ctx.fillText(`r${id}`, 2, top + rowH * i + rowH - 2);
    });
    let cells = 0, preempted = 0;
    columns.forEach((column, x) => {
      for (const [id, kind] of column.cells) {
        if (row[id] === undefined) continue;
        ctx.fillStyle = KIND_COLORS[kind] || "#57606a";
        ctx.fillRect(left + x * colW, top + row[id] * rowH, Math.max(colW - 0.3, 0.7), rowH - 1);
        cells += 1;
      }
      for (const id of column.preempted) {
        if (row[id] === undefined) continue;
        ctx.fillStyle = PREEMPTED;
        ctx.fillRect(left + x * colW, top + row[id] * rowH, Math.max(colW, 2), rowH - 1);
        preempted += 1;
      }
    });
    // What was drawn, for a reader of the page's markup (and its tests).
    canvas.dataset.cells = cells;
    canvas.dataset.preempted = preempted;
    ctx.fillStyle = "#57606a";
    const tickEvery = Math.max(1, Math.ceil(columns.length / 8 / 10) * 10);
    // Ticks stop short of the axis label at the right end.
    for (let c = 0; left + c * colW < cssWidth - 70; c += tickEvery) {
      ctx.fillText(String(c * stride), left + c * colW, top + rowH * ids.length + 14);
    }
    ctx.fillText("step →", cssWidth - 44, top + rowH * ids.length + 14);
  }

  // Cumulative distributions, one stepped line per group ({label, values}).
  function cdf(canvas, groups, xLabel) {
    fresh(canvas);
    return new Chart(canvas, {
      type: "scatter",
      data: {
        datasets: groups.map((group, i) => {
          const sorted = [...group.values].sort((a, b) => a - b);
          const color = CLASS_COLORS[i % CLASS_COLORS.length];
          return {
            label: group.label,
            data: sorted.map((value, k) => ({ x: value, y: (100 * (k + 1)) / sorted.length })),
            showLine: true, stepped: "after", pointRadius: 2, borderColor: color, backgroundColor: color,
          };
        }),
      },
      options: {
        maintainAspectRatio: false, animation: false,
        scales: {
          x: { beginAtZero: true, title: { display: true, text: xLabel } },
          y: { min: 0, max: 100, title: { display: true, text: "% of requests" } },
        },
        plugins: { legend: { position: "bottom" } },
      },
    });
  }

  // Per-priority groups for cdf(): most urgent (0) first, each labelled.
  function byPriority(rows, value) {
    const classes = [...new Set(rows.map((r) => r.priority))].sort((a, b) => a - b);
    return classes.map((priority) => ({
      label: `priority ${priority}${priority === 0 ? " (most urgent)" : ""}`,
      values: rows.filter((r) => r.priority === priority).map(value).filter((v) => v !== null),
    }));
  }

  // Values over time ({label, values} series over ``xs``), the first filled; y up to ``max``.
  function usage(canvas, xs, series, { max, xLabel, yLabel }) {
    fresh(canvas);
    return new Chart(canvas, {
      type: "line",
      data: {
        labels: xs,
        datasets: series.map((s, i) => ({
          label: s.label, data: s.values, borderColor: SERIES_COLORS[i % SERIES_COLORS.length],
          backgroundColor: i === 0 ? SERIES_COLORS[0] + "33" : SERIES_COLORS[i % SERIES_COLORS.length],
          fill: i === 0, pointRadius: 0, stepped: true,
        })),
      },
      options: {
        maintainAspectRatio: false, animation: false,
        scales: { y: { min: 0, max, title: { display: true, text: yLabel } },
          x: { title: { display: true, text: xLabel }, ticks: { maxTicksLimit: 10 } } },
        plugins: { legend: { display: series.length > 1, position: "bottom" } },
      },
    });
  }

  // Bars per label, one dataset each ({label, values, color}); horizontal when asked.
  function bars(canvas, labels, datasets, { horizontal = false, valueLabel = "", max } = {}) {
    fresh(canvas);
    const value = { beginAtZero: true, max, title: { display: Boolean(valueLabel), text: valueLabel } };
    return new Chart(canvas, {
      type: "bar",
      data: {
        labels,
        datasets: datasets.map((d, i) => ({
          label: d.label, data: d.values,
          backgroundColor: d.color || SERIES_COLORS[i % SERIES_COLORS.length],
        })),
      },
      options: {
        indexAxis: horizontal ? "y" : "x", maintainAspectRatio: false, animation: false,
        scales: horizontal ? { x: value } : { y: value },
        plugins: { legend: { display: datasets.length > 1, position: "bottom" } },
      },
    });
  }

  window.InferPrep = Object.assign(window.InferPrep || {}, {
    charts: { timeline, cdf, byPriority, usage, bars, colors: SERIES_COLORS },
  });
})();
