// The self-check of an answer the judge is unsure about: count the ticked rubric points.
(function () {
  function update(box) {
    const ticks = box.querySelectorAll("input[type=checkbox]");
    const ticked = Array.from(ticks).filter((t) => t.checked).length;
    box.querySelector("[data-self-score]").textContent = String(ticked);
  }
  function wire(root) {
    root.querySelectorAll("[data-self-check]:not([data-wired])").forEach((box) => {
      box.dataset.wired = "1";
      box.addEventListener("change", () => update(box));
      update(box);
    });
  }
  document.addEventListener("DOMContentLoaded", () => wire(document));
  document.addEventListener("htmx:afterSwap", (event) => wire(event.target));
})();
