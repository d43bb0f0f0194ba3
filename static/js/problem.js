// The problem page: submit without leaving the page, then live progress and the verdict
// (live_submission.js). The editor is editor.js's, the Run button code_run.js's, the
// statement's maths statement.js's.
(function () {
  "use strict";
  const form = document.getElementById("submit-form");
  const status = document.getElementById("draft-status");
  const post = window.InferPrep.codePost;  // code_run.js
  const button = document.getElementById("submit-button");
  const runButton = document.getElementById("run-button");
  const live = document.getElementById("live");
  const liveHeading = document.getElementById("live-heading");

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
