// The problem page: submit without leaving the page, then live progress and the verdict
// (live_submission.js). The editor is editor.js's, the statement's maths statement.js's.
(function () {
  "use strict";
  const form = document.getElementById("submit-form");
  const status = document.getElementById("draft-status");
  const button = document.getElementById("submit-button");

  const editor = window.InferPrep.editor;  // editor.js: CodeMirror with the browser draft

  // The statement's list of your submissions, re-read from the server once a verdict is in.
  async function refreshHistory() {
    const response = await fetch(location.pathname, { headers: { Accept: "text/html" } });
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    const section = document.getElementById("history");
    section.innerHTML = fresh.getElementById("history").innerHTML;
    section.hidden = false;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    editor.save();
    button.disabled = true;
    button.textContent = "Submitting…";
    const body = new FormData(form);
    body.set("idempotency_key", crypto.randomUUID ? crypto.randomUUID() : String(Date.now()));
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body,
        headers: { Accept: "application/json" },
      });
      const reply = await response.json();
      if (!response.ok) {
        status.textContent = reply.error || `Submitting failed (${response.status}).`;
        return;
      }
      document.getElementById("results").innerHTML = "";
      const live = document.getElementById("live");
      // No live worker: say the submission waits for one, not a progress bar that never moves.
      const noWorker = live.querySelector("#no-worker");
      noWorker.textContent = reply.no_worker || "";
      noWorker.hidden = !reply.no_worker;
      button.textContent = "Grading…";
      await window.InferPrep.watchSubmission(live, reply.id, reply.results_url);
      await refreshHistory();
    } catch (error) {
      status.textContent = `Submitting failed: ${error}. Your draft is safe; try again.`;
    } finally {
      button.disabled = false;
      button.textContent = "Submit";
    }
  });
})();
