// Live progress of one submission over the WebSocket (grader/consumers.py): every event is
// numbered, so a dropped connection reconnects with ?after=<last seq> and misses nothing.
// When the "done" (or "aborted") event arrives, the results section is fetched and swapped in.
(function () {
  "use strict";
  const RECONNECT_MS = [500, 1000, 2000, 4000, 8000];
  const PHASES = {
    queued: "Queued: waiting for a worker",
    started: "A worker picked it up",
    sandbox_started: "Sandbox started",
    reference: "Your tests passed; running the reference solution for comparison",
    benchmarking: "Timing your solution against the reference",
    requeued: "The worker was lost; queued again",
    aborted: "Aborted",
    done: "Graded",
  };

  // As the results table says it: the verdict's label with a capital first letter.
  function verdictLabel(verdict) {
    const label = String(verdict || "").replaceAll("_", " ");
    return label.charAt(0).toUpperCase() + label.slice(1);
  }

  // One row per test: #, name, verdict (or "running…"), time, message.
  function row(tbody, index, name) {
    let tr = tbody.querySelector(`tr[data-index="${index}"]`);
    if (!tr) {
      tr = document.createElement("tr");
      tr.dataset.index = index;
      for (const [text, cls] of [[String(index), ""], [name, ""], ["running…", "status"],
        ["", "num"], ["", "message"]]) {
        const td = document.createElement("td");
        td.textContent = text;
        if (cls) td.className = cls;
        tr.appendChild(td);
      }
      tbody.appendChild(tr);
    }
    return tr;
  }

  // The trusted grader's verdict for one test, as it was judged.
  function verdictRow(tr, data) {
    const [, , status, time, message] = tr.children;
    const badge = document.createElement("span");
    badge.className = `verdict verdict-${data.verdict}`;
    badge.textContent = verdictLabel(data.verdict);
    status.replaceChildren(badge);
    tr.dataset.verdict = data.verdict;
    time.textContent = typeof data.time_ms === "number" ? data.time_ms.toFixed(3) : "–";
    message.textContent = data.message || "";
  }

  function finishRow(tr, text) {
    const cell = tr.querySelector(".status");
    if (cell.textContent === "running…") cell.textContent = text;
  }

  function watch(live, submissionId, resultsUrl, onDone) {
    const phase = live.querySelector("#live-phase");
    const bar = live.querySelector("#live-progress");
    const tbody = live.querySelector("#live-tests");
    let lastSeq = 0, attempts = 0, finished = false, socket = null;

    function setProgress(percent, text) {
      bar.value = percent;
      bar.textContent = `${Math.round(percent)}%`;
      if (text) phase.textContent = text;
    }

    function handle(event) {
      if (event.seq <= lastSeq) return;
      lastSeq = event.seq;
      const data = event.data || {};
      // A worker took it: the "no worker is running" note no longer holds.
      const noWorker = live.querySelector("#no-worker");
      if (noWorker && event.kind !== "queued" && event.kind !== "requeued") noWorker.hidden = true;
      if (event.kind === "test") {
        row(tbody, data.index, data.name);
        const total = Math.max(data.total || 1, 1);
        setProgress(Math.max(bar.value, 10 + (70 * (data.index - 1)) / total),
          `Test ${data.index} of ${total}: ${data.name}`);
      } else if (event.kind === "test_done") {
        verdictRow(row(tbody, data.index, data.name), data);
        const total = Math.max(data.total || 1, 1);
        const passed = tbody.querySelectorAll('tr[data-verdict="accepted"]').length;
        setProgress(10 + (70 * data.index) / total,
          `${data.index} of ${total} tests done, ${passed} passed`);
      } else if (event.kind === "done" || event.kind === "aborted") {
        tbody.querySelectorAll("tr").forEach((tr) => finishRow(tr, "not judged"));
        // A Run (problem.js marks the section) is not graded: it ran the examples.
        const done = live.dataset.job === "run" ? "Examples run" : "Graded";
        setProgress(100, event.kind === "done"
          ? `${done}: ${String(data.verdict || "").replaceAll("_", " ")}` : PHASES.aborted);
        finished = true;
        socket.close();
        onDone();
      } else {
        // A re-queued job runs every test again from the first.
        if (event.kind === "requeued") { tbody.replaceChildren(); bar.value = 0; }
        const percent = { queued: 2, started: 5, sandbox_started: 8, reference: 82,
          benchmarking: 88, requeued: 2 }[event.kind];
        setProgress(percent === undefined ? bar.value : Math.max(bar.value, percent),
          PHASES[event.kind] || event.kind);
      }
    }

    function connect() {
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      socket = new WebSocket(
        `${scheme}://${location.host}/ws/submissions/${submissionId}/?after=${lastSeq}`);
      socket.onopen = () => { attempts = 0; };
      socket.onmessage = (message) => handle(JSON.parse(message.data));
      socket.onclose = () => {
        if (finished) return;
        phase.textContent = "Connection lost; reconnecting…";
        setTimeout(connect, RECONNECT_MS[Math.min(attempts++, RECONNECT_MS.length - 1)]);
      };
    }
    connect();
  }

  async function showResults(resultsUrl) {
    const target = document.getElementById("results");
    const response = await fetch(resultsUrl, { headers: { Accept: "text/html" } });
    target.innerHTML = await response.text();
    // The results table replaces the live one; the progress bar stays as the run's summary.
    const liveTable = document.querySelector("#live .tests-live");
    if (liveTable && target.querySelector("#test-results, #run-examples")) liveTable.hidden = true;
    if (window.InferPrep && window.InferPrep.drawCharts) window.InferPrep.drawCharts(target);
    const heading = target.querySelector("#verdict-heading");
    if (heading) { heading.tabIndex = -1; heading.focus(); }
  }

  window.InferPrep = Object.assign(window.InferPrep || {}, {
    watchSubmission(live, submissionId, resultsUrl) {
      live.hidden = false;
      live.querySelector("#live-tests").innerHTML = "";
      live.querySelector(".tests-live").hidden = false;  // the last job's results hid it
      live.querySelector("#live-progress").value = 0;
      return new Promise((resolve) => {
        watch(live, submissionId, resultsUrl, () => showResults(resultsUrl).then(resolve));
      });
    },
  });

  document.addEventListener("DOMContentLoaded", () => {
    const live = document.querySelector("#live[data-submission]");
    if (live) window.InferPrep.watchSubmission(live, live.dataset.submission, live.dataset.resultsUrl);
  });
})();
