// Every button that waits on the server says so: once its form is on its way, the button is
// disabled, marked aria-busy and reads "Working…" until the page changes or, for an htmx form,
// until its request ends. window.InferPrep.busy counts the htmx requests still in flight.
(function () {
  "use strict";
  const InferPrep = (window.InferPrep = window.InferPrep || {});
  const busy = (InferPrep.busy = { inFlight: 0, waiters: [] });

  function mark(button, on) {
    if (!button) return;
    if (on) {
      if (button.dataset.idleLabel === undefined) button.dataset.idleLabel = button.textContent;
      button.textContent = button.dataset.busyLabel || "Working…";
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
    } else if (button.dataset.idleLabel !== undefined) {
      button.textContent = button.dataset.idleLabel;
      delete button.dataset.idleLabel;
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
  }
  busy.mark = mark;

  // Runs once htmx has nothing in flight: at once when idle, else when the last request ends.
  busy.whenIdle = function (callback) {
    if (busy.inFlight === 0) callback();
    else busy.waiters.push(callback);
  };

  function submitter(form, event) {
    return event.submitter || form.querySelector("button[type=submit], button:not([type])");
  }

  document.addEventListener("submit", function (event) {
    const form = event.target;
    const button = submitter(form, event);
    const htmxForm = form.hasAttribute("hx-post") || form.hasAttribute("hx-get");
    if (event.defaultPrevented && !htmxForm) return;
    // After this task: a button disabled now would drop its own name and value from the form.
    setTimeout(function () { mark(button, true); }, 0);
    if (htmxForm) form.addEventListener("htmx:afterRequest", function () { mark(button, false); }, { once: true });
  });

  document.addEventListener("htmx:beforeRequest", function () { busy.inFlight += 1; });
  document.addEventListener("htmx:afterRequest", function () {
    busy.inFlight = Math.max(0, busy.inFlight - 1);
    if (busy.inFlight === 0) busy.waiters.splice(0).forEach(function (callback) { callback(); });
  });

  // A page restored from the back-forward cache shows its buttons as they were left.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("button[aria-busy=true]").forEach(function (b) { mark(b, false); });
  });
})();
