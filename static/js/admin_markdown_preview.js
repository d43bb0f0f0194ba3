// The problem admin's statement and editorial previews follow the Markdown as the author types:
// after a pause, the field's text is posted (CSRF token and all) to the admin's render
// endpoint, which uses the problem page's own sanitising renderer, and the answer replaces the
// preview whose data-source names that field. A reply to older text that arrives late is
// dropped. (The admin loads this script in the page's head, before the form exists: it
// listens on the document.)
(() => {
  const PAUSE_MS = 300;
  let timer = 0;
  let pending = null;

  async function render(field, preview) {
    pending?.abort();
    pending = new AbortController();
    const body = new FormData();
    body.append("markdown", field.value);
    const token = field.form?.querySelector("input[name=csrfmiddlewaretoken]")?.value ?? "";
    try {
      const response = await fetch(preview.dataset.previewUrl, {
        method: "POST",
        body,
        headers: { "X-CSRFToken": token },
        credentials: "same-origin",
        signal: pending.signal,
      });
      const text = await response.text();
      if (response.ok) {
        preview.innerHTML = text; // the server escaped any raw HTML in the Markdown
        preview.classList.remove("preview-error");
        preview.title = "";
      } else {
        preview.classList.add("preview-error");
        preview.title = text;
      }
    } catch (error) {
      if (error.name !== "AbortError") {
        preview.classList.add("preview-error");
      }
    }
  }

  document.addEventListener("input", (event) => {
    const field = event.target;
    const preview = field.id
      ? document.querySelector(`[data-preview-url][data-source="${field.id}"]`)
      : null;
    if (!preview) {
      return;
    }
    clearTimeout(timer);
    timer = setTimeout(() => render(field, preview), PAUSE_MS);
  });
})();
