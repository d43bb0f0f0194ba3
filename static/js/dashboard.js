// The dashboard's progress chart: share correct per topic per week, from #progress-data.
(function () {
  "use strict";
  const PALETTE = ["#0b5cad", "#bf3989", "#1a7f37", "#8c6d00", "#6639ba", "#cf222e", "#0a7ea4", "#57606a"];
  const script = document.getElementById("progress-data");
  const canvas = document.getElementById("progress-chart");
  if (!script || !canvas || !window.Chart) return;
  const data = JSON.parse(script.textContent);
  new Chart(canvas, {
    type: "line",
    data: {
      labels: data.weeks,
      datasets: data.topics.map((t, i) => ({
        label: t.topic, data: t.share, spanGaps: true, pointRadius: 4,
        borderColor: PALETTE[i % PALETTE.length], backgroundColor: PALETTE[i % PALETTE.length],
      })),
    },
    options: {
      maintainAspectRatio: false, animation: false,
      scales: { y: { min: 0, max: 100, title: { display: true, text: "% correct" } } },
      plugins: { legend: { position: "bottom" } },
    },
  });
})();
