// The scorecard's charts, from #scorecard-data (interview/scorecard_selectors.py): score per
// round and per topic, and each round's time used against its time allotted.
(function () {
  "use strict";
  const script = document.getElementById("scorecard-data");
  if (!script || !window.Chart) return;
  const data = JSON.parse(script.textContent);
  const charts = InferPrep.charts;
  const labels = data.rounds.map((r) => r.label);
  charts.bars(document.getElementById("round-score-chart"), labels,
    [{ label: "score", values: data.rounds.map((r) => r.score_pct) }],
    { horizontal: true, valueLabel: "% of the round's points", max: 100 });
  const topics = document.getElementById("topic-score-chart");
  if (topics) {
    charts.bars(topics, data.topics.map((t) => t.topic),
      [{ label: "score", values: data.topics.map((t) => t.score_pct) }],
      { horizontal: true, valueLabel: "% of the topic's points", max: 100 });
  }
  charts.bars(document.getElementById("round-time-chart"), labels, [
    { label: "allotted", values: data.rounds.map((r) => r.allotted_min), color: "#57606a" },
    { label: "used (to your last answer)", values: data.rounds.map((r) => r.used_min) },
  ], { horizontal: true, valueLabel: "minutes" });
})();
