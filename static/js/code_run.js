// The Run button under a solution editor (the problem page and a mock loop's coding round): the
// editor's code on the public examples (and an input of your own), no grade, with the live
// progress and the examples' verdicts of live_submission.js. `InferPrep.codePost` sends the
// editor's form to a URL as JSON; the problem page's Submit uses it too.
(function () {
  "use strict";
  const form = document.querySelector("form[data-code-editor]");
  const status = document.getElementById("draft-status");
  const submitButton = document.getElementById("submit-button");
  const runButton = document.getElementById("run-button");
  const live = document.getElementById("live");
  const liveHeading = document.getElementById("live-heading");
  const editor = window.InferPrep.editor;  // editor.js: CodeMirror with the browser draft

  // POST the form to `url` as a JSON request: the reply, or null after saying why it failed.
  async function codePost(url) {
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
  window.InferPrep.codePost = codePost;

  if (!runButton) return;
  runButton.addEventListener("click", async () => {
    runButton.disabled = submitButton.disabled = true;
    runButton.textContent = "Running…";
    try {
      const reply = await codePost(runButton.dataset.runUrl);
      if (reply) {
        liveHeading.textContent = "Running the examples";
        live.dataset.job = "run";
        await window.InferPrep.watchSubmission(live, reply.id, reply.results_url);
      }
    } catch (error) {
      status.textContent = `Run failed: ${error}. Your draft is safe; try again.`;
    } finally {
      runButton.disabled = submitButton.disabled = false;
      runButton.textContent = "Run";
    }
  });
})();
