// The progress chart of the dashboard and the progress page: share correct per topic per week,
// from #progress-data.
(function () {
  "use strict";
  const PALETTE = ["#0b5cad", "#bf3989", "#1a7f37", "#8c6d00", "#6639ba", "#cf222e", "#0a7ea4", "#57606a"];
  const script = document.getElementById("progress-data");
  const canvas = document.getElementById("progress-chart");
  if (!script || !canvas || !window.Chart) return;
  const data = JSON.parse(script.textContent);
  const color = (i) => PALETTE[i % PALETTE.length];
  const percent = { min: 0, max: 100, title: { display: true, text: "% correct" } };
  // Until there are two weeks to compare, a line has nothing to join: show the topics as bars.
  const chart = data.weeks.length < 2
    ? {
      type: "bar",
      data: {
        labels: data.topics.map((t) => t.topic),
        datasets: [{ label: `% correct (${data.weeks[0] || "this week"})`,
          data: data.topics.map((t) => t.overall), backgroundColor: data.topics.map((_, i) => color(i)) }],
      },
      options: { maintainAspectRatio: false, animation: false, scales: { y: percent },
        plugins: { legend: { display: false } } },
    }
    : {
      type: "line",
      data: {
        labels: data.weeks,
        datasets: data.topics.map((t, i) => ({
          label: t.topic, data: t.share, spanGaps: true, pointRadius: 4,
          borderColor: color(i), backgroundColor: color(i),
        })),
      },
      options: { maintainAspectRatio: false, animation: false, scales: { y: percent, x: { offset: true } },
        plugins: { legend: { position: "bottom" } } },
    };
  new Chart(canvas, chart);
})();
