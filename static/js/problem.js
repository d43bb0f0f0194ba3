// The problem page: submit (or Run on the public examples) without leaving the page, then live
// progress and the verdict (live_submission.js). The editor is editor.js's, the statement's
// maths statement.js's.
(function () {
  "use strict";
  const form = document.getElementById("submit-form");
  const status = document.getElementById("draft-status");
  const button = document.getElementById("submit-button");
  const runButton = document.getElementById("run-button");
  const live = document.getElementById("live");
  const liveHeading = document.getElementById("live-heading");

  const editor = window.InferPrep.editor;  // editor.js: CodeMirror with the browser draft

  // The statement's list of your submissions, re-read from the server once a verdict is in,
  // and the editorial, which the server includes once you have an accepted submission.
  async function refreshHistory() {
    const response = await fetch(location.pathname, { headers: { Accept: "text/html" } });
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    const section = document.getElementById("history");
    section.innerHTML = fresh.getElementById("history").innerHTML;
    section.hidden = false;
    document.getElementById("editorial").innerHTML = fresh.getElementById("editorial").innerHTML;
  }

  // POST the form to `url` as a JSON request: the reply, or null after saying why it failed.
  async function post(url) {
    editor.save();
    const body = new FormData(form);
    body.set("idempotency_key", crypto.randomUUID ? crypto.randomUUID() : String(Date.now()));
    const response = await fetch(url, { method: "POST", body, headers: { Accept: "application/json" } });
    const reply = await response.json();
    if (!response.ok) {
      status.textContent = reply.error || `Sending failed (${response.status}).`;
      return null;
    }
    document.getElementById("results").innerHTML = "";
    // No live worker: say the job waits for one, not a progress bar that never moves.
    const noWorker = live.querySelector("#no-worker");
    noWorker.textContent = reply.no_worker || "";
    noWorker.hidden = !reply.no_worker;
    return reply;
  }

  // Run: the public examples (and your own input), no grade; the same live view and limits.
  if (runButton) {
    runButton.addEventListener("click", async () => {
      runButton.disabled = button.disabled = true;
      runButton.textContent = "Running…";
      try {
        const reply = await post(runButton.dataset.runUrl);
        if (reply) {
          liveHeading.textContent = "Running the examples";
          live.dataset.job = "run";
          await window.InferPrep.watchSubmission(live, reply.id, reply.results_url);
        }
      } catch (error) {
        status.textContent = `Run failed: ${error}. Your draft is safe; try again.`;
      } finally {
        runButton.disabled = button.disabled = false;
        runButton.textContent = "Run";
      }
    });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    if (runButton) runButton.disabled = true;
    button.textContent = "Submitting…";
    try {
      const reply = await post(form.action);
      if (!reply) return;
      liveHeading.textContent = "Grading";
      live.dataset.job = "submission";
      button.textContent = "Grading…";
      await window.InferPrep.watchSubmission(live, reply.id, reply.results_url);
      await refreshHistory();
    } catch (error) {
      status.textContent = `Submitting failed: ${error}. Your draft is safe; try again.`;
    } finally {
      button.disabled = false;
      if (runButton) runButton.disabled = false;
      button.textContent = "Submit";
    }
  });
})();
