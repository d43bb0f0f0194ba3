// In the problem admin's code fields, Tab indents by four spaces (as the candidate's editor
// does) instead of leaving the field; Shift+Tab still moves focus back.
document.addEventListener("keydown", (event) => {
  const field = event.target;
  if (event.key !== "Tab" || event.shiftKey || !field.classList?.contains("code-field")) {
    return;
  }
  event.preventDefault();
  field.setRangeText("    ", field.selectionStart, field.selectionEnd, "end");
});
