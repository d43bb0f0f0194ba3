// On a phone the main navigation folds behind a Menu button (site.css collapses it only once
// this script has run, so without JavaScript every link stays in view).
(function () {
  "use strict";
  const header = document.querySelector(".site-header");
  const toggle = header && header.querySelector(".nav-toggle");
  if (!toggle) return;
  header.classList.add("collapsible");
  toggle.hidden = false;
  toggle.addEventListener("click", function () {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    header.classList.toggle("open", open);
  });
})();
