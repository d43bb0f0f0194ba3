// Finishing a loop loses nothing by accident: it waits for answers still being graded, and asks
// first when an answer was typed but not submitted (a follow-up, a design, a concept question).
(function () {
  "use strict";
  const form = document.querySelector("form[data-loop-finish]");
  if (!form) return;
  const busy = window.InferPrep && window.InferPrep.busy;

  // Fields of answer forms still on the page (a submitted answer's form is gone) that hold input.
  function pendingFields() {
    return Array.from(document.querySelectorAll("main form:not([data-loop-finish]):not([data-code-editor])"))
      .flatMap(function (f) { return Array.from(f.elements); })
      .filter(function (el) {
        if (el.type === "hidden" || el.disabled) return false;
        if (el.type === "radio" || el.type === "checkbox") return el.checked;
        return (el.tagName === "TEXTAREA" || el.type === "text") && el.value.trim() !== "";
      });
  }

  form.addEventListener("submit", function (event) {
    if (form.dataset.confirmed === "yes") return;
    event.preventDefault();
    const button = form.querySelector("button");
    if (busy) busy.mark(button, true);
    const proceed = function () {
      const pending = pendingFields();
      if (pending.length && !window.confirm(
        "You have " + pending.length + " answer field" + (pending.length === 1 ? "" : "s") +
        " filled in but not submitted. Finish anyway? Unsubmitted answers are not graded.")) {
        if (busy) busy.mark(button, false);
        pending[0].focus();
        return;
      }
      form.dataset.confirmed = "yes";
      form.submit();
    };
    if (busy) {
      if (busy.inFlight) button.textContent = "Waiting for your answers to be graded…";
      busy.whenIdle(proceed);
    } else {
      proceed();
    }
  });
})();
