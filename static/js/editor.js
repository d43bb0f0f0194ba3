// The code editor of every page where a person writes a solution (the problem page, a mock
// interview's coding round): CodeMirror on the form's textarea, the draft kept in this
// browser as they type and restored on their next visit, a reset to the starter code, and
// the keyboard's way out. A form opts in with data-code-editor, data-draft-key and
// data-starter; it holds textarea[name=code], a .draft-status, a submit and a .reset-button.
(function () {
  "use strict";
  const SAVE_DELAY_MS = 400;

  function codeEditor(form) {
    const textarea = form.querySelector("textarea[name=code]");
    const status = form.querySelector(".draft-status");
    const submit = form.querySelector("[type=submit]");
    const draftKey = form.dataset.draftKey;

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
        Esc: () => submit.focus(),
      },
    });

    let timer = null;
    editor.on("change", () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        localStorage.setItem(draftKey, editor.getValue());
        status.textContent = `Draft saved ${new Date().toLocaleTimeString()}.`;
      }, SAVE_DELAY_MS);
    });

    form.querySelector(".reset-button").addEventListener("click", () => {
      if (!confirm("Replace your code with the starter code? Your draft will be lost.")) return;
      editor.setValue(form.dataset.starter);
      localStorage.removeItem(draftKey);
      status.textContent = "Starter code restored.";
    });
    return editor;
  }

  const form = document.querySelector("form[data-code-editor]");
  if (form) window.InferPrep = Object.assign(window.InferPrep || {}, { editor: codeEditor(form) });
})();
