// A problem statement's maths ($…$ inline, $$…$$ displayed), typeset by the vendored KaTeX
// in every .statement of the page: the problem page and a mock interview's coding round.
(function () {
  "use strict";
  if (!window.renderMathInElement) return;
  document.querySelectorAll(".statement").forEach((statement) => {
    renderMathInElement(statement, {
      delimiters: [
        { left: "$$", right: "$$", display: true },
        { left: "$", right: "$", display: false },
      ],
      throwOnError: false,
    });
  });
})();
