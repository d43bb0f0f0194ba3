// The problem page: CodeMirror on the solution's textarea, drafts kept in this browser,
// submit without leaving the page, then live progress and the verdict (live_submission.js).
(function () {
  "use strict";
  const form = document.getElementById("submit-form");
  const textarea = document.getElementById("code");
  const status = document.getElementById("draft-status");
  const button = document.getElementById("submit-button");
  const draftKey = `inferprep:draft:${form.dataset.user}:${form.dataset.slug}`;
  const SAVE_DELAY_MS = 400;

  if (window.renderMathInElement) {
    renderMathInElement(document.querySelector(".statement"), {
      delimiters: [
        { left: "$$", right: "$$", display: true },
        { left: "$", right: "$", display: false },
      ],
      throwOnError: false,
    });
  }

  const draft = localStorage.getItem(draftKey);
  if (draft !== null && draft !== textarea.value) {
    textarea.value = draft;
    status.textContent = "Your last draft was restored.";
  }

  const editor = CodeMirror.fromTextArea(textarea, {
    mode: "python",
    lineNumbers: true,
    indentUnit: 4,
    tabSize: 4,
    indentWithTabs: false,
    matchBrackets: true,
    autoCloseBrackets: true,
    viewportMargin: Infinity,
    screenReaderLabel: "Your solution (Python)",
    extraKeys: {
      Tab: (cm) => cm.somethingSelected() ? cm.indentSelection("add") : cm.replaceSelection("    "),
      "Shift-Tab": (cm) => cm.indentSelection("subtract"),
      "Ctrl-Enter": () => form.requestSubmit(),
      "Cmd-Enter": () => form.requestSubmit(),
      Esc: () => button.focus(),
    },
  });
  window.InferPrep = Object.assign(window.InferPrep || {}, { editor });

  let timer = null;
  editor.on("change", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      localStorage.setItem(draftKey, editor.getValue());
      status.textContent = `Draft saved ${new Date().toLocaleTimeString()}.`;
    }, SAVE_DELAY_MS);
  });

  document.getElementById("reset-button").addEventListener("click", () => {
    if (!confirm("Replace your code with the starter code? Your draft will be lost.")) return;
    editor.setValue(form.dataset.starter);
    localStorage.removeItem(draftKey);
    status.textContent = "Starter code restored.";
  });

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
