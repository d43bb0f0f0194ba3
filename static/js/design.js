// Design pages: draw the calculator's throughput chart from #chart-data (server-computed), size
// the memory bar's segments from their data-share (the Content-Security-Policy refuses style
// attributes in markup), and let htmx swap in 400 responses, whose fragments carry the form
// errors to show.
(function () {
  var chart = null;

  function fmt(n) { return Number(n).toLocaleString(undefined, { maximumFractionDigits: 0 }); }

  function drawChart() {
    var data = document.getElementById("chart-data");
    var canvas = document.getElementById("throughput-chart");
    if (chart) { chart.destroy(); chart = null; }
    if (!data || !canvas || typeof Chart === "undefined") return;
    var d = JSON.parse(data.textContent);
    chart = new Chart(canvas, {
      type: "line",
      data: {
        labels: d.batches,
        datasets: [
          { label: "predicted tokens/s", data: d.predicted, borderColor: "#0b5cad", backgroundColor: "#0b5cad", tension: 0.1 },
          { label: "roofline (100% of peak)", data: d.roofline, borderColor: "#cf222e", backgroundColor: "#cf222e", borderDash: [6, 4], tension: 0.1 }
        ]
      },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        scales: {
          x: { title: { display: true, text: "batch size (sequences; capped at " + fmt(d.max_batch) + " by the KV cache)" } },
          y: { type: "logarithmic", title: { display: true, text: "output tokens/s" }, ticks: { callback: function (v) { return fmt(v); } } }
        },
        plugins: { tooltip: { callbacks: { label: function (c) { return c.dataset.label + ": " + fmt(c.parsed.y); } } } }
      }
    });
  }

  function sizeMemoryBar() {
    document.querySelectorAll(".membar .seg[data-share]").forEach(function (seg) {
      seg.style.width = seg.dataset.share + "%";
    });
  }

  function drawResult() { sizeMemoryBar(); drawChart(); }

  document.addEventListener("DOMContentLoaded", drawResult);
  // After settle, not after swap: while settling, htmx gives the new canvas the old one's
  // attributes (same id) and then restores its own, which resets a chart drawn in between to
  // a blank 300 x 150 canvas.
  document.addEventListener("htmx:afterSettle", function (e) {
    if (e.detail.target && e.detail.target.id === "calculator-result") drawResult();
  });
  document.addEventListener("htmx:beforeSwap", function (e) {
    if (e.detail.xhr.status === 400) { e.detail.shouldSwap = true; e.detail.isError = false; }
  });
})();
