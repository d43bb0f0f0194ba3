// The progress page's loop chart: each finished loop's overall score, from #loop-score-data.
(function () {
  "use strict";
  const script = document.getElementById("loop-score-data");
  const canvas = document.getElementById("loop-score-chart");
  if (!script || !canvas || !window.Chart) return;
  const loops = JSON.parse(script.textContent);
  new Chart(canvas, {
    type: "line",
    data: {
      labels: loops.map((l) => l.when),
      datasets: [{ label: "overall score (%)", data: loops.map((l) => Math.round(l.score * 1000) / 10),
        borderColor: "#0b5cad", backgroundColor: "#0b5cad", pointRadius: 4 }],
    },
    options: { maintainAspectRatio: false, animation: false,
      scales: { y: { min: 0, max: 100, title: { display: true, text: "% of the loop's points" } } },
      plugins: { legend: { display: false } } },
  });
})();
