// Counts down to the server-side deadline in #countdown[data-deadline]; the server decides
// what is late, this only shows the time left.
(function () {
  var el = document.getElementById("countdown");
  if (!el || !el.dataset.deadline) return;
  var deadline = Date.parse(el.dataset.deadline);
  var announced = false;
  function tick() {
    var left = Math.round((deadline - Date.now()) / 1000);
    if (left <= 0) {
      el.textContent = "time is up — answers now are marked late";
      if (!announced) { el.setAttribute("aria-live", "assertive"); announced = true; }
      return;
    }
    var m = Math.floor(left / 60), s = left % 60;
    el.textContent = m + ":" + (s < 10 ? "0" : "") + s;
    setTimeout(tick, 1000);
  }
  tick();
})();
